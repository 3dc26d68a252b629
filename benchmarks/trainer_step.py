"""Trainer step time against a hand-written JAX + optax loop, fused steps, and the peer.

Poisson 2-D (-lap u = 2 pi^2 sin(pi x) sin(pi y) on the unit square, u = 0 on the
boundary), MLP 2 -> 4x64 tanh -> 1, 3072 interior and 256 boundary points, Adam 1e-3.
The trainer and ``jno.core`` take the Laplacian with ``jno.ops.laplacian``; the
hand-written loops are plain JAX from ``plain_pinn.py`` (no jno import), with the
Laplacian propagated forward through the layers. Timings are medians of interleaved
blocks in one process, so the printed ratios compare like with like.

Run::

    .venv/bin/python benchmarks/trainer_step.py [--peer-python .peer/bin/python]

``--only-core`` runs only the ``jno.core`` comparison: the same problem written as
terms (``jno.core([pde, bc])``, and with ReLoBRaLo placeholders) against the ``Trainer``
subclass (with an embedded ``ReLoBRaLo``), timed in the same interleaved blocks.

``--peer-python`` names the interpreter of a virtualenv holding the peer library
(``python -m venv .peer && .peer/bin/pip install jax-numerical-operators``); it runs
``benchmarks/peer_poisson.py`` there on the same problem.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plain_pinn  # noqa: E402

import jno  # noqa: E402
from jno import (
    core,  # noqa: E402
    ops,  # noqa: E402
)
from jno.nnx.balancers import ReLoBRaLo  # noqa: E402
from jno.nnx.networks.mlp import MLP  # noqa: E402

from common import interleaved, poisson_points, poisson_source  # noqa: E402


def residual_losses(net, batch):
    x = batch["interior"]
    r = ops.laplacian(net, x) + poisson_source(x)
    return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


class Poisson(jno.train.Trainer):
    def losses(self, net, batch):
        return residual_losses(net, batch)


def make_trainer(points, hidden, steps_per_call=None, balancer=None):
    net = jno.nn(MLP(2, hidden, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    trainer = Poisson(
        net,
        points=points,
        balancer=balancer,
        log_every=10**9,
        steps_per_call=steps_per_call,
        progress=False,
    )
    return trainer


def make_crux(points, hidden, balanced=False):
    """The same problem as terms: ``jno.core([pde, bc])`` (or ReLoBRaLo-weighted)."""
    net = jno.nn(MLP(2, hidden, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    pde = net.residual(
        lambda u, x: ops.laplacian(u, x) + poisson_source(x), points["interior"], name="pde"
    )
    bc = net.residual(lambda u, x: u(x), points["boundary"], name="bc")
    terms = [pde, bc]
    if balanced:
        w_pde, w_bc = jno.fn.adaptive.relobralo([pde, bc])
        terms = [w_pde * pde, w_bc * bc]
    return core(terms, log_every=10**9, progress=False)


def core_vs_trainer(points, hidden, rounds: int, k: int) -> None:
    variants = {
        "Trainer subclass": make_trainer(points, hidden),
        "jno.core([pde, bc])": make_crux(points, hidden),
        "Trainer + ReLoBRaLo": make_trainer(points, hidden, balancer=ReLoBRaLo(2)),
        "jno.core + relobralo placeholders": make_crux(points, hidden, balanced=True),
    }
    times = interleaved(
        {name: (lambda t=t: t.fit(k)) for name, t in variants.items()}, rounds=rounds, steps=k
    )
    print("\njno.core terms against the Trainer subclass, same problem (ms/step, median)")
    names = list(variants)
    _table(times, names[:2], base="Trainer subclass")
    _table(times, names[2:], base="Trainer + ReLoBRaLo")
    costs = {name: _xla_cost(t) for name, t in variants.items()}
    for crux, trainer in ((names[1], names[0]), (names[3], names[2])):
        wall, cpu = times.ratio(crux, trainer), times.ratio(crux, trainer, "cpu")
        flops = costs[crux]["flops"] / costs[trainer]["flops"]
        nbytes = costs[crux]["bytes accessed"] / costs[trainer]["bytes accessed"]
        print(f"  ratio {crux} / {trainer}: wall {wall:.3f}, cpu {cpu:.3f}, "
              f"XLA flops {flops:.4f}, bytes {nbytes:.4f}")  # fmt: skip


def _xla_cost(trainer) -> dict:
    """XLA's static cost analysis of a trainer's compiled multi-step function."""
    compiled = trainer.compile()
    args = (trainer.initial_state(), compiled.metrics.empty(), trainer.fixed_points(), 1)
    cost = compiled._run.lower(*args).compile().cost_analysis()
    return cost[0] if isinstance(cost, list) else cost


def make_hand_loops(points, hidden, steps):
    """The plain-JAX loops of ``plain_pinn`` (no jno): one jitted call per step, and fused.

    Both take the Laplacian the fastest way known to us (batched forward propagation
    of the Laplacian through the layers, sharing the primal pass).
    """
    dtype = points["interior"].dtype
    derivs = plain_pinn.taylor_derivs
    per_step = plain_pinn.make_loop("poisson", points, derivs, steps, dtype, hidden, fused=False)
    fused = plain_pinn.make_loop("poisson", points, derivs, steps, dtype, hidden, fused=True)
    return per_step, fused


def peer_ms_per_step(python: str, steps: int, inner_steps: int = 1) -> dict | None:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_poisson.py")
    cmd = [python, script, "--steps", str(steps), "--inner-steps", str(inner_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(times, names, base) -> None:
    print(f"  {'variant':32s} {'wall':>9s} {'cpu':>9s} {'ratio wall':>10s} {'ratio cpu':>10s}")
    for name in names:
        print(
            f"  {name:32s} {1e3 * times.median(name):9.3f} {1e3 * times.median(name, 'cpu'):9.3f}"
            f" {times.ratio(name, base):10.3f} {times.ratio(name, base, 'cpu'):10.3f}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--peer-python", default=None, help="python of the peer's venv")
    parser.add_argument("--peer-steps", type=int, default=1000)
    parser.add_argument("--only-core", action="store_true", help="only the jno.core part")
    args = parser.parse_args(argv)

    print(f"devices: {jax.devices()}")
    points = poisson_points()
    hidden = [64, 64, 64, 64]
    if args.only_core:
        core_vs_trainer(points, hidden, args.rounds, args.steps)
        return
    trainer = make_trainer(points, hidden)
    crux = make_crux(points, hidden)
    k = args.steps
    per_step, fused = make_hand_loops(points, hidden, k)
    times = interleaved(
        {
            "trainer": lambda: trainer.fit(k),
            "jno.core": lambda: crux.solve(k),
            "hand, one dispatch per step": per_step,
            "hand, fused fori_loop": fused,
        },
        rounds=args.rounds,
        steps=k,
    )
    hand, fused_hand = "hand, one dispatch per step", "hand, fused fori_loop"
    print("\nPoisson 2-D, MLP 4x64 tanh, 3072 + 256 points, Adam (ms/step, median)")
    _table(times, ["trainer", "jno.core", hand, fused_hand], base=fused_hand)

    small_points = poisson_points(256, 64, seed=1)
    fused_trainer = make_trainer(small_points, [32, 32])
    single_trainer = make_trainer(small_points, [32, 32], steps_per_call=1)
    ks = 4 * k
    small = interleaved(
        {
            "fused (one dispatch per fit)": lambda: fused_trainer.fit(ks),
            "one dispatch per step": lambda: single_trainer.fit(ks),
        },
        rounds=args.rounds,
        steps=ks,
    )
    print("\nSmall problem, MLP 2x32, 256 + 64 points (ms/step, median)")
    _table(small, list(small.wall), base="fused (one dispatch per fit)")
    speedup = small.ratio("one dispatch per step", "fused (one dispatch per fit)")
    print(f"  throughput fused / one dispatch per step: {speedup:.2f}x")

    core_vs_trainer(points, hidden, args.rounds, args.steps)

    if args.peer_python:
        ours = {name: 1e3 * times.median(name) for name in ("trainer", "jno.core")}
        for inner in (1, 100):
            peer = peer_ms_per_step(args.peer_python, args.peer_steps, inner)
            name = f"{peer.get('library')} {peer.get('version')}, inner_steps={inner}"
            print(f"\nPeer library ({name}): {peer['ms_per_step']:.3f} ms/step")
            print(f"  notes: {peer.get('notes', '')}")
            for variant, ms in ours.items():
                print(f"  ratio {variant} / peer: {ms / peer['ms_per_step']:.3f}")


if __name__ == "__main__":
    main()
