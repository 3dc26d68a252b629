"""Each ``jno.ops`` operator on each network of ``jno.nnx``, against plain JAX.

For every network (``mlp``: MLP 2 -> 4x64 tanh; ``mlp-ff-bounds``: the same with 32
random Fourier features and input bounds; ``modified``: ModifiedMLP 4x64;
``mlp-rwf-periodic``: MLP 4x64 with random weight factorization, input bounds and the
exact periodic embedding of ``x``; ``pirate``: PirateNet of width 64 with one residual
block, the same factorization, bounds and periodic embedding, 32 Fourier features) and every
operator (``grad``, ``partial``, ``partial2``, ``laplacian``, ``hessian``,
``divergence``), a training step: the loss ``mean(op(u, x)^2)`` over 4096 points, its
gradient with respect to the parameters, an Adam update, ``--steps`` steps fused in one
compiled ``fori_loop``. The jno side calls the operator on the ``jno.nnx`` network; the
baseline is the same network written in plain JAX in this file (parameters a dict of
arrays, no jno import), the operator the textbook way: the network on one point, nested
``jax.jvp`` (``jax.grad`` for the gradient, ``jax.jacfwd`` for the Jacobian behind the
divergence), ``jax.vmap`` over the points. Blocks are interleaved over ``--rounds``
rounds; the ratio is the median of per-round ratios.

Run::

    .venv/bin/python benchmarks/operators.py [--steps 20] [--rounds 5]
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

from jno import ops  # noqa: E402
from jno.nnx import MLP, ModifiedMLP, PirateNet  # noqa: E402

from common import interleaved  # noqa: E402

WIDTH, DEPTH, N = 64, 4, 4096
LO, HI = np.array([-1.0, 0.0]), np.array([1.0, 1.0])
NETWORKS = ("mlp", "mlp-ff-bounds", "modified", "mlp-rwf-periodic", "pirate")
OPERATORS = ("grad", "partial", "partial2", "laplacian", "hessian", "divergence")


# ------------------------------------------------------------ plain-JAX networks
def plain_params(kind: str, out: int, key):
    keys = iter(jax.random.split(key, 16))
    factorized = kind in ("mlp-rwf-periodic", "pirate")

    def dense(key, a, b):
        w = jax.random.normal(key, (a, b)) * np.sqrt(2 / (a + b))
        if factorized:  # W = V * exp(s), s ~ N(1, 0.1)
            s = 1.0 + 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (b,))
            return {"v": w / jnp.exp(s), "s": s, "b": jnp.zeros(b)}
        return {"w": w, "b": jnp.zeros(b)}

    p = {}
    width_in = 3 if kind == "mlp-rwf-periodic" else 2
    if kind in ("mlp-ff-bounds", "pirate"):
        p["B"] = jax.random.normal(next(keys), (3 if kind == "pirate" else 2, 32))
        width_in = 64
    if kind in ("modified", "pirate"):
        p["U"], p["V"] = dense(next(keys), width_in, WIDTH), dense(next(keys), width_in, WIDTH)
    if kind == "pirate":
        p["alpha"] = jnp.zeros(1)
        sizes = [width_in] + [WIDTH] * 3 + [out]
    else:
        sizes = [width_in] + [WIDTH] * DEPTH + [out]
    p["layers"] = [dense(next(keys), a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    return p


def _affine(layer, h):
    w = layer["w"] if "w" in layer else layer["v"] * jnp.exp(layer["s"])
    return h @ w + layer["b"]


def plain_net(kind: str, p, x):
    """The network on one point ``x`` of shape ``(2,)``."""
    if kind in ("mlp-ff-bounds", "mlp-rwf-periodic", "pirate"):
        raw, x = x, 2.0 * (x - LO) / (HI - LO) - 1.0
    if kind in ("mlp-rwf-periodic", "pirate"):  # x is 2-periodic: t, cos(pi x), sin(pi x)
        x = jnp.stack([x[1], jnp.cos(jnp.pi * raw[0]), jnp.sin(jnp.pi * raw[0])])
    if kind in ("mlp-ff-bounds", "pirate"):
        z = 2 * jnp.pi * x @ p["B"]
        x = jnp.concatenate([jnp.cos(z), jnp.sin(z)])
    layers = p["layers"]
    if kind == "pirate":
        u, v = jnp.tanh(_affine(p["U"], x)), jnp.tanh(_affine(p["V"], x))
        f = jnp.tanh(_affine(layers[0], x))
        z = v + f * (u - v)
        g = jnp.tanh(_affine(layers[1], z))
        z = v + g * (u - v)
        h = jnp.tanh(_affine(layers[2], z))
        x = x + p["alpha"][0] * (h - x)
        return _affine(layers[3], x)
    if kind == "modified":
        u = jnp.tanh(x @ p["U"]["w"] + p["U"]["b"])
        v = jnp.tanh(x @ p["V"]["w"] + p["V"]["b"])
        h = jnp.tanh(x @ layers[0]["w"] + layers[0]["b"])
        for layer in layers[1:-1]:
            z = jnp.tanh(h @ layer["w"] + layer["b"])
            h = u + z * (v - u)
    else:
        h = x
        for layer in layers[:-1]:
            h = jnp.tanh(_affine(layer, h))
    return _affine(layers[-1], h)


def plain_op(kind: str, op: str, p, x):
    """The operator at every point: per-point nested jvp under vmap."""
    e = jnp.eye(2)
    f = lambda y: plain_net(kind, p, y)[0]
    d = lambda g, i: lambda y: jax.jvp(g, (y,), (e[i],))[1]

    def one(y):
        if op == "grad":
            return jax.grad(f)(y)
        if op == "partial":
            return d(f, 0)(y)
        if op == "partial2":
            return d(d(f, 0), 1)(y)
        if op == "laplacian":
            return d(d(f, 0), 0)(y) + d(d(f, 1), 1)(y)
        if op == "hessian":
            return jnp.array([[d(d(f, i), j)(y) for j in range(2)] for i in range(2)])
        return jnp.trace(jax.jacfwd(lambda z: plain_net(kind, p, z))(y))

    return jax.vmap(one)(x)


# ------------------------------------------------------------------ both loops
def jno_net(kind: str, out: int):
    if kind == "modified":
        return ModifiedMLP(2, [WIDTH] * DEPTH, out, rngs=nnx.Rngs(0))
    kw = {}
    if kind in ("mlp-ff-bounds", "mlp-rwf-periodic", "pirate"):
        kw = {"input_lo": LO.tolist(), "input_hi": HI.tolist()}
    if kind in ("mlp-rwf-periodic", "pirate"):
        kw.update(periodic={0: 2.0}, weight_factorization=(1.0, 0.1))
    if kind == "pirate":
        return PirateNet(2, WIDTH, out, blocks=1, rngs=nnx.Rngs(0), **kw)
    if kind == "mlp-ff-bounds":
        kw["fourier_features"] = 32
    return MLP(2, [WIDTH] * DEPTH, out, rngs=nnx.Rngs(0), **kw)


def jno_op(op: str, net, x):
    if op == "partial":
        return ops.partial(net, x, 0)
    if op == "partial2":
        return ops.partial2(net, x, 0, 1)
    return getattr(ops, op)(net, x)


def fused_loop(loss, params, steps: int):
    tx = optax.adam(1e-3)

    @jax.jit
    def run(carry):
        def body(_, c):
            p, s = c
            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        return jax.lax.fori_loop(0, steps, body, carry)

    state = [(params, tx.init(params))]

    def block():
        state[0] = run(state[0])
        return state[0]

    return block


def variants(kind: str, op: str, x, steps: int):
    out = 2 if op == "divergence" else 1
    graphdef, params, rest = nnx.split(jno_net(kind, out), nnx.Param, ...)

    def jno_loss(p):
        net = nnx.merge(graphdef, p, rest)
        return jnp.mean(jno_op(op, net, x) ** 2)

    def plain_loss(p):
        return jnp.mean(plain_op(kind, op, p, x) ** 2)

    return {
        "jno": fused_loop(jno_loss, params, steps),
        "plain": fused_loop(plain_loss, plain_params(kind, out, jax.random.key(0)), steps),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--operators", default=",".join(OPERATORS))
    args = parser.parse_args(argv)
    x = jax.random.uniform(jax.random.key(1), (N, 2), minval=LO, maxval=HI)
    print("| network | operator | jno ms/step | plain vmap-jvp ms/step | jno / plain |")
    print("|---|---|---|---|---|")
    for kind in args.networks.split(","):
        for op in args.operators.split(","):
            times = interleaved(variants(kind, op, x, args.steps), args.rounds, args.steps)
            print(
                f"| {kind} | {op} | {1e3 * times.median('jno'):.2f} "
                f"| {1e3 * times.median('plain'):.2f} | **{times.ratio('jno', 'plain'):.3f}** |",
                flush=True,
            )


if __name__ == "__main__":
    main()
