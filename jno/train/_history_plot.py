"""The figure of a :class:`~jno.train.history.History`: what was logged, panel by panel.

* **loss** (log scale), with the phase marks of the run (:meth:`History.mark`, e.g.
  the switch from Adam to a quasi-Newton method) as dashed lines and the redraws of
  residual-adaptive point sets (a change of ``tracker/points_<set>_pool_residual``) as
  dotted ones;
* **weight**, only when a weight changed during the run (a balancer at work): fixed
  weights are constants of the loss, not something to watch;
* **learning rate**, over the phases that have one (a quasi-Newton phase logs none);
* the **trackers**, one row per component (tags sharing a name prefix, e.g.
  ``points_interior``), one panel per tracker with its own scale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jno.train._plotting import pyplot, save_figure

__all__ = ["plot_history", "redraw_steps", "tracker_groups"]

_TRACKER = "tracker/"


def tracker_groups(tags: Sequence[str]) -> dict[str, list[str]]:
    """Tracker tags (``tracker/...``) by component: each tag joins the longest name
    prefix (at ``_``) it shares with another tracker; a tag that shares none is a
    component of its own.

    Example:
        >>> tracker_groups(["tracker/points_interior_pool_residual",
        ...                 "tracker/points_interior_replaced", "tracker/w_bc"])
        {'points_interior': ['pool_residual', 'replaced'], 'w_bc': ['']}
    """
    names = [t[len(_TRACKER) :] for t in tags if t.startswith(_TRACKER)]
    groups: dict[str, list[str]] = {}
    for name in names:
        parts = name.split("_")
        prefix = name
        for cut in range(len(parts) - 1, 0, -1):
            candidate = "_".join(parts[:cut])
            if any(o != name and o.startswith(candidate + "_") for o in names):
                prefix = candidate
                break
        groups.setdefault(prefix, []).append(name[len(prefix) + 1 :])
    return groups


def redraw_steps(history: Mapping[str, np.ndarray], steps: np.ndarray) -> list[int]:
    """Logged steps by which a residual-adaptive point set was redrawn since the
    previous logged step (its ``pool_residual`` tracker changed).

    Example:
        >>> redraw_steps({"tracker/points_x_pool_residual": np.array([np.nan, 2.0, 2.0, 1.0])},
        ...              np.array([10, 20, 30, 40]))
        [20, 40]
    """
    found: set[int] = set()
    for tag, values in history.items():
        if tag.startswith(_TRACKER + "points_") and tag.endswith("_pool_residual"):
            before = np.concatenate([[np.nan], values[:-1]])
            changed = (values != before) & ~np.isnan(values)
            found.update(int(s) for s in steps[changed])
    return sorted(found)


def _varies(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 1 and bool(np.ptp(finite) > 0)


def _draw(ax: Any, steps: np.ndarray, values: np.ndarray, label: str, log: bool) -> None:
    if log and np.any(values > 0):
        ax.semilogy(steps, np.where(values > 0, values, np.nan), label=label)
    else:
        ax.plot(steps, values, label=label)


def _mark_loss_panel(ax: Any, marks: Sequence[tuple[int, str]], redraws: list[int]) -> None:
    for k, step in enumerate(redraws):
        ax.axvline(step, color="0.6", ls=":", lw=0.8, label="redraw" if k == 0 else None)
    for step, label in marks:
        ax.axvline(step, color="k", ls="--", lw=1.0)
        ax.annotate(
            label, (step, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
            textcoords="offset points", va="top", fontsize="small",
        )  # fmt: skip


def plot_history(
    history: Mapping[str, np.ndarray],
    steps: np.ndarray,
    marks: Sequence[tuple[int, str]] = (),
    path: str | os.PathLike | None = None,
    *,
    show_lr: bool = True,
) -> Any:
    """The figure described in the module docstring; written to ``path`` when given.

    Example:
        >>> h = {"loss/total": np.array([1.0, 0.5]), "weight/pde": np.ones(2),
        ...      "lr": np.array([1e-3, np.nan])}
        >>> fig = plot_history(h, np.array([10, 20]), [(15, "SSBroyden")])
        >>> [ax.get_title() for ax in fig.axes]
        ['loss', 'learning rate']
    """
    plt = pyplot(headless=path is not None)
    tags = list(history)
    top: list[tuple[str, list[str], bool]] = [
        ("loss", [t for t in tags if t.startswith("loss/")], True)
    ]
    weights = [t for t in tags if t.startswith("weight/")]
    if any(_varies(history[t]) for t in weights):
        top.append(("weight", weights, False))
    rates = [t for t in tags if t == "lr" or t.startswith("lr/")]
    if show_lr and any(np.isfinite(history[t]).any() for t in rates):
        top.append(("learning rate", rates, True))
    groups = tracker_groups(tags)
    columns = max(len(top), *(len(names) for names in groups.values()), 1)
    rows = 1 + len(groups)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.3 * rows), squeeze=False, sharex=True
    )
    for ax, (title, panel_tags, log) in zip(axes[0], top):
        for tag in panel_tags:
            _draw(ax, steps, history[tag], tag, log)
        if title == "loss":
            _mark_loss_panel(ax, marks, redraw_steps(history, steps))
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:  # an untrained run has nothing to name
            ax.legend(fontsize="small")
    for row, (component, names) in zip(axes[1:], groups.items()):
        for ax, name in zip(row, names):
            tag = f"{_TRACKER}{component}_{name}" if name else f"{_TRACKER}{component}"
            values = history[tag]
            positive = np.isfinite(values).any() and np.nanmin(values) > 0
            log = positive and np.nanmax(values) > 100 * np.nanmin(values)
            _draw(ax, steps, values, tag, log)
            ax.set_title(f"{component}: {name}" if name else component)
    for ax in axes.flat:
        if ax.get_title():
            ax.grid(True, alpha=0.3)
            ax.set_xlabel("step")
            ax.xaxis.set_tick_params(labelbottom=True)
        else:
            fig.delaxes(ax)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=120)
    return fig
