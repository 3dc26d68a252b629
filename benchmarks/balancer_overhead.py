"""Cost of an embedded adaptive loss balancer in a jitted PINN training step.

Problem: Poisson on the unit square, ``-(u_xx + u_yy) = 2 pi^2 sin(pi x) sin(pi y)``
with ``u = 0`` on the boundary; an MLP 2 -> 64 x 4 -> 1 (tanh); ~3000 interior and
~200 boundary points; the Laplacian in forward mode (jvp of jvp along each unit
vector, applied to the whole batch since the MLP acts row-wise); two losses
(interior residual, boundary); Adam through ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.

Variants: fixed weights ``(1, 1)`` and each balancer embedded in the model, its
weights multiplying the losses inside the step. Every variant is timed two ways:

* ``per-call``: a Python loop of ``--steps`` calls of the jitted step;
* ``fused``: ``--steps`` steps in one jitted ``nnx.fori_loop`` (no dispatch cost).

Timed blocks are interleaved: in each of ``--rounds`` rounds, every balancer's
block runs next to a fixed-weight block (order shuffled), and the ratio of the pair
is recorded, so drifts of the machine's load cancel. The table gives the median time
per step and the median of the paired ratios, measured in wall-clock time and in
process CPU time (CPU time is far less sensitive to other processes competing for
the cores). Noise-free complements: each balancer timed alone (1000 updates in one
compiled loop), and XLA's static cost analysis of each compiled step (flops, bytes
accessed, number of fused kernels).

A second table (``benchmarks/gradient_balancers.py``) gives the amortised cost of the
balancers that need per-term gradients or NTK diagonals, computed by the Trainer every
``update_every = 100`` steps, against fixed weights in the same Trainer.

Run: ``.venv/bin/python benchmarks/balancer_overhead.py`` (options: ``--help``;
``--only-gradient`` for the second table alone).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import time

import gradient_balancers
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt


class MLP(nnx.Module):
    def __init__(self, sizes, rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


class PINN(nnx.Module):
    """The network plus, optionally, an embedded balancer."""

    def __init__(self, balancer, rngs):
        self.net = MLP([2, 64, 64, 64, 64, 1], rngs)
        self.balancer = balancer


def laplacian(f, x):
    """Sum over i of the second directional derivative along e_i, for the whole batch."""
    total = 0.0
    for i in range(x.shape[1]):
        direction = jnp.zeros_like(x).at[:, i].set(1.0)

        def first(y, direction=direction):
            return jax.jvp(f, (y,), (direction,))[1]

        total = total + jax.jvp(first, (x,), (direction,))[1]
    return total


def losses_of(net, interior, boundary):
    source = 2.0 * jnp.pi**2 * jnp.prod(jnp.sin(jnp.pi * interior), axis=1, keepdims=True)
    residual = laplacian(net, interior) + source
    return jnp.stack([jnp.mean(residual**2), jnp.mean(net(boundary) ** 2)])


def train_step(model, optimizer, interior, boundary):
    def loss_fn(model):
        losses = losses_of(model.net, interior, boundary)
        fixed = model.balancer is None
        weights = jnp.ones_like(losses) if fixed else model.balancer(losses)
        return jnp.sum(weights * losses)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


step = nnx.jit(train_step)


@nnx.jit(static_argnums=4)
def fused(model, optimizer, interior, boundary, steps):
    def body(i, carry):
        model, optimizer, _ = carry
        return model, optimizer, train_step(model, optimizer, interior, boundary)

    return nnx.fori_loop(0, steps, body, (model, optimizer, jnp.zeros(())))[2]


@nnx.jit(static_argnums=2)
def balancer_alone(balancer, losses, calls):
    """``calls`` balancer updates in one compiled loop: the balancer's own latency."""

    def body(i, carry):
        balancer, acc = carry
        return balancer, acc + balancer(losses * (1.0 + 1e-3 * i))

    return nnx.fori_loop(0, calls, body, (balancer, jnp.zeros_like(losses)))[1]


def points(n_interior, n_boundary, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    interior = jax.random.uniform(k1, (n_interior, 2))
    t = jax.random.uniform(k2, (n_boundary,))
    side = jax.random.randint(k3, (n_boundary,), 0, 4)
    zeros, ones = jnp.zeros_like(t), jnp.ones_like(t)
    xs = jnp.select([side == 0, side == 1, side == 2], [t, ones, t], zeros)
    ys = jnp.select([side == 0, side == 1, side == 2], [zeros, t, ones], t)
    return interior, jnp.stack([xs, ys], axis=1)


VARIANTS = {
    "fixed": lambda: None,
    "ReLoBRaLo": lambda: ReLoBRaLo(2),
    "SoftAdapt": lambda: SoftAdapt(2),
    "DWA": lambda: DWA(2),
    "LbPINNs": lambda: LbPINNsLossBalancing(2),
    "RLW": lambda: RLW(2),
}


def xla_costs(interior, boundary):
    """XLA's static cost analysis of each variant's compiled step: flops, bytes
    accessed and the number of fused kernels. Deterministic, unlike the timings."""
    costs = {}
    for name, make in VARIANTS.items():
        model = PINN(make(), nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
        graphdef, state = nnx.split((model, optimizer))

        def pure(state, interior, boundary, graphdef=graphdef):
            model, optimizer = nnx.merge(graphdef, state)
            loss = train_step(model, optimizer, interior, boundary)
            return loss, nnx.state((model, optimizer))

        compiled = jax.jit(pure).lower(state, interior, boundary).compile()
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        kernels = compiled.as_text().count(" fusion(")
        costs[name] = (analysis["flops"], analysis["bytes accessed"], kernels)
    return costs


def time_balancers_alone(calls=1000, repeats=5):
    alone = {}
    losses = jnp.array([1.0, 0.1])
    for name, make in VARIANTS.items():
        if name == "fixed":
            continue
        balancer = make()
        jax.block_until_ready(balancer_alone(balancer, losses, calls))
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(balancer_alone(balancer, losses, calls))
            samples.append((time.perf_counter() - start) / calls)
        alone[name] = statistics.median(samples)
    return alone


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--interior", type=int, default=3000)
    parser.add_argument("--boundary", type=int, default=200)
    parser.add_argument(
        "--gradient-rounds", type=int, default=5, help="rounds of the gradient-balancer table"
    )
    parser.add_argument(
        "--only-gradient", action="store_true", help="only the gradient-balancer table"
    )
    args = parser.parse_args()
    if not args.only_gradient:
        embedded_table(args)
        print()
    # Balancers that need per-term gradients or NTK diagonals run inside the Trainer,
    # which computes those every update_every steps: the amortised cost per step.
    print("\n".join(gradient_balancers.table(args.gradient_rounds, 3, 100)))


def embedded_table(args):

    interior, boundary = points(args.interior, args.boundary)
    setups = {}
    for name, make in VARIANTS.items():
        for how in ("per-call", "fused"):
            model = PINN(make(), nnx.Rngs(0))
            optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
            setups[name, how] = (model, optimizer)

    def run_block(name, how):
        """Wall-clock and process CPU seconds per step of one block of steps."""
        model, optimizer = setups[name, how]
        wall, cpu = time.perf_counter(), time.process_time()
        if how == "fused":
            loss = fused(model, optimizer, interior, boundary, args.steps)
        else:
            for _ in range(args.steps):
                loss = step(model, optimizer, interior, boundary)
        jax.block_until_ready((loss, nnx.state(model)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall / args.steps, cpu / args.steps

    for key in setups:  # compile and warm up
        run_block(*key)

    # Each balancer block runs right after (or before, at random) a fixed-weight block
    # and is compared with it: the paired ratio cancels drifts of the machine's load.
    shuffle = random.Random(0)
    times = {key: [] for key in setups}
    ratios = {key: [] for key in setups if key[0] != "fixed"}
    balancers = [name for name in VARIANTS if name != "fixed"]
    for _ in range(args.rounds):
        for how in ("per-call", "fused"):
            shuffle.shuffle(balancers)
            for name in balancers:
                pair = [("fixed", how), (name, how)]
                shuffle.shuffle(pair)
                t = {key[0]: run_block(*key) for key in pair}
                times["fixed", how].append(t["fixed"][0])
                times[name, how].append(t[name][0])
                ratios[name, how].append((t[name][0] / t["fixed"][0], t[name][1] / t["fixed"][1]))
    alone = time_balancers_alone()
    costs = xla_costs(interior, boundary)

    print(
        f"# {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"jax {jax.__version__} ({jax.default_backend()}), {args.interior} interior + "
        f"{args.boundary} boundary points, {args.rounds} rounds x {args.steps} steps per block"
    )
    print(
        "| variant | fused ms/step | fused ratio wall, CPU | per-call ms/step "
        "| per-call ratio wall, CPU | balancer alone us/call | XLA flops, bytes ratio "
        "| fused kernels |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        cells = []
        for how in ("fused", "per-call"):
            cells.append(f"{1e3 * statistics.median(times[name, how]):.2f}")
            if name == "fixed":
                cells.append("1, 1")
            else:
                wall = statistics.median(r[0] for r in ratios[name, how])
                cpu = statistics.median(r[1] for r in ratios[name, how])
                cells.append(f"{wall:.3f}, {cpu:.3f}")
        cells.append(f"{1e6 * alone[name]:.2f}" if name in alone else "-")
        flops, nbytes, kernels = costs[name]
        cells.append(f"{flops / costs['fixed'][0]:.4f}, {nbytes / costs['fixed'][1]:.4f}")
        cells.append(str(kernels))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
