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


def interleaved(
    variants: Mapping[str, Callable[[], object]], rounds: int, steps: int
) -> dict[str, float]:
    """Median seconds per step of each variant, timed in alternating blocks of one run.

    Each callable runs ``steps`` steps and returns something to block on.
    """
    for run in variants.values():  # warm-up: compile outside the timed blocks
        jax.block_until_ready(run())
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            jax.block_until_ready(run())
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(times) for name, times in samples.items()}
