"""Shared pieces of the benchmarks: the Poisson 2-D problem and interleaved timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np


def poisson_source(x: jax.Array) -> jax.Array:
    """f = 2 pi^2 sin(pi x) sin(pi y): -lap u = f for u = sin(pi x) sin(pi y)."""
    return 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])


def poisson_points(n_interior: int = 3072, n_boundary: int = 256, seed: int = 0):
    """Fixed interior and boundary points of the unit square (numpy, float32)."""
    rng = np.random.default_rng(seed)
    interior = rng.uniform(0.0, 1.0, size=(n_interior, 2)).astype(np.float32)
    t = rng.uniform(0.0, 1.0, size=n_boundary).astype(np.float32)
    side = np.arange(n_boundary) % 4
    boundary = np.stack(
        [
            np.where(side == 0, 0.0, np.where(side == 1, 1.0, t)),
            np.where(side == 2, 0.0, np.where(side == 3, 1.0, t)),
        ],
        axis=1,
    ).astype(np.float32)
    return {"interior": jnp.asarray(interior), "boundary": jnp.asarray(boundary)}


class Timings:
    """Per-round seconds per step of each variant, in wall-clock and process CPU time."""

    def __init__(self, names):
        self.wall = {name: [] for name in names}
        self.cpu = {name: [] for name in names}

    def median(self, name: str, clock: str = "wall") -> float:
        """Median seconds per step."""
        return statistics.median(getattr(self, clock)[name])

    def ratio(self, name: str, base: str, clock: str = "wall") -> float:
        """Median over rounds of ``name``'s time divided by ``base``'s in the same round.

        Pairing blocks of one round cancels slow drifts of the machine's load.
        """
        samples = getattr(self, clock)
        return statistics.median(a / b for a, b in zip(samples[name], samples[base]))


def interleaved(variants: Mapping[str, Callable[[], object]], rounds: int, steps: int) -> Timings:
    """Times each variant in alternating blocks of one run (after one warm-up block each).

    Each callable runs ``steps`` steps and returns something to block on. CPU time
    (``time.process_time``, every thread of this process) is much less sensitive than
    wall-clock time to other processes competing for the cores.
    """
    for run in variants.values():  # warm-up: compile outside the timed blocks
        jax.block_until_ready(run())
    timings = Timings(variants)
    for _ in range(rounds):
        for name, run in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(run())
            timings.wall[name].append((time.perf_counter() - wall) / steps)
            timings.cpu[name].append((time.process_time() - cpu) / steps)
    return timings


#: The quasi-Newton recipe's settings a recipe benchmark takes on its command line.
RECIPE_OPTIONS = ("points", "boundary_points", "adam_steps", "qn_steps", "redraw_every")


def add_recipe_options(parser) -> None:
    """``--seeds``, ``--hidden`` and an option per setting of :data:`RECIPE_OPTIONS`."""
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--hidden", default=None, help="widths, e.g. 20,20,20 (default: the recipe's)"
    )
    for name in RECIPE_OPTIONS:
        option = "--" + name.replace("_", "-")
        parser.add_argument(option, type=int, default=None, help="default: the recipe's")


def recipe_changes(args) -> dict:
    """The recipe settings given on the command line (the rest stay the recipe's)."""
    changes = {
        name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None
    }
    if args.hidden is not None:
        changes["hidden"] = tuple(int(w) for w in args.hidden.split(","))
    return changes


def seeds(args) -> list[int]:
    """The seeds of ``--seeds 0,1,2``."""
    return [int(s) for s in args.seeds.split(",")]
