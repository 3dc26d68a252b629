"""Throughput of an ensemble against the same trainings run one after the other.

Poisson 2-D (``-lap u = 2 pi^2 sin(pi x) sin(pi y)``, ``u = 0`` on the boundary),
``--members`` seeds, each with its own initial network and its own fixed points,
Adam 1e-3, ``--steps`` steps per member and block. Variants, timed in interleaved
blocks of one run (each block trains every member ``--steps`` steps):

- ``jno ensemble, vectorised``: :func:`jno.ensemble` with every member side by side;
- ``jno ensemble, sequential``: the same, members one after the other inside the
  compiled program (``members_per_batch=1``);
- ``jno one after the other``: one ``Trainer`` per seed, ``fit`` one after the other
  (what a seed loop in a script does);
- ``plain vmap`` / ``plain one after the other``: the same training written in plain
  JAX in this file (pytree parameters, the Laplacian propagated forward through the
  layers, no jno import), a ``vmap`` over the members against a loop over them.

Two sizes: ``small`` (MLP 3 x 32, 512 interior + 64 boundary points) and ``standard``
(MLP 4 x 64, 3072 + 256). The ratios printed are medians of per-round ratios.

Run::

    .venv/bin/python benchmarks/ensemble.py [--members 8] [--steps 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jno  # noqa: E402
from jno import ops  # noqa: E402
from jno.nnx.networks.mlp import MLP  # noqa: E402

from common import interleaved, poisson_points, poisson_source  # noqa: E402

SIZES = {"small": ([32] * 3, 512, 64), "standard": ([64] * 4, 3072, 256)}


# ---------------------------------------------------------------- plain JAX
def plain_init(key, hidden):
    sizes = [2, *hidden, 1]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b)) * np.sqrt(2 / (a + b)), jnp.zeros(b)))
    return params


def plain_loss(params, interior, boundary):
    """Mean squared residual, the Laplacian carried forward with the activations."""
    h, lap, grads = interior, None, None
    for k, (w, b) in enumerate(params[:-1]):
        z = h @ w + b
        zg = (
            [jnp.broadcast_to(w[i], z.shape) for i in range(2)]
            if k == 0
            else [g @ w for g in grads]
        )
        zl = 0.0 if k == 0 else lap @ w
        t = jnp.tanh(z)
        d1 = 1 - t * t
        lap = -2 * t * d1 * (zg[0] ** 2 + zg[1] ** 2) + d1 * zl
        grads = [d1 * g for g in zg]
        h = t
    w, b = params[-1]
    r = (lap @ w)[:, 0] + poisson_source(interior)
    u_b = boundary
    for w_, b_ in params[:-1]:
        u_b = jnp.tanh(u_b @ w_ + b_)
    return jnp.mean(r**2) + jnp.mean((u_b @ w + b) ** 2)


def plain_variants(members, hidden, n_int, n_bnd, steps):
    tx = optax.adam(1e-3)

    def step(carry, interior, boundary):
        params, state = carry
        grads = jax.grad(plain_loss)(params, interior, boundary)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def loop(carry, interior, boundary):
        return jax.lax.fori_loop(0, steps, lambda _, c: step(c, interior, boundary), carry)

    data = [poisson_points(n_int, n_bnd, seed=k) for k in range(members)]
    inits = [plain_init(jax.random.key(k), hidden) for k in range(members)]
    carries = [(p, tx.init(p)) for p in inits]
    interior = jnp.stack([d["interior"] for d in data])
    boundary = jnp.stack([d["boundary"] for d in data])
    stacked = [jax.tree.map(lambda *a: jnp.stack(a), *carries)]
    vectorised = jax.jit(jax.vmap(loop))
    single = jax.jit(loop)
    alone = list(carries)

    def run_vmap():
        stacked[0] = vectorised(stacked[0], interior, boundary)
        return stacked[0]

    def run_loop():
        for k in range(members):
            alone[k] = single(alone[k], data[k]["interior"], data[k]["boundary"])
        return alone

    return {"plain vmap": run_vmap, "plain one after the other": run_loop}


# ---------------------------------------------------------------------- jno
class Poisson(jno.Trainer):
    def losses(self, net, batch):
        x = batch["interior"]
        r = ops.laplacian(net, x) + poisson_source(x)
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


def jno_variants(members, hidden, n_int, n_bnd, steps):
    def make(seed):
        net = jno.nn(MLP(2, hidden, 1, rngs=nnx.Rngs(seed)))
        net.optimizer(optax.adam(1e-3))
        points = poisson_points(n_int, n_bnd, seed=seed)
        return Poisson(net, points=points, seed=seed, log_every=10**9, progress=False)

    vectorised = jno.ensemble(make, seeds=range(members), members_per_batch=members)
    sequential = jno.ensemble(make, seeds=range(members), members_per_batch=1)
    alone = [make(seed) for seed in range(members)]

    def run(ensemble):
        def block():
            ensemble.fit(steps)
            return [nnx.state(m.nets[0].module) for m in ensemble.members]

        return block

    def run_alone():
        for trainer in alone:
            trainer.fit(steps)
        return [nnx.state(t.nets[0].module) for t in alone]

    return {
        "jno ensemble, vectorised": run(vectorised),
        "jno ensemble, sequential": run(sequential),
        "jno one after the other": run_alone,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", default="small,standard")
    args = p.parse_args(argv)
    print(
        f"{args.members} members, {args.steps} steps per member and block, "
        f"{args.rounds} rounds, {jax.device_count()} {jax.devices()[0].platform} device(s)"
    )
    print("| size | variant | ms per member-step | speed-up vs one after the other |")
    print("|---|---|---|---|")
    for size in args.sizes.split(","):
        hidden, n_int, n_bnd = SIZES[size]
        variants = {
            **jno_variants(args.members, hidden, n_int, n_bnd, args.steps),
            **plain_variants(args.members, hidden, n_int, n_bnd, args.steps),
        }
        times = interleaved(variants, args.rounds, args.steps * args.members)
        for name in variants:
            base = "plain" if name.startswith("plain") else "jno"
            speedup = times.ratio(f"{base} one after the other", name)
            print(
                f"| {size} | {name} | {1e3 * times.median(name):.3f} | **{speedup:.2f}x** |",
                flush=True,
            )
        overhead = times.ratio("jno ensemble, vectorised", "plain vmap")
        print(f"| {size} | jno vectorised / plain vmap (time ratio) | | {overhead:.2f} |")


if __name__ == "__main__":
    main()
