"""The training demo behind ``jno demo``, and the solution / error figure it draws.

The demo trains :class:`~jno.problems.Helmholtz2D` (``lap u + u = q`` on ``[-1, 1]^2``
with exact solution ``sin(pi x) sin(4 pi y)``, the stiff multi-scale benchmark) with a
tanh MLP, points redrawn on the device every step, Adam scaled by a warm-up cosine
schedule, and the PDE and boundary losses balanced by ReLoBRaLo. It writes a
TensorBoard run, the history plot and a solution / error figure, and returns the
relative L2 error on the problem's 101 x 101 grid.

:func:`plot_solution` and :func:`plot_problem` draw the reference, the prediction and
the absolute error of any 2-D problem side by side; ``jno train`` and the examples use
them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optax
from flax import nnx

from jno.domain import Box
from jno.frontend.network import nn
from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import LearningRateSchedule
from jno.problems import Helmholtz2D, Problem
from jno.train._plotting import pyplot, save_figure

__all__ = ["DEMO_STEPS", "build_demo", "plot_problem", "plot_solution", "run_demo"]

#: Default training steps of ``jno demo``: 2 to 3 minutes on a 2-core CPU.
DEMO_STEPS = 150_000
_HIDDEN = (50, 50, 50)
_BATCH = 128
_LR = 3e-3


def build_demo(
    steps: int = DEMO_STEPS,
    seed: int = 0,
    logdir: str | Path | None = None,
    progress: bool | None = None,
) -> Helmholtz2D:
    """The demo's trainer: Helmholtz 2-D, tanh MLP, warm-up cosine, ReLoBRaLo.

    Example:
        >>> t = build_demo(steps=100, progress=False)
        >>> type(t).__name__, type(t.balancer).__name__, t.points["interior"].n
        ('Helmholtz2D', 'ReLoBRaLo', 128)
        >>> t.nets[0].optimizer_spec.schedule.config()["warmup_steps"]
        5
    """
    box = Helmholtz2D.domain
    module = MLP(2, list(_HIDDEN), 1, rngs=nnx.Rngs(seed), input_lo=box.lo, input_hi=box.hi)
    net = nn(module)
    schedule = LearningRateSchedule.warmup_cosine(
        total_steps=steps, warmup_steps=max(1, steps // 20), lr0=_LR, lr_end=1e-5
    )
    net.optimizer(optax.adam(1.0)).scale(schedule)
    return Helmholtz2D(
        net,
        batch_size=_BATCH,
        balancer=ReLoBRaLo(2, seed=seed),
        seed=seed,
        log_every=max(1, steps // 100),
        logdir=None if logdir is None else str(logdir),
        progress=progress,
    )


def run_demo(
    outdir: str | Path = "jno_demo",
    logdir: str | Path = "runs/demo",
    steps: int = DEMO_STEPS,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Trains the demo problem; returns the relative L2 error and the files written.

    Writes ``outdir/history.png`` (losses, weights, learning rate), ``outdir/solution.png``
    (exact, predicted, absolute error) and a TensorBoard run in ``logdir``.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.mkdtemp()
        >>> out = run_demo(tmp, f"{tmp}/tb", steps=20, progress=False)
        >>> sorted(out), out["relative_l2"] > 0
        (['figure', 'history', 'logdir', 'relative_l2'], True)
    """
    outdir, logdir = Path(outdir), Path(logdir)
    outdir.mkdir(parents=True, exist_ok=True)
    trainer = build_demo(steps, seed, logdir, progress)
    history = trainer.fit(steps)
    history.plot(outdir / "history.png")
    figure = plot_problem(trainer, outdir / "solution.png", title="Helmholtz 2-D, ReLoBRaLo")
    return {
        "relative_l2": trainer.relative_l2(),
        "history": outdir / "history.png",
        "figure": figure,
        "logdir": logdir,
    }


def plot_problem(trainer: Problem, path: str | Path, title: str | None = None) -> Path:
    """Draws a 2-D problem's reference, prediction and error on its grid into ``path``.

    The axes are ``x, y`` (or ``x, t`` for a space-time domain); the title reports the
    relative L2 error. A problem of several fields gets a row per field, each with its
    own error; a field of ``zero_mean_fields`` is drawn with its mean removed.

    Example:
        >>> import tempfile
        >>> from jno.problems import Poisson2D
        >>> t = Poisson2D.default(hidden=[8], progress=False)
        >>> plot_problem(t, f"{tempfile.mkdtemp()}/p.png").suffix
        '.png'
    """
    domain = trainer.domain
    if domain.dim != 2:
        raise ValueError(f"plot_problem draws 2-D problems, got a {domain.dim}-D domain")
    labels = ("x", "t") if getattr(domain, "time_axis", None) is not None else ("x", "y")
    error = trainer.relative_l2()
    head = f"{title}: " if title else ""
    predicted = np.array(trainer.predict(), np.float64)  # copies: shifted below
    reference = np.array(trainer.reference_values(), np.float64)
    if predicted.ndim == 1:
        names, text = None, f"{head}relative L2 error {error:.3e}"
    else:
        names = []
        for k, name in enumerate(trainer.fields):
            if name in trainer.zero_mean_fields:
                predicted[:, k] -= predicted[:, k].mean()
                reference[:, k] -= reference[:, k].mean()
                name = f"{name} (mean removed)"
            names.append(name)
        text = head + ", ".join(f"{k} {v:.3e}" for k, v in error.items())
        text = f"{text} (relative L2 errors)"
    points, shape = trainer.evaluation_points(), trainer.evaluation.grid_shape
    if not isinstance(domain, Box):
        # A shape's evaluation points are the grid points inside it: the rest of the
        # bounding box's grid is drawn blank.
        points, inside = domain.masked_grid(list(shape))
        predicted, reference = (_fill(v, inside) for v in (predicted, reference))
    return plot_solution(
        path, points, predicted, reference, shape, labels=labels, title=text, names=names
    )


def _fill(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``values`` at the points of ``inside``, NaN at the others."""
    values = values.reshape(int(inside.sum()), -1)
    out = np.full((inside.size, values.shape[1]), np.nan)
    out[inside] = values
    return out


def plot_solution(
    path: str | Path,
    points: Any,
    predicted: Any,
    reference: Any,
    shape: Sequence[int],
    labels: Sequence[str] = ("x", "y"),
    title: str | None = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Draws reference, prediction and ``|error|`` on a regular 2-D grid into ``path``;
    with several fields (``(n, m)`` values and their ``names``), a row per field.

    Args:
        path: PNG file to write (its folder must exist).
        points: grid points ``(n, 2)``, the last coordinate varying fastest.
        predicted: the network's values ``(n,)``, or ``(n, m)`` for ``m`` fields.
        reference: the exact (or reference) values, the same shape.
        shape: points per axis, ``shape[0] * shape[1] == n``.
        labels: the two axis names.
        title: figure title.
        names: the field names, with ``(n, m)`` values.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> from jno.domain import Box
        >>> grid = np.asarray(Box([0, 0], [1, 1]).grid(5))
        >>> ref = np.sin(grid[:, 0]) * grid[:, 1]
        >>> plot_solution(f"{tempfile.mkdtemp()}/s.png", grid, ref + 0.1, ref, (5, 5)).name
        's.png'
    """
    plt = pyplot()
    shape = tuple(int(s) for s in shape)
    points = np.asarray(points)
    predicted = np.asarray(predicted, np.float64).reshape(points.shape[0], -1)
    reference = np.asarray(reference, np.float64).reshape(points.shape[0], -1)
    rows = names or [""] * predicted.shape[1]
    a, b = points[:, 0].reshape(shape), points[:, 1].reshape(shape)
    fig, axes = plt.subplots(len(rows), 3, figsize=(14, 4.0 * len(rows)), squeeze=False)
    for k, row in enumerate(rows):
        p, r = predicted[:, k].reshape(shape), reference[:, k].reshape(shape)
        panels = [("reference", r), ("prediction", p), ("|error|", np.abs(p - r))]
        for ax, (name, values) in zip(axes[k], panels):
            values = np.ma.masked_invalid(values)  # blank outside a domain's shape
            image = ax.pcolormesh(a, b, values, shading="auto", cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.set(title=f"{row}: {name}" if row else name, xlabel=labels[0], ylabel=labels[1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
