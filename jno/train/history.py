"""``History``: the logged series of a training run, as numpy arrays."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from jno.train._plotting import pyplot, save_figure

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
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        hist = cls()
        hist._steps = [int(s) for s in np.asarray(data["steps"]).tolist()]
        for tag, values in data.items():
            if tag != "steps":
                hist._series[tag] = [float(v) for v in np.asarray(values).tolist()]
        return hist

    def plot(self, path: str | None = None, *, show_lr: bool = True) -> Any:
        """Draws losses (log scale), weights and learning rate(s); saves to ``path``.

        With a ``path`` the figure is drawn without a display (see
        :mod:`jno.train._plotting`), written there and closed; without one it is left
        open for the caller to show. Returns the matplotlib figure.
        """
        plt = pyplot(headless=path is not None)
        groups = [
            ("loss", [t for t in self if t.startswith("loss/")], True),
            ("weight", [t for t in self if t.startswith(("weight/", "tracker/"))], False),
        ]
        if show_lr:
            groups.append(
                ("learning rate", [t for t in self if t == "lr" or t.startswith("lr/")], True)
            )
        groups = [g for g in groups if g[1]]
        fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(5 * max(len(groups), 1), 3.6))
        axes = np.atleast_1d(axes)
        steps = self.steps
        for ax, (title, tags, log) in zip(axes, groups):
            for tag in tags:
                values = self[tag]
                if log and np.any(values > 0):
                    ax.semilogy(steps, np.where(values > 0, values, np.nan), label=tag)
                else:
                    ax.plot(steps, values, label=tag)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.legend(fontsize="small")
            ax.grid(True, alpha=0.3)
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path, dpi=120)
        return fig
