"""float64 end to end: with ``jax_enable_x64`` every float array jno makes is float64.

x64 must be switched on before JAX is used, so the float64 half runs in a fresh Python
process (``FLOAT64_RUN``), which imports this module for the trainer it builds; the
float32 half runs in the pytest process, where x64 is off. The subprocess inherits the
test run's XLA compilation cache through the environment (see ``conftest.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.domain import Box, PointSet
from jno.nnx._dtype import default_float
from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import DLRS
from jno.train.checkpoint import Checkpointer, CheckpointMismatch

STEPS = 4  # two logging intervals, one checkpoint at step 2
LBFGS_STEPS = 2500


class Poisson1D(jno.train.Trainer):
    """u'' = -pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; exact u = sin(pi x)."""

    def losses(self, net, batch):
        x = batch["x"]
        r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        ends = jnp.array([[0.0], [1.0]], x.dtype)
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(ends) ** 2)}


def poisson1d_solve() -> tuple[float, float]:
    """Relative L2 error and final loss of a small MLP after L-BFGS on 1-D Poisson, in
    the default dtype.

    L-BFGS drives the loss down until the float precision stops it: float32 stalls
    near a loss of 1e-6 to 1e-5 where float64 keeps descending.
    """
    net = jno.nn(MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.lbfgs())
    x = np.linspace(0.0, 1.0, 64)[:, None]
    trainer = Poisson1D(net, points={"x": x}, log_every=100, progress=False)
    loss = float(trainer.fit(LBFGS_STEPS)["loss/total"][-1])  # the last 100 steps
    grid = jnp.linspace(0.0, 1.0, 201, dtype=default_float())[:, None]
    exact = jnp.sin(jnp.pi * grid[:, 0])
    return float(jnp.linalg.norm(net(grid)[:, 0] - exact) / jnp.linalg.norm(exact)), loss


class Poisson2D(jno.train.Trainer):
    """-lap u = 2 pi^2 sin(pi x) sin(pi y) on the unit square, u = 0 on its boundary."""

    def losses(self, net, batch):
        x = batch["interior"]
        f = 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])
        r = jno.ops.laplacian(net, x) + f
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


def build(checkpoint_dir=None):
    """A tiny Poisson trainer: MLP, ReLoBRaLo, DLRS through ``.scale``, resampled points."""
    net = jno.nn(MLP(2, [4], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=3))
    box = Box([0.0, 0.0], [1.0, 1.0])
    points = {"interior": box.interior(16, resample=True), "boundary": box.boundary(8)}
    return Poisson2D(
        net,
        points=points,
        balancer=ReLoBRaLo(2, seed=0),
        log_every=2,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=None if checkpoint_dir is None else 2,
    )


def state_dtypes(trainer) -> dict[str, str]:
    """``{path: dtype}`` of every floating array of a fitted trainer: the step's carry
    (parameters, optimizer, schedule and balancer state, ...), the fixed and the sampled
    points, the empty metrics accumulators and the history."""
    leaves = {
        f"carry{jax.tree_util.keystr(path)}": leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(trainer.initial_state())[0]
    }
    leaves.update({f"fixed/{k}": v for k, v in trainer.fixed_points().items()})
    key = jax.random.key(1)
    leaves.update({f"sampled/{k}": ps.sample(key) for k, ps in trainer.points.items()})
    metrics = trainer.compile().metrics.empty()
    for path, leaf in jax.tree_util.tree_flatten_with_path(metrics)[0]:
        leaves[f"metrics{jax.tree_util.keystr(path)}"] = leaf
    leaves.update({f"history/{k}": v for k, v in trainer.history.items()})
    return {
        k: str(np.asarray(v).dtype)
        for k, v in leaves.items()
        if jnp.issubdtype(np.asarray(v).dtype, jnp.floating)
    }


def network_state(path: str) -> bool:
    """Parameters and their Adam moments, made by the network (jno/nnx/models.py)."""
    return path.startswith(("carry.params", "carry.opt"))


FLOAT64_RUN = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)

    sys.path.insert(0, sys.argv[1])
    import numpy as np
    from test_float64 import STEPS, build, state_dtypes
    from jno.domain import PointSet
    from jno.nnx._dtype import default_float
    from jno.train.checkpoint import CheckpointMismatch

    out_path, ckpt64, ckpt32 = sys.argv[2:5]
    trainer = build(ckpt64)
    trainer.fit(STEPS)
    report = {
        "default": str(default_float()),
        "dtypes": state_dtypes(trainer),
        "lr": str(trainer.nets[0].optimizer_spec.schedule(0, np.ones(2)).dtype),
        "from_array": [
            str(PointSet.from_array(np.ones((2, 2), dt)).sample(None).dtype)
            for dt in (np.float32, np.float64)
        ],
    }
    try:
        build(ckpt32).restore()
        report["restore32"] = None
    except CheckpointMismatch as err:
        report["restore32"] = str(err)
    with open(out_path, "w") as f:
        json.dump(report, f)
    """
)


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    """The trainer fitted in this (float32) process; it writes a float32 checkpoint."""
    ckpt = tmp_path_factory.mktemp("ckpt32")
    trainer = build(ckpt)
    trainer.fit(STEPS)  # waits for the checkpoint to be on disk
    return trainer, ckpt


@pytest.fixture(scope="module")
def float64_run(tmp_path_factory, float32_run):
    """The same trainer fitted in a float64 process, which also tries to restore the
    float32 checkpoint; what it found, as a dict."""
    tmp = tmp_path_factory.mktemp("float64")
    out, ckpt64 = tmp / "report.json", tmp / "ckpt64"
    args = [str(Path(__file__).parent), out, ckpt64, float32_run[1]]
    proc = subprocess.run(
        [sys.executable, "-c", FLOAT64_RUN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(out.read_text()), "ckpt64": ckpt64}


def test_float64_trainer_state_is_float64(float64_run):
    assert float64_run["default"] == "float64"
    dtypes = float64_run["dtypes"]
    # Everything the library makes: the balancer, schedule and metrics state, the points,
    # the history, the per-term gradient norms.
    for group in ("carry.balancer", "carry.schedules", "fixed/", "sampled/", "metrics"):
        assert any(k.startswith(group) for k in dtypes), group
    assert "history/loss/total" in dtypes and "history/lr" in dtypes
    library = {k: v for k, v in dtypes.items() if not network_state(k)}
    assert library and all(v == "float64" for v in library.values()), library
    assert float64_run["lr"] == "float64"
    assert float64_run["from_array"] == ["float64", "float64"]


def test_float64_network_parameters_and_optimizer_state_are_float64(float64_run):
    # The MLP builds its layers, Fourier matrix and input bounds in default_float();
    # Adam's moments follow the parameters.
    dtypes = float64_run["dtypes"]
    params = {k: v for k, v in dtypes.items() if network_state(k)}
    assert any(k.startswith("carry.params") for k in params)
    assert any(k.startswith("carry.opt") for k in params)
    assert all(v == "float64" for v in params.values()), params


def test_float32_checkpoint_does_not_restore_into_float64_trainer(float64_run, float32_run):
    message = float64_run["restore32"]
    assert message is not None, "restoring a float32 checkpoint under x64 did not raise"
    step = Checkpointer(float32_run[1]).latest_step()
    assert f"{float32_run[1]}/{step}" in message
    assert "dtype float32 where this trainer expects float64" in message
    assert "jax_enable_x64" in message


def test_float64_checkpoint_does_not_restore_into_float32_trainer(float64_run):
    with pytest.raises(
        CheckpointMismatch, match="dtype float64 where this trainer expects float32"
    ):
        build(float64_run["ckpt64"]).restore()


def test_without_x64_everything_is_float32(float32_run):
    assert default_float() == np.float32
    trainer, _ = float32_run
    dtypes = state_dtypes(trainer)
    # The history is host-side numpy, float64 with or without x64.
    arrays = {k: v for k, v in dtypes.items() if not k.startswith("history/")}
    assert any(k.startswith("carry.params") for k in arrays)
    assert any(k.startswith("carry.balancer") for k in arrays)
    assert all(v == "float32" for v in arrays.values()), arrays
    from_array = PointSet.from_array(np.ones((2, 2), np.float64)).sample(None)
    assert from_array.dtype == np.float32


def test_float64_poisson_solve_beats_float32_on_the_same_budget():
    error32, loss32 = poisson1d_solve()
    with jax.enable_x64(True):  # every array the solve makes is float64
        error64, loss64 = poisson1d_solve()
    # Measured over compilations that round differently (XLA -O2 and -O0, and the
    # suite's classic emitters): float32 stalls at a loss of 2.6e-6 to 1.7e-5 (error
    # 6.7e-6 to 3.9e-5); float64 reaches 3.7e-9 to 2e-8 (error 1.4e-7 to 1.3e-6) on the
    # same network, points and budget.
    assert loss64 < loss32 / 100, (loss64, loss32)
    assert error64 < error32 / 4, (error64, error32)
    assert error64 < 2e-6
