"""A three-field Navier-Stokes step: jno's fields against plain JAX.

The residual of steady incompressible Navier-Stokes (Kovasznay flow's equations, Re = 20),
on one network with three outputs ``(u, v, p)``: MLP 2 -> 4x64 tanh -> 3, 4096 fixed
interior points and 256 boundary points (``u = v = 0`` there), Adam 1e-3, ``--steps``
steps fused per timed block. Variants, interleaved in one process:

* ``trainer``: a ``jno.Trainer`` whose ``losses`` take the fields of
  ``jno.nn(module, fields=("u", "v", "p"))`` and call ``jno.ops`` on them;
* ``core``: the same residual as a ``jno.core`` term;
* ``trainer fallback``: a ``jno.Trainer`` whose fields are ``lambda x: net(x)[:, k]``
  (plain callables, so ``jno.ops`` falls back to per-output autodiff: one tiled
  forward-mode pass per derivative);
* ``plain vmap-jvp``: plain JAX (no jno import in its code), the network on one point,
  each derivative a nested ``jax.jvp`` of the 3-output function (all three outputs per
  jvp), ``jax.vmap`` over the points;
* ``plain taylor``: plain JAX, the first derivatives and the Laplacian of all three
  outputs propagated forward through the layers in one batched pass sharing the primal
  (the fastest formulation we know).

Prints the median time per step and the ratios against the faster plain loop (median
over rounds of the per-round ratio), and a JSON line per dtype on stderr.

Usage:
    .venv/bin/python benchmarks/fields.py --steps 50 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved  # noqa: E402

HIDDEN = [64, 64, 64, 64]
NU = 1.0 / 20.0
N_RES, N_BND = 4096, 256


def points(dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    interior = np.stack([rng.uniform(-0.5, 1.0, N_RES), rng.uniform(-0.5, 1.5, N_RES)], 1)
    t = rng.uniform(0, 1, N_BND)
    side = np.arange(N_BND) % 4
    boundary = np.stack(
        [
            np.where(side == 0, -0.5, np.where(side == 1, 1.0, -0.5 + 1.5 * t)),
            np.where(side == 2, -0.5, np.where(side == 3, 1.5, -0.5 + 2.0 * t)),
        ],
        1,
    )
    return {"interior": jnp.asarray(interior, dtype), "boundary": jnp.asarray(boundary, dtype)}


# ------------------------------------------------------------- plain JAX baselines
def init_params(key, dtype):
    sizes = [2, *HIDDEN, 3]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append(
            (jax.random.normal(sub, (a, b), dtype) * np.sqrt(2 / (a + b)), jnp.zeros(b, dtype))
        )
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def taylor(params, x):
    """Value (n, 3), first derivatives [(n, 3), (n, 3)] and Laplacian (n, 3), one pass."""
    h, first, lap, is_input = x, None, None, True
    for w, b in params[:-1]:
        z = h @ w + b
        if is_input:
            zf = [w[0], w[1]]  # e_i @ W: one row shared by all points
            zl = 0.0
        else:
            zf = [first[0] @ w, first[1] @ w]
            zl = lap @ w
        t = jnp.tanh(z)
        d1 = 1 - t * t
        d2 = -2 * t * d1
        h = t
        first = [d1 * zf[0], d1 * zf[1]]
        lap = d2 * (zf[0] * zf[0] + zf[1] * zf[1]) + d1 * zl
        is_input = False
    w, b = params[-1]
    return h @ w + b, [first[0] @ w, first[1] @ w], lap @ w


def vmap_jvp(params, x):
    f = lambda y: mlp(params, y[None])[0]  # (3,)

    def one(xi):
        e = jnp.eye(2, dtype=xi.dtype)
        d = [jax.jvp(f, (xi,), (e[i],))[1] for i in range(2)]
        dd = [
            jax.jvp(lambda y, i=i: jax.jvp(f, (y,), (e[i],))[1], (xi,), (e[i],))[1]
            for i in range(2)
        ]
        return f(xi), d, dd[0] + dd[1]

    return jax.vmap(one)(x)


def plain_residual(value, first, lap):
    u, v = value[:, 0], value[:, 1]
    mx = u * first[0][:, 0] + v * first[1][:, 0] + first[0][:, 2] - NU * lap[:, 0]
    my = u * first[0][:, 1] + v * first[1][:, 1] + first[1][:, 2] - NU * lap[:, 1]
    return jnp.stack([mx, my, first[0][:, 0] + first[1][:, 1]], axis=1)


def plain_loop(derivs, batch, steps: int, dtype):
    tx = optax.adam(1e-3)

    def loss(params):
        r = plain_residual(*derivs(params, batch["interior"]))
        return jnp.mean(r**2) + jnp.mean(mlp(params, batch["boundary"])[:, :2] ** 2)

    def step(_, carry):
        p, s = carry
        g = jax.grad(loss)(p)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    params = init_params(jax.random.PRNGKey(0), dtype)
    state = [(params, tx.init(params))]
    run = jax.jit(lambda c: jax.lax.fori_loop(0, steps, step, c))

    def block():
        state[0] = run(state[0])
        return state[0]

    return block


# ------------------------------------------------------------------- jno variants
def jno_variants(batch, steps: int):
    from flax import nnx

    import jno
    from jno import ops

    def residual(U, x):
        u, v, p = U
        ux, uy = ops.partial(u, x, 0), ops.partial(u, x, 1)
        vx, vy = ops.partial(v, x, 0), ops.partial(v, x, 1)
        mx = u(x) * ux + v(x) * uy + ops.partial(p, x, 0) - NU * ops.laplacian(u, x)
        my = u(x) * vx + v(x) * vy + ops.partial(p, x, 1) - NU * ops.laplacian(v, x)
        return jnp.stack([mx, my, ux + vy], axis=1)

    def make_net(fields=("u", "v", "p")):
        net = jno.nn(jno.nnx.MLP(2, HIDDEN, 3, rngs=nnx.Rngs(0)), fields=fields)
        net.optimizer(optax.adam(1e-3))
        return net

    class NS(jno.Trainer):
        def losses(self, U, batch):
            r = residual(U, batch["interior"])
            return {"pde": jnp.mean(r**2), "bc": jnp.mean(U(batch["boundary"])[:, :2] ** 2)}

    class Fallback(jno.Trainer):
        def losses(self, net, batch):
            views = [lambda x, k=k: net(x)[:, k] for k in range(3)]
            r = residual(views, batch["interior"])
            return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"])[:, :2] ** 2)}

    settings = dict(points=batch, log_every=10**9, progress=False)
    trainer = NS(make_net(), **settings)
    fallback = Fallback(make_net(fields=None), **settings)
    net = make_net()
    crux = jno.core(
        [
            net.residual(residual, batch["interior"], name="pde"),
            net.residual(lambda U, x: U(x)[:, :2], batch["boundary"], name="bc"),
        ],
        log_every=10**9,
        progress=False,
    )
    return {
        "trainer": lambda: trainer.fit(steps),
        "core": lambda: crux.solve(steps),
        "trainer fallback": lambda: fallback.fit(steps),
    }


def measure(steps: int, rounds: int) -> dict:
    dtype = jnp.zeros(()).dtype
    batch = points(dtype)
    variants = {
        **jno_variants(batch, steps),
        "plain vmap-jvp": plain_loop(vmap_jvp, batch, steps, dtype),
        "plain taylor": plain_loop(taylor, batch, steps, dtype),
    }
    times = interleaved(variants, rounds=rounds, steps=steps)
    best = min(("plain vmap-jvp", "plain taylor"), key=times.median)
    row = {
        "dtype": str(dtype),
        **{f"ms {k}": 1e3 * times.median(k) for k in variants},
        "baseline": best,
        "trainer / plain": times.ratio("trainer", best),
        "trainer / plain (cpu)": times.ratio("trainer", best, "cpu"),
        "core / plain": times.ratio("core", best),
        "trainer / fallback": times.ratio("trainer", "trainer fallback"),
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--x64", action="store_true", help="float64 only (internal)")
    parser.add_argument("--no-x64", action="store_true", help="skip the float64 run")
    args = parser.parse_args(argv)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
        print(json.dumps(measure(args.steps, args.rounds)))
        return
    rows = [measure(args.steps, args.rounds)]
    if not args.no_x64:
        out = subprocess.run(
            [sys.executable, __file__, "--x64", f"--steps={args.steps}", f"--rounds={args.rounds}"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        "| dtype | trainer ms | core ms | fallback ms | plain vmap-jvp ms | plain taylor ms "
        "| trainer / best plain (wall, cpu) | core / best plain | trainer / fallback |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dtype']} | {r['ms trainer']:.2f} | {r['ms core']:.2f} "
            f"| {r['ms trainer fallback']:.2f} | {r['ms plain vmap-jvp']:.2f} "
            f"| {r['ms plain taylor']:.2f} | **{r['trainer / plain']:.3f}**, "
            f"{r['trainer / plain (cpu)']:.3f} | {r['core / plain']:.3f} "
            f"| {r['trainer / fallback']:.3f} |"
        )


if __name__ == "__main__":
    main()
