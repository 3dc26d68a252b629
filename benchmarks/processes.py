"""The cost of several processes: a trainer over two processes against one process.

Poisson 2-D (``-lap u = 2 pi^2 sin(pi x) sin(pi y)``, ``u = 0`` on the boundary), Adam
1e-3, the points split over the global ``data`` axis. Each configuration is a fresh
run of this file in ``--child`` mode, which compiles, then times ``--blocks`` blocks of
``steps`` steps and prints seconds per step (process 0):

- ``1 process, 1 device``;
- ``1 process, 2 devices`` (``--xla_force_host_platform_device_count=2``): the same
  sharding as two processes, its all-reduce inside one process;
- ``2 processes x 1 device``: ``jno launch -n 2`` (coordinator on localhost, gloo CPU
  collectives), the gradient all-reduce between processes.

Two implementations run in every configuration: a ``jno.Trainer`` (``log_every=100``:
one host exchange per 100 steps to agree on a stop), and the same training written in
plain JAX in ``plain_pinn.py`` (no jno import: pytree parameters, the Laplacian
propagated forward, a ``NamedSharding`` of its own; ``jno launch`` only starts its
processes and calls ``jax.distributed.initialize``). The runs
of one round alternate configurations; ratios are medians over rounds of per-round
ratios. Two sizes: ``small`` (MLP 3 x 32, 512 interior + 64 boundary points, 200
steps a block) and ``standard`` (MLP 4 x 64, 3072 + 256, 100 steps a block).

Run::

    .venv/bin/python benchmarks/processes.py [--rounds 3] [--sizes small,standard]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {"small": ([32] * 3, 512, 64, 200), "standard": ([64] * 4, 3072, 256, 100)}
CONFIGS = {
    "1 process, 1 device": (None, 1),
    "1 process, 2 devices": (None, 2),
    "2 processes x 1 device": (2, 1),
}
IMPLS = ("jno", "plain")


# ------------------------------------------------------------------- child
def _points(n_int: int, n_bnd: int):
    sys.path.insert(0, HERE)
    import numpy as np

    from common import poisson_points

    return {k: np.asarray(v) for k, v in poisson_points(n_int, n_bnd).items()}


def _time_blocks(block, blocks: int, steps: int) -> list[float]:
    import jax

    jax.block_until_ready(block())  # compile
    seconds = []
    for _ in range(blocks):
        start = time.perf_counter()
        jax.block_until_ready(block())
        seconds.append((time.perf_counter() - start) / steps)
    return seconds


def child_jno(hidden, n_int, n_bnd, steps, blocks) -> list[float]:
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import jno
    from jno import ops
    from jno.nnx.networks.mlp import MLP

    sys.path.insert(0, HERE)
    from common import poisson_source

    class Poisson(jno.Trainer):
        def losses(self, net, batch):
            x = batch["interior"]
            r = ops.laplacian(net, x) + poisson_source(x)
            return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}

    net = jno.nn(MLP(2, hidden, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    trainer = Poisson(net, points=_points(n_int, n_bnd), log_every=100, progress=False)

    def block():
        trainer.fit(steps)
        return nnx.state(net.module)

    return _time_blocks(block, blocks, steps)


def child_plain(hidden, n_int, n_bnd, steps, blocks) -> list[float]:
    import jax
    import optax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    sys.path.insert(0, HERE)
    import plain_pinn

    mesh = jax.make_mesh((jax.device_count(),), ("data",))

    def place(tree, spec):
        sharding = NamedSharding(mesh, spec)
        return jax.tree.map(
            lambda a: jax.make_array_from_callback(a.shape, sharding, lambda i: a[i]), tree
        )

    import numpy as np

    loss = plain_pinn.loss_fn("poisson", plain_pinn.taylor_derivs)
    tx = optax.adam(1e-3)
    params = plain_pinn.init_params(jax.random.PRNGKey(0), np.float32, hidden)
    params = jax.tree.map(np.asarray, params)
    carry = [place((params, jax.tree.map(np.asarray, tx.init(params))), P())]
    points = place(_points(n_int, n_bnd), P("data"))

    def step(c, pts):
        p, s = c
        g = jax.grad(loss)(p, pts)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    run = jax.jit(lambda c, pts: jax.lax.fori_loop(0, steps, lambda _, c: step(c, pts), c))

    def block():
        carry[0] = run(carry[0], points)
        return carry[0]

    return _time_blocks(block, blocks, steps)


def child(impl: str, size: str, blocks: int) -> None:
    import jax

    hidden, n_int, n_bnd, steps = SIZES[size]
    fn = child_jno if impl == "jno" else child_plain
    seconds = fn(hidden, n_int, n_bnd, steps, blocks)
    if jax.process_index() == 0:
        print(json.dumps({"seconds": seconds, "devices": jax.device_count()}), flush=True)


# ------------------------------------------------------------------ parent
def run_config(impl: str, size: str, config: str, blocks: int) -> float:
    launch, devices = CONFIGS[config]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable]
    if launch:
        cmd += ["-m", "jno.app.launch", "-n", str(launch), "--cpu-devices", str(devices)]
    cmd += [os.path.abspath(__file__), "--child", impl, "--size", size, "--blocks", str(blocks)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{impl} {size} {config} failed:\n{done.stderr[-3000:]}")
    (line,) = [s for s in done.stdout.splitlines() if s.startswith("{")]
    record = json.loads(line)
    if record["devices"] != (launch or 1) * devices:
        raise RuntimeError(f"{config}: {record['devices']} devices")
    return statistics.median(record["seconds"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--sizes", default="small,standard")
    p.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--size", choices=list(SIZES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.child, args.size, args.blocks)
    print(f"{args.rounds} rounds, {args.blocks} timed blocks per run, {os.cpu_count()} cores")
    print("| size | implementation | configuration | ms per step | vs 1 process, 2 devices |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        times = {(i, c): [] for i in IMPLS for c in CONFIGS}
        for _ in range(args.rounds):
            for impl in IMPLS:
                for config in CONFIGS:
                    times[impl, config].append(run_config(impl, size, config, args.blocks))
        for impl in IMPLS:
            base = times[impl, "1 process, 2 devices"]
            for config in CONFIGS:
                ratio = statistics.median(a / b for a, b in zip(times[impl, config], base))
                ms = 1e3 * statistics.median(times[impl, config])
                print(f"| {size} | {impl} | {config} | {ms:.3f} | **{ratio:.2f}x** |", flush=True)
            cost = statistics.median(
                1e3 * (a - b) for a, b in zip(times[impl, "2 processes x 1 device"], base)
            )
            print(f"| {size} | {impl} | collectives between processes, per step | {cost:+.3f} | |")
    return None


if __name__ == "__main__":
    main()
