"""The Trainer's derivative-heavy step against plain JAX, on four PDE residuals.

Problems (MLP 2 -> 4x64 tanh -> 1, 4096 fixed residual points plus 256 boundary and,
for the time-dependent ones, 256 initial points, Adam 1e-3, loss = sum of mean
squares):

* ``poisson``: ``lap u + f`` (Poisson 2-D);
* ``helmholtz``: ``lap u + k^2 u - q`` (Helmholtz 2-D, ``k = 1``, ``a = (1, 4)``);
* ``burgers``: ``u_t + u u_x - nu u_xx`` (Burgers 1-D, ``nu = 0.01 / pi``);
* ``klein_gordon``: ``u_tt - u_xx + u^3`` (Klein-Gordon 1-D).

Variants, each running ``--steps`` steps fused in one compiled call, timed in blocks
interleaved over ``--rounds`` rounds of one process:

* ``trainer``: a ``jno.Trainer`` subclass whose ``losses`` use ``jno.ops`` on a
  ``jno.nnx.MLP`` (what a user writes);
* ``core``: the same residuals as ``jno.core`` terms;
* ``plain vmap-jvp``: plain JAX (parameters a list of ``(W, b)``), the network on one
  point, each derivative a nested ``jax.jvp`` under ``jax.vmap`` over the points;
* ``plain taylor``: plain JAX, every derivative the residual needs propagated forward
  through the layers in one pass sharing the primal (hand-written Taylor mode), the
  fastest formulation known to us.

Both plain baselines live in ``plain_pinn.py``, which does not import jno. The printed
ratio is the trainer's time over the faster baseline's, median over rounds of the
per-round ratio.

Run (float32, then float64 in a subprocess with ``jax_enable_x64``)::

    .venv/bin/python benchmarks/derivatives.py [--steps 50] [--rounds 5] [--only poisson,burgers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

if "--x64" in sys.argv:
    import jax

    jax.config.update("jax_enable_x64", True)

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plain_pinn  # noqa: E402
from plain_pinn import NU, PROBLEMS, source  # noqa: E402

import jno  # noqa: E402
from jno import ops  # noqa: E402

from common import interleaved  # noqa: E402

HIDDEN = plain_pinn.HIDDEN


# ------------------------------------------------------------------ jno variants
def jno_losses(problem: str, u, batch):
    """The residual losses written with jno.ops, as in a Trainer subclass."""
    x = batch["interior"]
    if problem == "poisson":
        r = ops.laplacian(u, x) + source(problem, x)
    elif problem == "helmholtz":
        r = ops.laplacian(u, x) + u(x)[:, 0] - source(problem, x)
    elif problem == "burgers":
        r = ops.partial(u, x, 1) + u(x)[:, 0] * ops.partial(u, x, 0) - NU * ops.partial2(u, x, 0, 0)
    else:
        r = ops.partial2(u, x, 1, 1) - ops.partial2(u, x, 0, 0) + u(x)[:, 0] ** 3
    out = {"pde": jnp.mean(r**2), "bc": jnp.mean(u(batch["boundary"]) ** 2)}
    if "initial" in batch:
        x0 = batch["initial"]
        out["ic"] = jnp.mean((u(x0)[:, 0] + jnp.sin(jnp.pi * x0[:, 0])) ** 2)
    return out


def make_trainer(problem: str, points):
    class Problem(jno.Trainer):
        def losses(self, net, batch):
            return jno_losses(problem, net, batch)

    net = jno.nn(jno.nnx.MLP(2, HIDDEN, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    return Problem(net, points=points, log_every=10**9, progress=False)


def make_core(problem: str, points):
    net = jno.nn(jno.nnx.MLP(2, HIDDEN, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    terms = []
    for name in points:
        if name == "interior":
            fn = _pointwise_residual(problem)
        elif name == "boundary":
            fn = lambda u, x: u(x)
        else:
            fn = lambda u, x: u(x)[:, 0] + jnp.sin(jnp.pi * x[:, 0])
        terms.append(net.residual(fn, points[name], name={"interior": "pde"}.get(name, name)))
    return jno.core(terms, log_every=10**9, progress=False)


def _pointwise_residual(problem: str):
    def fn(u, x):
        if problem == "poisson":
            return ops.laplacian(u, x) + source(problem, x)
        if problem == "helmholtz":
            return ops.laplacian(u, x) + u(x)[:, 0] - source(problem, x)
        if problem == "burgers":
            u_x = ops.partial(u, x, 0)
            return ops.partial(u, x, 1) + u(x)[:, 0] * u_x - NU * ops.partial2(u, x, 0, 0)
        return ops.partial2(u, x, 1, 1) - ops.partial2(u, x, 0, 0) + u(x)[:, 0] ** 3

    return fn


# -------------------------------------------------------------------------- main
def measure(problems, steps: int, rounds: int) -> list[dict]:
    dtype = jnp.zeros(()).dtype
    rows = []
    for problem in problems:
        points = plain_pinn.points(problem, dtype)
        trainer = make_trainer(problem, points)
        crux = make_core(problem, points)
        variants = {
            "trainer": lambda t=trainer: t.fit(steps),
            "core": lambda c=crux: c.solve(steps),
            "plain vmap-jvp": plain_pinn.make_loop(
                problem, points, plain_pinn.vmap_derivs, steps, dtype
            ),
            "plain taylor": plain_pinn.make_loop(
                problem, points, plain_pinn.taylor_derivs, steps, dtype
            ),
        }
        times = interleaved(variants, rounds=rounds, steps=steps)
        best = min(("plain vmap-jvp", "plain taylor"), key=times.median)
        rows.append(
            {
                "problem": problem,
                "dtype": str(dtype),
                **{f"ms {k}": 1e3 * times.median(k) for k in variants},
                "baseline": best,
                "trainer / plain": times.ratio("trainer", best),
                "trainer / plain (cpu)": times.ratio("trainer", best, "cpu"),
                "core / plain": times.ratio("core", best),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _table(rows: list[dict]) -> None:
    print(
        "| problem | dtype | trainer ms | core ms | plain vmap-jvp ms | plain taylor ms "
        "| trainer / best plain (wall, cpu) | core / best plain |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['problem']} | {r['dtype']} | {r['ms trainer']:.2f} | {r['ms core']:.2f} "
            f"| {r['ms plain vmap-jvp']:.2f} | {r['ms plain taylor']:.2f} "
            f"| **{r['trainer / plain']:.3f}**, {r['trainer / plain (cpu)']:.3f} "
            f"| {r['core / plain']:.3f} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(PROBLEMS))
    parser.add_argument("--x64", action="store_true", help="float64 only (internal)")
    parser.add_argument("--no-x64", action="store_true", help="skip the float64 run")
    args = parser.parse_args(argv)
    problems = [p for p in args.only.split(",") if p]
    for p in problems:
        if p not in PROBLEMS:
            parser.error(f"--only: unknown problem {p!r}, choose from {PROBLEMS}")
    rows = measure(problems, args.steps, args.rounds)
    if args.x64:
        print(json.dumps(rows))
        return
    if not args.no_x64:
        cmd = [sys.executable, os.path.abspath(__file__), "--x64", "--steps", str(args.steps)]
        cmd += ["--rounds", str(args.rounds), "--only", args.only]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        rows += json.loads(out.stdout.strip().splitlines()[-1])
    _table(rows)


if __name__ == "__main__":
    main()
