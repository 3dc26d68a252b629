"""The training demo behind ``jno demo``: Poisson 2-D with ReLoBRaLo and warm-up cosine.

``-lap u = 2 pi^2 sin(pi x) sin(pi y)`` on the unit square with ``u = 0`` on the
boundary (exact solution ``sin(pi x) sin(pi y)``), points resampled on the device every
step, an MLP trained with Adam scaled by a warm-up cosine schedule, the two losses
balanced by ReLoBRaLo. Writes a TensorBoard run, the history plot and a
solution / error figure, and returns the relative L2 error on a grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jno import ops
from jno.domain import Box
from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.models import MLP
from jno.nnx.schedules import LearningRateSchedule
from jno.train import Trainer, nn

__all__ = ["PoissonDemo", "exact_solution", "run_demo"]


def exact_solution(x: Any) -> Any:
    """``sin(pi x) sin(pi y)``."""
    return jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])


class PoissonDemo(Trainer):
    """``-lap u = f`` on the unit square, zero on the boundary."""

    def losses(self, net, batch):
        x = batch["interior"]
        residual = ops.laplacian(net, x) + 2 * jnp.pi**2 * exact_solution(x)
        return {"pde": jnp.mean(residual**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


def run_demo(
    outdir: str | Path = "jno_demo",
    logdir: str | Path = "runs/demo",
    steps: int = 8000,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Trains the demo problem; returns the relative L2 error and the files written.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.mkdtemp()
        >>> out = run_demo(tmp, f"{tmp}/tb", steps=20, progress=False)
        >>> sorted(out), out["relative_l2"] > 0
        (['figure', 'history', 'logdir', 'relative_l2'], True)
    """
    outdir, logdir = Path(outdir), Path(logdir)
    outdir.mkdir(parents=True, exist_ok=True)
    box = Box([0.0, 0.0], [1.0, 1.0])
    net = nn(MLP(2, [64, 64, 64], 1, rngs=nnx.Rngs(seed), input_lo=box.lo, input_hi=box.hi))
    schedule = LearningRateSchedule.warmup_cosine(
        total_steps=steps, warmup_steps=max(1, steps // 20), lr0=1e-2, lr_end=1e-5
    )
    net.optimizer(optax.adam(1)).scale(schedule)
    trainer = PoissonDemo(
        net,
        points={
            "interior": box.interior(1024, resample=True),
            "boundary": box.boundary(256, resample=True),
        },
        balancer=ReLoBRaLo(2),
        seed=seed,
        log_every=max(1, steps // 20),
        logdir=str(logdir),
        progress=progress,
    )
    history = trainer.fit(steps)
    history.plot(outdir / "history.png")

    grid = box.grid(101)
    predicted = np.asarray(net(grid)[:, 0])
    exact = np.asarray(exact_solution(grid))
    relative_l2 = float(np.linalg.norm(predicted - exact) / np.linalg.norm(exact))
    figure = _plot_solution(outdir / "solution.png", grid, predicted, exact)
    return {
        "relative_l2": relative_l2,
        "history": outdir / "history.png",
        "figure": figure,
        "logdir": logdir,
    }


def _plot_solution(path: Path, grid: Any, predicted: np.ndarray, exact: np.ndarray) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = int(round(np.sqrt(len(exact))))
    x = np.asarray(grid)[:, 0].reshape(n, n)
    y = np.asarray(grid)[:, 1].reshape(n, n)
    panels = [
        ("exact", exact),
        ("jno", predicted),
        ("|error|", np.abs(predicted - exact)),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (title, values) in zip(axes, panels):
        image = ax.pcolormesh(x, y, values.reshape(n, n), shading="auto", cmap="viridis")
        fig.colorbar(image, ax=ax)
        ax.set_title(title)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
