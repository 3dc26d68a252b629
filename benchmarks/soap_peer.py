"""SOAP side by side: ``jno.optim.soap`` against the seed library's SOAP, and Adam.

The problem is a plain-JAX Burgers PINN in float32 from ``plain_pinn.py`` (no jno
import): an MLP 2-64-64-64-1 (tanh), 4096 fixed interior points and 256 boundary and
initial points, the residual derivatives propagated forward through the layers. Every
optimizer starts from the same parameters (one set per seed) and gets the same
hyper-parameters, passed explicitly:

- learning rate 1e-3, cosine decay to 1e-5 over the run (``optax`` schedule);
- b1 0.9, b2 0.999, eps 1e-8, no weight decay;
- SOAP: bases refreshed every 10 steps, 1-D tensors not preconditioned.

The seed library's SOAP is its own file, ``jno/optimizers/soap.py`` of
jax-numerical-operators (it imports only jax and optax), loaded from the peer's
virtualenv into this process, so that both run under the same JAX on the same
training step.

Two measurements:

- time per step: interleaved blocks of ``--block`` steps of each optimizer (one
  compiled ``fori_loop`` per block), median over ``--rounds`` rounds of the per-round
  ratio;
- accuracy: ``--steps`` steps for each seed, the relative L2 error against the
  Cole-Hopf solution (``jno.problems.burgers.cole_hopf``, converged quadrature) on a
  256 x 101 grid; medians over the seeds.

Run::

    .venv/bin/python benchmarks/soap_peer.py --peer-python /work/peer/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plain_pinn  # noqa: E402

from common import interleaved  # noqa: E402

HIDDEN = [64, 64, 64]
HYPER = dict(b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, precondition_frequency=10)


def peer_soap_module(peer_python: str):
    """The seed library's ``soap.py``, loaded by path as module ``peer_soap``."""
    # Outside this repository, so that ``jno`` is the peer's package; found, not imported.
    where = "import importlib.util as u; print(u.find_spec('jno').submodule_search_locations[0])"
    package = subprocess.run(
        [os.path.abspath(peer_python), "-c", where], capture_output=True, text=True,
        check=True, cwd="/",
    ).stdout.strip()  # fmt: skip
    path = os.path.join(package, "optimizers", "soap.py")
    spec = importlib.util.spec_from_file_location("peer_soap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def optimizers(peer, steps: int) -> dict[str, optax.GradientTransformation]:
    from jno.optim import soap

    schedule = optax.cosine_decay_schedule(1e-3, steps, alpha=1e-2)
    return {
        "jno soap": soap(learning_rate=schedule, precondition_1d=False, **HYPER),
        "peer soap": peer.soap(learning_rate=schedule, precondition_1d=False, **HYPER),
        "optax adam": optax.adam(schedule, b1=HYPER["b1"], b2=HYPER["b2"], eps=HYPER["eps"]),
    }


def reference_grid():
    from jno.problems.burgers import cole_hopf

    x, t = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(0, 1, 101))
    u = cole_hopf(x.ravel(), t.ravel())
    grid = np.stack([x.ravel(), t.ravel()], axis=1).astype(np.float32)
    return jnp.asarray(grid), u


def trainer(tx, points, n: int):
    loss = plain_pinn.loss_fn("burgers", plain_pinn.taylor_derivs)

    def step(_, carry):
        params, state = carry
        grads = jax.grad(loss)(params, points)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(lambda carry: jax.lax.fori_loop(0, n, step, carry))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=".peer/bin/python")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    peer, path = peer_soap_module(args.peer_python)
    print(f"peer SOAP: {path}; JAX {jax.__version__}, {jax.devices()[0].platform}")
    points = plain_pinn.points("burgers", jnp.float32, 4096, 256, seed=0)
    txs = optimizers(peer, args.steps)

    # Time per step: interleaved blocks from the same start.
    variants = {}
    for name, tx in txs.items():
        params = plain_pinn.init_params(jax.random.PRNGKey(0), jnp.float32, HIDDEN)
        carry = [(params, tx.init(params))]
        run = trainer(tx, points, args.block)

        def block(run=run, carry=carry):
            carry[0] = run(carry[0])
            return carry[0]

        variants[name] = block
    times = interleaved(variants, args.rounds, args.block)
    print(f"\n{args.block} steps a block, {args.rounds} rounds (interleaved)")
    print("| optimizer | ms per step | time vs peer soap |")
    print("|---|---|---|")
    for name in txs:
        ratio = times.ratio(name, "peer soap")
        print(f"| {name} | {1e3 * times.median(name):.3f} | **{ratio:.3f}x** |", flush=True)

    # Accuracy after the whole run, seed by seed.
    grid, exact = reference_grid()
    errors = {name: [] for name in txs}
    print(f"\n{args.steps} steps, relative L2 error against Cole-Hopf, seed by seed")
    for seed in range(args.seeds):
        params0 = plain_pinn.init_params(jax.random.PRNGKey(seed), jnp.float32, HIDDEN)
        row = []
        for name, tx in txs.items():
            start = time.perf_counter()
            params, _ = jax.block_until_ready(
                trainer(tx, points, args.steps)((params0, tx.init(params0)))
            )
            u = np.asarray(plain_pinn.mlp(params, grid)[:, 0], np.float64)
            error = float(np.linalg.norm(u - exact) / np.linalg.norm(exact))
            errors[name].append(error)
            row.append(f"{name} {error:.3e} ({time.perf_counter() - start:.0f} s)")
        print(f"seed {seed}: " + ", ".join(row), flush=True)
    print("\n| optimizer | median relative L2 | min | max |")
    print("|---|---|---|---|")
    for name, values in errors.items():
        med = statistics.median(values)
        print(f"| {name} | **{med:.3e}** | {min(values):.3e} | {max(values):.3e} |")


if __name__ == "__main__":
    main()
