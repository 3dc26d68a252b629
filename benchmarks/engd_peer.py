"""ENGD side by side: ``jno.optim.engd`` against the seed library's ``jno.optimizers.engd``.

One Poisson problem and one start for both: ``-lap u = 2 pi^2 sin(pi x) sin(pi y)`` on
the unit square, ``u = 0`` on its boundary, a tanh MLP 2-``--width``-1 in float64, with
``--interior`` interior points on a grid and ``--boundary`` boundary points. The same
initial weights (Glorot-uniform from numpy, seed ``--seed``) go into both networks.
Each library runs ENGD for ``--steps`` iterations in chunks of ``--chunk``, both with
singular values of the Jacobian below ``--rcond`` times the largest dropped (the peer
solves with ``lstsq`` on the Gramian ``J^T J / N``, so it gets ``rcond ** 2``):

* ``jno``: this package's trainer, ``net.optimizer(jno.optim.engd())``. Its solver is the
  eigendecomposition of the ``P x P`` Gramian, and its step the best of a 31-point grid.
* ``peer``: jax-numerical-operators, in its own venv (``--peer-python``):
  ``net.optimizer(jno.optimizers.engd())`` on ``jno.core([2 pde.mse, 2 bc.mse])``. The
  peer descends the mean of its losses, so the weights of 2 give the same objective. It
  solves with ``lstsq`` and the same 31-point grid.

After each chunk, the script records the relative L2 error on a 101 x 101 grid against
the exact solution, and the wall time (compilation excluded: one chunk runs first and is
not counted). It prints both traces, then the time each library needs to reach the
peer's final error. The two runs are sequential, so each has both cores.

Usage:
    .venv/bin/python benchmarks/engd_peer.py --peer-python /work/peer/bin/python \\
        > benchmarks/results/engd_peer.log
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def points(interior: int, boundary: int):
    """A grid of interior points and boundary points evenly spread over the four sides."""
    side = int(round(np.sqrt(interior)))
    g = (np.arange(side) + 0.5) / side
    xi = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    t = (np.arange(boundary // 4) + 0.5) / (boundary // 4)
    zeros, ones = np.zeros_like(t), np.ones_like(t)
    xb = np.concatenate(
        [np.stack(p, 1) for p in ((t, zeros), (t, ones), (zeros, t), (ones, t))], axis=0
    )
    return xi, xb


def initial_weights(width: int, seed: int):
    """Glorot-uniform weights ``(in, out)`` and zero biases of a 2-width-1 MLP."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in ((2, width), (width, 1)):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        out += [rng.uniform(-limit, limit, (fan_in, fan_out)), np.zeros(fan_out)]
    return out


def grid_error(weights) -> float:
    """Relative L2 error of the MLP with ``weights`` on a 101 x 101 grid."""
    g = np.linspace(0.0, 1.0, 101)
    x = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    w1, b1, w2, b2 = weights
    u = (np.tanh(x @ w1 + b1) @ w2 + b2)[:, 0]
    exact = np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def run_jno(args) -> list:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    jax.config.update("jax_enable_x64", True)
    import jno

    class Poisson(jno.Trainer):
        def residuals(self, net, batch):
            x = batch["interior"]
            f = 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])
            return {"pde": -jno.ops.laplacian(net, x) - f, "bc": net(batch["boundary"])[:, 0]}

        def losses(self, net, batch):
            return {k: jnp.mean(v**2) for k, v in self.residuals(net, batch).items()}

    xi, xb = points(args.interior, args.boundary)
    mlp = jno.nnx.MLP(2, [args.width], 1, rngs=nnx.Rngs(0))
    w = initial_weights(args.width, args.seed)
    for layer, (kernel, bias) in zip(mlp.layers, (w[:2], w[2:])):
        layer.kernel[...] = jnp.asarray(kernel)
        layer.bias[...] = jnp.asarray(bias)
    net = jno.nn(mlp)
    net.optimizer(jno.optim.engd(rcond=args.rcond))
    trainer = Poisson(net, points={"interior": xi, "boundary": xb}, progress=False)

    def weights():
        return [np.asarray(v) for layer in mlp.layers for v in (layer.kernel[...], layer.bias[...])]

    return _trace(lambda n: trainer.fit(n), weights, args)


def run_peer(args) -> list:
    import equinox as eqx
    import foundax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import jno

    jno.logger(args.peer_log, log_print=(True, False))
    xi, xb = points(args.interior, args.boundary)
    dom = jno.domain.from_array({"interior": xi, "boundary": xb})
    x, y, _ = dom.variable("interior", split=True)
    xb_, yb_, _ = dom.variable("boundary", split=True)
    model = foundax.mlp(
        2, output_dim=1, hidden_dims=[args.width], activation=jnp.tanh, key=jax.random.PRNGKey(0)
    )
    w = initial_weights(args.width, args.seed)
    model = eqx.tree_at(
        lambda m: (
            m.hidden_layers[0].weight,
            m.hidden_layers[0].bias,
            m.output_layer.weight,
            m.output_layer.bias,
        ),
        model,
        tuple(jnp.asarray(a) for a in (w[0].T, w[1], w[2].T, w[3])),
    )
    net = jno.nn(model)
    # The peer cuts the Gramian J^T J / N in lstsq: its eigenvalues are the squares.
    net.optimizer(jno.optimizers.engd(rcond=args.rcond**2))
    f = 2 * np.pi**2 * jno.np.sin(np.pi * x) * jno.np.sin(np.pi * y)
    pde = -net(x, y).laplacian(x, y) - f
    core = jno.core([2.0 * pde.mse, 2.0 * net(xb_, yb_).mse])

    def weights():
        leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(core.models) if np.ndim(v) > 0]
        hidden_w, hidden_b, out_w, out_b = leaves[-4:]
        return [hidden_w.T, hidden_b, out_w.T, out_b]

    return _trace(lambda n: core.solve(n), weights, args)


def _trace(fit, weights, args) -> list:
    fit(args.chunk)  # compiles; not counted
    trace = [(args.chunk, 0.0, grid_error(weights()))]
    elapsed = 0.0
    for done in range(2 * args.chunk, args.steps + 1, args.chunk):
        start = time.perf_counter()
        fit(args.chunk)
        elapsed += time.perf_counter() - start
        trace.append((done, elapsed, grid_error(weights())))
        print(f"step {done}: {trace[-1][2]:.3e} ({elapsed:.1f} s)", file=sys.stderr)
    return trace


def time_to(trace: list, error: float) -> float | None:
    """Seconds until the trace first reaches ``error`` (None if it never does)."""
    return next((t for _, t, e in trace if e <= error), None)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--interior", type=int, default=900)
    p.add_argument("--boundary", type=int, default=120)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rcond", type=float, default=1e-8, help="singular-value cutoff of both (lstsq's rcond)"
    )
    p.add_argument("--peer-python", default=None, help="python of a venv with the seed's library")
    p.add_argument("--peer-log", default="/tmp/engd_peer_logs")
    p.add_argument("--side", choices=("jno", "peer"), help="run one side and print JSON")
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(run_jno(args) if args.side == "jno" else run_peer(args)))
        return
    shared = [a for a in (argv if argv is not None else sys.argv[1:])]
    traces = {}
    for side, python in (("jno", sys.executable), ("peer", args.peer_python)):
        if python is None:
            raise SystemExit("--peer-python is required (a venv with jax-numerical-operators)")
        cmd = [python, __file__, "--side", side, *shared]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd="/tmp")
        traces[side] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"Poisson 2-D, MLP 2-{args.width}-1 tanh, float64, {args.interior} interior + "
        f"{args.boundary} boundary points, same start (seed {args.seed}), ENGD {args.steps} steps, "
        f"rcond {args.rcond:g}"
    )
    print("| step | jno error | jno s | peer error | peer s |")
    print("|---|---|---|---|---|")
    for (step, tj, ej), (_, tp, ep) in zip(traces["jno"], traces["peer"]):
        print(f"| {step} | {ej:.3e} | {tj:.1f} | {ep:.3e} | {tp:.1f} |")
    final = traces["peer"][-1][2]
    ours, theirs = time_to(traces["jno"], final), time_to(traces["peer"], final)
    print(
        f"peer's final error {final:.3e}: reached by jno in "
        f"{'never' if ours is None else f'{ours:.1f} s'}, by the peer in {theirs:.1f} s"
    )


if __name__ == "__main__":
    main()
