"""Cost of TensorBoard logging and of checkpoints, as ratios measured in one run.

Poisson 2-D (forward-mode Laplacian), by default MLP 2 -> 3x32 tanh -> 1, 1024
interior and 128 boundary points, Adam with a cosine scale and ReLoBRaLo, so every
logged series (losses, weights, rate, gradient norm) is there. A step here takes about
two milliseconds, so a fixed cost per logged step shows up far more than in a real run.
Variants, timed in interleaved blocks of ``--steps`` steps:

- ``no logging``: no ``logdir``, ``log_every`` larger than the block (one fetch per fit);
- ``tensorboard, log_every=100``: event files written every 100 steps;
- ``checkpoint every 1000``: no logging, an orbax checkpoint every 1000 steps.

``--problem standard`` runs the PINN-sized problem of the other benchmarks instead
(MLP 4x64, 3072 + 256 points, about 30 ms per step).

Run::

    .venv/bin/python benchmarks/logging_overhead.py
    .venv/bin/python benchmarks/logging_overhead.py --problem standard --steps 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jno  # noqa: E402

from common import interleaved, poisson_points, poisson_source  # noqa: E402


class Poisson(jno.Trainer):
    def losses(self, net, batch):
        x = batch["interior"]
        r = jno.ops.laplacian(net, x) + poisson_source(x)
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


PROBLEMS = {
    # name: (hidden widths, interior points, boundary points)
    "small": ([32, 32, 32], 1024, 128),
    "standard": ([64, 64, 64, 64], 3072, 256),
}


def make(points, steps, hidden, **kwargs):
    net = jno.nn(jno.nnx.MLP(2, hidden, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1)).scale(jno.LearningRateSchedule.cosine(10**6, 1e-3))
    kwargs.setdefault("log_every", 10 * steps)
    return Poisson(net, points=points, balancer=jno.nnx.ReLoBRaLo(2), progress=False, **kwargs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3000, help="steps per timed block")
    parser.add_argument(
        "--problem",
        choices=sorted(PROBLEMS),
        default="small",
        help="small: MLP 3x32, 1024 + 128 points (fixed costs show); standard: the "
        "PINN-sized problem of the other benchmarks, MLP 4x64, 3072 + 256 points",
    )
    args = parser.parse_args(argv)
    hidden, n_interior, n_boundary = PROBLEMS[args.problem]
    points = poisson_points(n_interior, n_boundary)
    work = tempfile.mkdtemp(prefix="jno-bench-")
    try:
        plain = make(points, args.steps, hidden)
        logged = make(points, args.steps, hidden, logdir=os.path.join(work, "tb"), log_every=100)
        saved = make(
            points,
            args.steps,
            hidden,
            checkpoint_dir=os.path.join(work, "ck"),
            checkpoint_every=1000,
        )
        times = interleaved(
            {
                "no logging": lambda: plain.fit(args.steps),
                "tensorboard, log_every=100": lambda: logged.fit(args.steps),
                "checkpoint every 1000": lambda: saved.fit(args.steps),
            },
            rounds=args.rounds,
            steps=args.steps,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"devices: {jax.devices()}")
    print(
        f"Poisson 2-D ({args.problem}: MLP {len(hidden)}x{hidden[0]}, {n_interior} + "
        f"{n_boundary} points), {args.steps}-step blocks, {args.rounds} rounds"
    )
    header = ["ms/step wall", "ms/step cpu", "ratio wall", "ratio cpu"]
    print(f"  {'variant':28s} " + " ".join(f"{h:>12s}" for h in header))
    base = "no logging"
    for name in times.wall:
        print(
            f"  {name:28s} {1e3 * times.median(name):12.4f} {1e3 * times.median(name, 'cpu'):12.4f}"
            f" {times.ratio(name, base):12.3f} {times.ratio(name, base, 'cpu'):12.3f}"
        )


if __name__ == "__main__":
    main()
