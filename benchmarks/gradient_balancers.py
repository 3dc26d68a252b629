"""Cost of the gradient- and NTK-based balancers inside the Trainer's compiled step.

Problem: Poisson 2-D on the unit square (``benchmarks/common.py``), ``jno.nnx.MLP``
2 -> 64 x 4 -> 1 (tanh), 3072 interior + 256 boundary fixed points, Adam, the
Laplacian from the MLP's one-pass forward Laplacian. Variants: fixed weights and each
balancer that needs per-term gradients (``GradNormBalancer``, ``LRAnnealing``,
``GradNorm``) or NTK diagonals (``NTKBalancer``), all with the same ``update_every``.

A timed block is ``fit(k * update_every)`` from a step that is a multiple of
``update_every``, so every block holds exactly ``k`` updates and the ratio to the
fixed-weight block is the amortised cost. Blocks are interleaved over ``--rounds``
rounds (``benchmarks/common.py``); medians of per-round ratios, wall and CPU time.

Run: ``.venv/bin/python benchmarks/gradient_balancers.py`` (also run at the end of
``benchmarks/balancer_overhead.py``); ``--update-every 1`` shows the cost of a step
that updates.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import jno
from jno.nnx import MLP, GradNorm, GradNormBalancer, LRAnnealing, NTKBalancer

from common import interleaved, poisson_points, poisson_source


class Poisson(jno.Trainer):
    def residuals(self, net, batch):
        x = batch["interior"]
        return {
            "pde": jno.ops.laplacian(net, x) + poisson_source(x),
            "bc": net(batch["boundary"])[:, 0],
        }

    def losses(self, net, batch):
        return {k: jnp.mean(r**2) for k, r in self.residuals(net, batch).items()}


def variants(update_every: int) -> dict:
    return {
        "fixed": None,
        "GradNormBalancer": GradNormBalancer(2, update_every=update_every),
        "LRAnnealing": LRAnnealing(2, update_every=update_every),
        "GradNorm": GradNorm(2, update_every=update_every),
        "NTKBalancer": NTKBalancer(2, update_every=update_every),
    }


def table(rounds: int, updates_per_block: int, update_every: int) -> list[str]:
    """Markdown lines: ms per step and amortised ratios to fixed weights."""
    steps = updates_per_block * update_every
    points = poisson_points()
    runs = {}
    for name, balancer in variants(update_every).items():
        net = jno.nn(MLP(2, [64] * 4, 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.adam(1e-3))
        trainer = Poisson(net, points=points, balancer=balancer, log_every=steps, progress=False)
        runs[name] = lambda t=trainer: t.fit(steps)["loss/total"]
    timings = interleaved(runs, rounds=rounds, steps=steps)
    lines = [
        f"# {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"jax {jax.__version__} ({jax.default_backend()}), update_every={update_every}, "
        f"{rounds} rounds x {steps} steps per block ({updates_per_block} updates)",
        "| variant | ms/step (wall) | ratio wall | ratio CPU |",
        "|---|---|---|---|",
    ]
    for name in runs:
        ratio_wall = timings.ratio(name, "fixed")
        ratio_cpu = timings.ratio(name, "fixed", clock="cpu")
        lines.append(
            f"| {name} | {1e3 * timings.median(name):.2f} | {ratio_wall:.3f} | {ratio_cpu:.3f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--update-every", type=int, default=100)
    parser.add_argument("--updates-per-block", type=int, default=3)
    args = parser.parse_args(argv)
    print("\n".join(table(args.rounds, args.updates_per_block, args.update_every)))


if __name__ == "__main__":
    main()
