"""The one matplotlib set-up of jno: a headless pyplot and the conventions of its figures.

Every figure jno draws (:meth:`jno.train.History.plot`, the ``jno`` command's history,
solution, comparison and schedule figures) gets pyplot from :func:`pyplot` and is
written by :func:`save_figure`:

- matplotlib is imported only when a figure is drawn (importing jno stays cheap);
- a figure that goes to a file is drawn with the non-interactive ``Agg`` backend, so
  it needs no display and opens no window, unless the user already chose a backend
  (``MPLBACKEND``, ``matplotlib.use``, a notebook's inline backend, a ``matplotlibrc``),
  which is then left alone;
- a saved figure is closed, so a long run that draws many does not keep them;
- figures go only to the path the caller names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jno.train.processes import is_primary

__all__ = ["DPI", "pyplot", "save_figure"]

#: Resolution of the figures jno writes (dots per inch).
DPI = 110


def _backend_chosen(matplotlib: Any) -> bool:
    """Whether a backend is set (by the user, or resolved by an earlier pyplot use)."""
    get = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    if get is None:  # a matplotlib without the helper: never override a choice
        return True
    return get() is not None


def pyplot(*, headless: bool = True) -> Any:
    """``matplotlib.pyplot``, with the ``Agg`` backend selected if ``headless`` and no
    backend has been chosen yet.

    Pass ``headless=False`` for a figure that is returned to the user rather than
    written to a file: matplotlib then picks its usual default (a window on a desktop).

    Example:
        >>> plt = pyplot()
        >>> fig, ax = plt.subplots()
        >>> plt.close(fig)
    """
    import matplotlib

    if headless and not _backend_chosen(matplotlib):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = DPI, parents: bool = False) -> Path:
    """Writes ``fig`` to ``path`` (format from the suffix), closes it and returns the path.

    With ``parents``, missing parent directories of ``path`` are created first. In a run
    of several processes only process 0 writes; the others close the figure.

    Example:
        >>> import tempfile
        >>> fig, ax = pyplot().subplots()
        >>> save_figure(fig, f"{tempfile.mkdtemp()}/a/f.png", parents=True).name
        'f.png'
    """
    path = Path(path)
    if is_primary():
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
