"""``History``: the logged series of a training run, as numpy arrays."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from jno.train._history_plot import plot_history

__all__ = ["History"]


class History(Mapping[str, np.ndarray]):
    """A read-only mapping from tag (``"loss/total"``, ``"weight/pde"``, ...) to values.

    Every series is aligned with :attr:`steps`, the step counts at which values were
    logged (a series that started later, e.g. after a switch of optimizer, is padded
    with NaN at the earlier steps).

    Example:
        >>> h = History()
        >>> h.append(100, {"loss/total": 0.5, "lr": 1e-3})
        >>> h.append(200, {"loss/total": 0.25, "lr": 1e-3})
        >>> h.steps.tolist(), h["loss/total"].tolist()
        ([100, 200], [0.5, 0.25])
    """

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._series: dict[str, list[float]] = {}
        self._marks: list[tuple[int, str]] = []

    def mark(self, step: int, label: str) -> None:
        """Marks ``step`` as the start of ``label`` (a phase of the run: an optimizer
        switch, say); :meth:`plot` draws the marks on the loss panel, and checkpoints
        keep them. A mark already there is not repeated.

        Example:
            >>> h = History()
            >>> h.mark(5000, "SSBroyden"); h.mark(5000, "SSBroyden")
            >>> h.marks
            ((5000, 'SSBroyden'),)
        """
        entry = (int(step), str(label))
        if entry not in self._marks:
            self._marks.append(entry)

    @property
    def marks(self) -> tuple[tuple[int, str], ...]:
        """The ``(step, label)`` marks, in the order they were made."""
        return tuple(self._marks)

    def append(self, step: int, values: Mapping[str, Any]) -> None:
        """Records ``values`` at ``step`` (used by the trainer)."""
        n = len(self._steps)
        self._steps.append(int(step))
        for tag, value in values.items():
            series = self._series.setdefault(tag, [float("nan")] * n)
            series.append(float(value))
        for series in self._series.values():
            if len(series) == n:
                series.append(float("nan"))

    @property
    def steps(self) -> np.ndarray:
        """The logged step counts (int64 array)."""
        return np.asarray(self._steps, dtype=np.int64)

    def __getitem__(self, tag: str) -> np.ndarray:
        try:
            values = self._series[tag]
        except KeyError:
            raise KeyError(f"no series {tag!r}; logged tags: {sorted(self._series)}") from None
        return np.asarray(values, dtype=np.float64)

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def __repr__(self) -> str:
        last = self._steps[-1] if self._steps else None
        return f"History({len(self._steps)} logged steps, last={last}, tags={sorted(self)})"

    def to_dict(self) -> dict[str, np.ndarray]:
        """All series plus ``"steps"``, as plain arrays (for saving)."""
        out = {tag: self[tag] for tag in self}
        out["steps"] = self.steps
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], marks: Any = ()) -> History:
        """Inverse of :meth:`to_dict` (with the :attr:`marks` to restore)."""
        hist = cls()
        for step, label in marks:
            hist.mark(step, label)
        hist._steps = [int(s) for s in np.asarray(data["steps"]).tolist()]
        for tag, values in data.items():
            if tag != "steps":
                hist._series[tag] = [float(v) for v in np.asarray(values).tolist()]
        return hist

    def plot(self, path: str | None = None, *, show_lr: bool = True) -> Any:
        """Draws the run: losses (log scale) with the phase marks and point redraws,
        weights (when a balancer changed them), the learning rate (over the phases
        that have one) and every tracker in a panel of its own, a row per component
        (see :mod:`jno.train._history_plot`); saves to ``path``.

        With a ``path`` the figure is drawn without a display (see
        :mod:`jno.train._plotting`), written there and closed; without one it is left
        open for the caller to show. Returns the matplotlib figure.
        """
        return plot_history(self, self.steps, self.marks, path, show_lr=show_lr)
