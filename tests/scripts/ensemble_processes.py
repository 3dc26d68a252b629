"""An ensemble of small fits, run by tests/test_processes.py in one or several processes.

Usage: ``ensemble_processes.py STEPS MEMBERS OUT_DIR [CHECKPOINT_DIR|- [RESUME_DIR
RESUME_STEPS]]``. Each process writes ``OUT_DIR/process-<i>.json``: the process count, the
members' step, their flat parameters (one list per member) and their logged loss
histories. With ``RESUME_DIR``, a second ensemble then resumes the checkpoints in it
(another run's) for ``RESUME_STEPS`` more steps, and its record goes to
``OUT_DIR/resumed-<i>.json``.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jno
from jno.nnx import MLP


class Fit(jno.Trainer):
    def losses(self, net, batch):
        x = batch["x"]
        return {"data": jnp.mean((net(x)[:, 0] - jnp.sin(3 * x[:, 0])) ** 2)}


NETS = {}


def make(seed: int) -> Fit:
    net = NETS[seed] = jno.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(seed)))
    net.optimizer(optax.adam(1e-2))
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    return Fit(net, points={"x": x}, log_every=25, progress=False, checkpoint_every=50)


def main() -> None:
    steps, members, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ckpt = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    fit(steps, members, ckpt, os.path.join(out, f"process-{jax.process_index()}.json"))
    if len(sys.argv) > 5:
        resumed = os.path.join(out, f"resumed-{jax.process_index()}.json")
        fit(int(sys.argv[6]), members, sys.argv[5], resumed)


def fit(steps: int, members: int, ckpt: str | None, path: str) -> None:
    ens = jno.ensemble(make, seeds=range(members), checkpoint_dir=ckpt)
    history = ens.fit(steps)
    params = []
    for seed in ens.seeds:
        leaves = jax.tree.leaves(nnx.state(NETS[seed].module, nnx.Param))
        params.append(np.concatenate([np.asarray(leaf).ravel() for leaf in leaves]).tolist())
    record = {
        "count": jax.process_count(),
        "step": ens.step,
        "params": params,
        "loss": history["loss/total"].tolist(),
    }
    with open(path, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
