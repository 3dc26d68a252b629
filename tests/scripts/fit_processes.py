"""A small trainer fit, run by tests/test_processes.py in one or several processes.

Usage: ``fit_processes.py STEPS OUT_DIR [CHECKPOINT_DIR [SIGTERM_AT_STEP]]``. Each process
writes ``OUT_DIR/process-<i>.json``: the process count, the step reached, the flat
parameters before and after training and the logged losses; the trainer logs to
``OUT_DIR/events`` and plots its points into ``OUT_DIR/points-<i>.png``. With
``SIGTERM_AT_STEP``, process 1 (or 0 when alone) sends itself SIGTERM once the trainer
has passed that step. With ``FIT_CRUX=1`` in the environment a ``jno.core`` crux (a
SoftAdapt balancer over two terms) trains next, ``STEPS`` steps, and its parameters and
logged weights are written too. With ``FIT_LOCKED=<dir>``, a trainer of its own network
first tries to train into ``<dir>``, whose lock another process holds: the error it
raises on this process and its step are written (``refused``, ``refused_step``).
"""

import json
import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jno
from jno.nnx import MLP
from jno.train.checkpoint_lock import CheckpointDirectoryInUse


class Fit(jno.Trainer):
    def losses(self, net, batch):
        x = batch["x"]
        return {"data": jnp.mean((net(x)[:, 0] - jnp.sin(3 * x[:, 0])) ** 2)}


def main() -> None:
    steps, out = int(sys.argv[1]), sys.argv[2]
    ckpt = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    kill_at = int(sys.argv[4]) if len(sys.argv) > 4 else None
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    run = dict(
        log_every=10, progress=False, checkpoint_every=50 if ckpt else None,
        logdir=os.path.join(out, "events"),
    )  # fmt: skip
    record = {"count": jax.process_count()}
    if os.environ.get("FIT_LOCKED"):
        refused = Fit(network(0), points={"x": x}, checkpoint_dir=os.environ["FIT_LOCKED"], **run)
        try:
            refused.fit(steps)
        except CheckpointDirectoryInUse as err:
            record["refused"] = str(err)
        record["refused_step"] = refused.step
    net = network(0)
    record["initial_params"] = flat_params(net)
    trainer = Fit(net, points={"x": x}, checkpoint_dir=ckpt, **run)
    if kill_at is not None and jax.process_index() == min(1, jax.process_count() - 1):

        def later() -> None:
            while trainer.step < kill_at:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=later, daemon=True).start()
    try:
        record["loss"] = trainer.fit(steps)["loss/total"].tolist()
        trainer.plot_points("x", os.path.join(out, f"points-{jax.process_index()}.png"))
        if os.environ.get("FIT_CRUX") == "1":
            record.update(fit_crux(x, steps))
    finally:
        record.update(step=trainer.step, params=flat_params(net))
        with open(os.path.join(out, f"process-{jax.process_index()}.json"), "w") as f:
            json.dump(record, f)


def network(seed: int):
    net = jno.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(seed)))
    net.optimizer(optax.sgd(0.05))
    return net


def fit_crux(x: np.ndarray, steps: int) -> dict:
    """A ``jno.core`` crux with a SoftAdapt balancer over two terms, its own network."""
    net = network(1)
    initial = flat_params(net)
    fit = net.residual(lambda u, x: u(x)[:, 0] - jnp.sin(3 * x[:, 0]), x, name="fit")
    edge = net.residual(lambda u, x: u(x)[:, 0] - jnp.sin(3 * x[:, 0]), x[[0, -1]], name="edge")
    w_fit, w_edge = jno.fn.adaptive.softadapt([fit, edge])
    crux = jno.core([w_fit * fit + w_edge * edge, w_fit.tracker()], log_every=5, progress=False)
    history = crux.solve(steps)
    return {
        "crux_initial_params": initial,
        "crux_params": flat_params(net),
        "crux_weights": history["tracker/w_fit"].tolist(),
    }


def flat_params(net) -> list[float]:
    leaves = jax.tree.leaves(nnx.state(net.module, nnx.Param))
    return np.concatenate([np.asarray(leaf).ravel() for leaf in leaves]).tolist()


if __name__ == "__main__":
    main()
