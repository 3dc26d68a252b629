"""Step time of the peer library (PyPI ``jax-numerical-operators``) on the Poisson 2-D problem.

This script runs only in the peer's own virtualenv, never in this project's, because both
packages install under the import name ``jno``::

    python -m venv .peer && .peer/bin/pip install jax-numerical-operators
    .peer/bin/python benchmarks/peer_poisson.py [--steps 2000] [--warmup 200]

``benchmarks/trainer_step.py --peer-python .peer/bin/python`` calls it as a subprocess and reads
the last line of its stdout, one JSON object::

    {"library": ..., "version": ..., "steps": N, "seconds": ..., "ms_per_step": ...,
     "final_loss": ..., "notes": ...}

The problem is the one ``trainer_step.py`` times: -lap u = 2 pi^2 sin(pi x) sin(pi y) on the unit
square, u = 0 on the boundary, MLP 2 -> 4x64 tanh -> 1, the same fixed 3072 interior and 256
boundary points (``common.poisson_points``), Adam 1e-3, loss = mse(PDE residual) + mse(boundary).

Timing: one warm-up solve compiles the step; then a short solve and an N-step solve are timed with
``time.perf_counter`` (results blocked on). Every ``solve()`` call pays a fixed setup cost, so
``ms_per_step`` is the difference ``(t(N) - t(short)) / (N - short)``; ``seconds`` is the raw wall
clock of the N-step solve, setup included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

# The peer turns on a persistent XLA cache at import by default; keep runs independent of it.
os.environ.setdefault("JNO_COMPILE_CACHE", "0")

N_INTERIOR = 3072
N_BOUNDARY = 256
HIDDEN = [64, 64, 64, 64]
LEARNING_RATE = 1e-3


def poisson_points(n_interior: int = N_INTERIOR, n_boundary: int = N_BOUNDARY, seed: int = 0):
    """The fixed points of ``benchmarks/common.py`` (same recipe and seed), as numpy float32."""
    import numpy as np

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
    return interior, boundary


def build_problem(seed: int):
    """The Poisson problem in the peer's front end; returns ``(core, model)``."""
    import foundax
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import jno

    interior, boundary = poisson_points(seed=seed)
    # A point-cloud domain keeps the points fixed: no resampling strategy is attached.
    dom = jno.domain.from_array({"interior": interior, "boundary": boundary})
    x, y, _ = dom.variable("interior", split=True)
    xb, yb, _ = dom.variable("boundary", split=True)

    net = jno.nn(
        foundax.mlp(
            2, output_dim=1, hidden_dims=HIDDEN, activation=jnp.tanh, key=jax.random.PRNGKey(seed)
        )
    )
    net.optimizer(optax.adam(LEARNING_RATE))

    u = net(x, y)
    f = 2 * np.pi**2 * jno.np.sin(np.pi * x) * jno.np.sin(np.pi * y)
    pde = -u.laplacian(x, y) - f
    bc = net(xb, yb)
    # The peer descends the mean of its constraint losses; a weight of 2 on each of the two
    # makes that mean exactly mse(pde) + mse(bc), the objective of the other variants.
    core = jno.core([2.0 * pde.mse, 2.0 * bc.mse])
    return core, net


def timed_solve(core, epochs: int, inner_steps: int):
    """Wall-clock seconds of one ``solve(epochs)``, with the trained parameters blocked on."""
    import jax

    start = time.perf_counter()
    stats = core.solve(epochs, inner_steps=inner_steps)
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(core.models) if hasattr(leaf, "shape")]
    jax.block_until_ready(leaves)
    return time.perf_counter() - start, stats


def run(steps: int, warmup: int, inner_steps: int, seed: int, log_dir: str) -> dict:
    import jax

    import jno

    # Log to a file only: the peer's console progress lines would mix with the JSON on stdout.
    jno.logger(log_dir, log_print=(True, False))
    core, _ = build_problem(seed)

    short = min(warmup, steps // 2)
    short -= short % inner_steps
    _, warm_stats = timed_solve(core, warmup, inner_steps)  # compiles the step
    t_short, _ = timed_solve(core, short, inner_steps)
    t_long, stats = timed_solve(core, steps, inner_steps)

    ms_per_step = 1e3 * (t_long - t_short) / (steps - short)
    first_loss = float(warm_stats.training_logs[0]["total_loss"][0])
    final_loss = float(stats.total_loss)
    lib_ms = 1e3 * stats.training_logs[-1]["training_time"] / steps

    try:
        from importlib.metadata import version

        peer_version = version("jax-numerical-operators")
    except Exception:  # noqa: BLE001 -- the number is informative only
        peer_version = getattr(jno, "__version__", "unknown")

    notes = (
        f"ms_per_step = (t({steps}) - t({short})) / {steps - short} over two warm solve() calls "
        f"after a {warmup}-step warm-up solve that compiles; t({steps}) = {t_long:.2f} s, "
        f"t({short}) = {t_short:.2f} s; the peer's own loop timer gives {lib_ms:.3f} ms/step. "
        f"Idiomatic API: jno.domain.from_array points (fixed, no resampling), jno.nn(foundax.mlp), "
        f"u.laplacian(x, y) (AD, folx forward Laplacian per point under vmap), "
        f"net.optimizer(optax.adam(1e-3)), jno.core([2*pde.mse, 2*bc.mse]).solve(n, "
        f"inner_steps={inner_steps}); constraints are averaged, hence the weights 2. One jitted "
        f"step per Python iteration (no host callbacks in the step), loss synced to host about "
        f"every n/10 steps for its log. Loss {first_loss:.3e} at the first step -> "
        f"{final_loss:.3e} at the last. Device: {jax.devices()[0].device_kind}, "
        f"{os.cpu_count()} CPUs visible."
    )
    return {
        "library": "jax-numerical-operators",
        "version": peer_version,
        "steps": steps,
        "seconds": t_long,
        "ms_per_step": ms_per_step,
        "final_loss": final_loss,
        "notes": notes,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps of the timed solve")
    parser.add_argument("--warmup", type=int, default=200, help="steps of the warm-up solve")
    parser.add_argument(
        "--inner-steps", type=int, default=1, help="peer's solve(inner_steps=): steps per dispatch"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the points and the network")
    args = parser.parse_args(argv)
    k = args.inner_steps
    if k < 1:
        parser.error(f"--inner-steps must be >= 1, got {k}")
    if args.warmup < k or args.warmup % k:
        parser.error(f"--warmup must be a positive multiple of --inner-steps, got {args.warmup}")
    if args.steps < 2 * k or args.steps % k:
        parser.error(f"--steps must be a multiple of --inner-steps, >= {2 * k}, got {args.steps}")

    # Everything the peer prints (import notices, fallback log lines) goes to stderr, so stdout
    # carries the JSON line alone.
    with tempfile.TemporaryDirectory() as log_dir, contextlib.redirect_stdout(sys.stderr):
        result = run(args.steps, args.warmup, k, args.seed, log_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
