"""Dense quasi-Newton on Burgers 1-D: jno against the seed's library and plain JAX.

One plain-JAX problem (``plain_pinn.py``: MLP 2-20-20-20-1 tanh, float64, 8000 fixed
residual points, 200 boundary and 200 initial points) and one start (5000 Adam steps,
saved once). From there each worker runs ``--iterations`` iterations of one optimizer
in a jitted ``fori_loop`` with ``optax.value_and_grad_from_state``, and reports the
seconds per iteration (after compilation) and the relative L2 error against the
Cole-Hopf solution on a 256 x 100 grid (computed by ``jno.problems.cole_hopf``):

* ``jno``: ``jno.optim.ssbroyden()`` (this package);
* ``peer``: ``jno.optimizers.ssbroyden()`` of jax-numerical-operators (the seed's
  library, its own venv given by ``--peer-python``; default zoom line search);
* ``plain``: a dense BFGS written here in plain JAX (product-free rank-two update,
  ``optax.scale_by_zoom_linesearch``), imports no jno;
* ``trainer``: ``jno.optim.ssbroyden()`` as a quasi-Newton phase of jno's Trainer
  (``jno.problems.Burgers1D`` on the same points, an MLP with the same weights): the
  engine's cost over the hand-written loop of the same optimizer.

Workers run one after the other in rounds (jno, trainer, plain, peer, jno, ...)
so that the machine's drift hits every optimizer alike; the table gives the median
seconds per iteration over the rounds and the ratios to ``jno``.

Example (from the repository root)::

    .venv/bin/python benchmarks/quasi_newton.py --peer-python /work/peer/bin/python \\
        --iterations 4000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain_pinn as pp  # noqa: E402

HIDDEN = [20, 20, 20]
KINDS = ("jno", "trainer", "plain", "peer")
N_RES, N_BND = 8000, 200
ADAM_STEPS = 5000


def _problem():
    pts = pp.points("burgers", jnp.float64, N_RES, N_BND)
    loss = pp.loss_fn("burgers", pp.taylor_derivs)
    return pts, lambda p: loss(p, pts)


def _flat(params):
    return [a for layer in params for a in layer]


def _unflat(arrays):
    return [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]


def plain_bfgs(max_linesearch_steps: int = 25) -> optax.GradientTransformationExtraArgs:
    """Dense BFGS in plain JAX: ``H g`` with the rank-two inverse update, then a zoom
    line search (the baseline; shares no code with jno)."""
    from jax.flatten_util import ravel_pytree

    def init(params):
        x, _ = ravel_pytree(params)
        n = x.size
        return (jnp.zeros((), jnp.int32), x * 0, x * 0, jnp.eye(n, dtype=x.dtype))

    def update(updates, state, params=None):
        count, x_old, g_old, h = state
        g, unravel = ravel_pytree(updates)
        x, _ = ravel_pytree(params)
        s, y = x - x_old, g - g_old
        sy = s @ y
        ok = (count > 0) & (sy > 1e-10 * jnp.linalg.norm(s) * jnp.linalg.norm(y))
        h = jnp.where((count == 1) & ok, (sy / (y @ y)) * jnp.eye(h.shape[0], dtype=h.dtype), h)
        rho = 1.0 / jnp.where(ok, sy, 1.0)
        hy = h @ y
        new = h - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
        new = new + (rho * rho * (y @ hy) + rho) * jnp.outer(s, s)
        h = jnp.where(ok, new, h)
        return unravel(-(h @ g)), (count + 1, x, g, h)

    return optax.chain(
        optax.GradientTransformation(init, update),
        optax.scale_by_zoom_linesearch(max_linesearch_steps, initial_guess_strategy="one"),
    )


def worker(kind: str, start: str, iterations: int, out: str) -> None:
    """Runs one optimizer from the saved start; writes its record to ``out``."""
    data = np.load(start)
    params = _unflat([jnp.asarray(data[f"p{i}"]) for i in range(len(data.files) - 2)])
    grid, reference = jnp.asarray(data["grid"]), np.asarray(data["reference"])
    if kind == "trainer":
        trainer_worker(params, grid, reference, iterations, out)
        return
    _, f = _problem()
    if kind == "jno":
        from jno.optim import ssbroyden

        tx = ssbroyden()
    elif kind == "peer":
        from jno.optimizers import ssbroyden

        tx = ssbroyden()
    else:
        tx = plain_bfgs()
    vg = optax.value_and_grad_from_state(f)

    def run(carry, n):
        def body(_, c):
            p, s = c
            v, g = vg(p, state=s)
            u, s = tx.update(g, s, p, value=v, grad=g, value_fn=f)
            return optax.apply_updates(p, u), s

        return jax.lax.fori_loop(0, n, body, carry)

    run = jax.jit(run)  # the count is traced: one compilation for both calls
    warm = 20
    carry = run((params, tx.init(params)), jnp.asarray(warm))
    jax.block_until_ready(carry)
    t0 = time.perf_counter()
    carry = run(carry, jnp.asarray(iterations - warm))
    jax.block_until_ready(carry)
    seconds = time.perf_counter() - t0
    pred = np.asarray(pp.mlp(carry[0], grid)[:, 0])
    error = float(np.linalg.norm(pred - reference) / np.linalg.norm(reference))
    record = {
        "kind": kind,
        "iterations": iterations,
        "s_per_iteration": seconds / (iterations - warm),
        "relative_l2": error,
        "loss": float(f(carry[0])),
    }
    Path(out).write_text(json.dumps(record))


def trainer_worker(params, grid, reference, iterations: int, out: str) -> None:
    """The same iterations as a quasi-Newton phase of jno's Trainer (``Burgers1D`` on
    the same fixed points, an MLP holding the same weights)."""
    from flax import nnx

    import jno
    from jno.problems import Burgers1D

    pts, _ = _problem()
    module = jno.nnx.MLP(2, HIDDEN, 1, rngs=nnx.Rngs(0))
    for layer, (w, b) in zip(module.layers, params):
        layer.kernel.value, layer.bias.value = w, b
    net = jno.nn(module)
    net.optimizer(jno.optim.ssbroyden())
    trainer = Burgers1D(net, points=pts, progress=False, log_every=iterations)
    warm = 20
    trainer.fit(warm)
    jax.block_until_ready(nnx.state(module))
    t0 = time.perf_counter()
    trainer.fit(iterations - warm)
    jax.block_until_ready(nnx.state(module))
    seconds = time.perf_counter() - t0
    pred = np.asarray(module(grid)[:, 0])
    record = {
        "kind": "trainer",
        "iterations": iterations,
        "s_per_iteration": seconds / (iterations - warm),
        "relative_l2": float(np.linalg.norm(pred - reference) / np.linalg.norm(reference)),
        "loss": float(sum(trainer.losses(module, pts).values())),
    }
    Path(out).write_text(json.dumps(record))


def make_start(path: Path) -> None:
    """5000 Adam steps from the plain baseline's initialisation, plus the reference."""
    from jno.problems import cole_hopf

    _, f = _problem()
    params = pp.init_params(jax.random.PRNGKey(0), jnp.float64, HIDDEN)
    tx = optax.adam(1e-3)

    @jax.jit
    def adam(p, s):
        def body(_, c):
            p, s = c
            u, s = tx.update(jax.grad(f)(p), s, p)
            return optax.apply_updates(p, u), s

        return jax.lax.fori_loop(0, ADAM_STEPS, body, (p, s))

    params, _ = adam(params, tx.init(params))
    x, t = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(0, 1, 100), indexing="ij")
    grid = np.stack([x.ravel(), t.ravel()], 1)
    reference = cole_hopf(grid[:, 0], grid[:, 1])
    arrays = {f"p{i}": np.asarray(a) for i, a in enumerate(_flat(params))}
    np.savez(path, grid=grid, reference=reference, **arrays)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=None, help="python of a venv with the seed's library")
    p.add_argument("--iterations", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--start", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.start, args.iterations, args.out)
        return
    here = Path(__file__).resolve()
    tmp = Path(tempfile.mkdtemp())
    start = tmp / "start.npz"
    make_start(start)
    kinds = ["jno", "trainer", "plain"] + (["peer"] if args.peer_python else [])
    records: dict[str, list] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            python = args.peer_python if kind == "peer" else sys.executable
            out = tmp / f"{kind}{r}.json"
            cmd = [python, str(here), "--worker", kind, "--start", str(start)]
            cmd += ["--iterations", str(args.iterations), "--out", str(out)]
            subprocess.run(cmd, check=True, cwd=tmp)
            rec = json.loads(out.read_text())
            records[kind].append(rec)
            print(
                f"round {r} {kind}: {rec['s_per_iteration'] * 1e3:.2f} ms/it, "
                f"rel. L2 {rec['relative_l2']:.2e}, loss {rec['loss']:.2e}",
                file=sys.stderr,
            )
    base = statistics.median(r["s_per_iteration"] for r in records["jno"])
    print(f"Burgers 1-D, {args.iterations} iterations after {ADAM_STEPS} Adam steps, float64")
    print("| optimizer | ms / iteration (median) | vs jno | rel. L2 | final loss |")
    print("|---|---|---|---|---|")
    names = {
        "jno": "jno.optim.ssbroyden",
        "peer": "seed library jno.optimizers.ssbroyden",
        "plain": "plain-JAX BFGS + optax zoom",
        "trainer": "jno.optim.ssbroyden in jno's Trainer",
    }
    for kind in kinds:
        rs = records[kind]
        t = statistics.median(r["s_per_iteration"] for r in rs)
        print(
            f"| {names[kind]} | {t * 1e3:.2f} | {t / base:.2f} | {rs[-1]['relative_l2']:.2e} "
            f"| {rs[-1]['loss']:.2e} |"
        )


if __name__ == "__main__":
    main()
