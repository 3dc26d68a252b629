"""TensorBoard event files, exact resume in a fresh process, kill -9, divergence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.models import MLP
from jno.nnx.schedules import DLRS
from jno.train import Trainer, TrainingDiverged, nn
from jno.train.checkpoint import Checkpointer, CheckpointMismatch

RUN = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np, optax
    from flax import nnx
    import jno
    from jno.domain import Interval
    from jno.nnx.balancers import RLW, ReLoBRaLo
    from jno.nnx.models import MLP
    from jno.nnx.schedules import DLRS

    class Poisson(jno.train.Trainer):
        def losses(self, net, batch):
            x = batch["interior"]
            r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
            return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}

    def build(kind, ckpt, every=None, logdir=None):
        net = jno.train.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=4))
        balancer = ReLoBRaLo(2, expected_rho=0.5, seed=1) if kind == "relobralo" else RLW(2, seed=1)
        domain = Interval(0.0, 1.0)
        points = {"interior": domain.interior(32, resample=True), "boundary": domain.boundary(2)}
        return net, Poisson(net, points=points, balancer=balancer, log_every=5,
                            checkpoint_dir=ckpt, checkpoint_every=every, logdir=logdir)

    def dump(path, net, trainer):
        leaves = [np.asarray(x) for x in jax.tree.leaves(nnx.state(net.module, nnx.Param))]
        w = np.asarray(trainer.balancer.last_weights[...])
        lr = np.asarray(trainer.nets[0].optimizer_spec.schedule.lr[...])
        np.savez(path, *leaves, w=w, lr=lr, step=trainer.step,
                 total=trainer.history["loss/total"], hsteps=trainer.history.steps)

    if __name__ == "__main__":
        kind, ckpt, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
        every = int(sys.argv[5]) if len(sys.argv) > 5 else None
        net, trainer = build(kind, None if ckpt == "-" else ckpt, every)
        trainer.restore()
        trainer.fit(steps - trainer.step)
        if out != "-":
            dump(out, net, trainer)
    """
)


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("scripts") / "run.py"
    path.write_text(RUN)
    return path


def python(script, *args, check=True):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        check=check,
        timeout=300,
        capture_output=True,
        text=True,
    )


def test_resume_in_fresh_process_equals_uninterrupted_run(tmp_path, script):
    # RLW (random weights) + DLRS here; ReLoBRaLo + DLRS in the kill test below.
    kind = "rlw"
    python(script, kind, "-", 20, tmp_path / "full.npz")
    ckpt = tmp_path / "ckpt"
    python(script, kind, ckpt, 10, "-")
    assert Checkpointer(ckpt).latest_step() == 10
    python(script, kind, ckpt, 20, tmp_path / "resumed.npz")
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert int(resumed["step"]) == 20
    # Parameters, balancer weights and rate continue bit for bit.
    for key in full.files:
        if key != "total":
            np.testing.assert_array_equal(resumed[key], full[key], err_msg=key)
    # Logged interval means are reductions XLA may order differently per executable.
    np.testing.assert_allclose(resumed["total"], full["total"], rtol=1e-6)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_kill_during_training_then_resume(tmp_path, script, signum):
    # SIGKILL: the last periodic checkpoint (every 5 steps) survives. SIGTERM (a
    # preemption): no periodic checkpoint; the one written on the signal survives.
    ckpt = tmp_path / "ckpt"
    every = "5" if signum == signal.SIGKILL else "1000000"
    proc = subprocess.Popen(
        [sys.executable, str(script), "relobralo", str(ckpt), "100000", "-", every],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, started = time.time() + 240, None
        while time.time() < deadline and proc.poll() is None:
            # Finished checkpoints are folders named by their step (saves in flight
            # live in temporary folders); read the listing, never touch the files.
            steps = (
                [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.exists() else []
            )
            if steps and max(steps) >= 40:
                break
            if signum == signal.SIGTERM and ckpt.exists():  # the training has started
                started = started or time.time()
                if time.time() - started > 1.0:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the training process ended before it was killed"
        os.kill(proc.pid, signum)
    finally:
        proc.wait()
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
    latest = Checkpointer(ckpt).latest_step()
    assert latest is not None and latest > 0 and latest % 5 == 0
    target = latest + 10
    python(script, "relobralo", ckpt, target, tmp_path / "resumed.npz")
    python(script, "relobralo", "-", target, tmp_path / "full.npz")
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    for key in [k for k in full.files if k.startswith("arr_")] + ["w", "lr"]:
        np.testing.assert_array_equal(resumed[key], full[key], err_msg=key)


class Fit(Trainer):
    def losses(self, net, batch):
        x = batch["x"]
        return {
            "fit": jnp.mean((net(x)[:, 0] - jnp.sin(3 * x[:, 0])) ** 2),
            "small": 0.1 * jnp.mean(net(x) ** 2),
        }


def fit_trainer(tmp_path, width=8, **kwargs):
    net = nn(MLP(1, [width], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=3))
    points = {"x": jnp.linspace(-1, 1, 16)[:, None]}
    return Fit(net, points=points, balancer=ReLoBRaLo(2, expected_rho=0.5), **kwargs)


def test_tensorboard_events_match_history(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = fit_trainer(tmp_path, logdir=str(tmp_path / "tb"), log_every=7)
    history = trainer.fit(30)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {
        "loss/total",
        "loss/fit",
        "loss/small",
        "weight/fit",
        "weight/small",
        "lr",
        "grad_norm",
        "skipped_steps",
    }
    assert expected <= scalars
    for tag in expected:
        logged = events.Scalars(tag)
        np.testing.assert_array_equal([e.step for e in logged], [7, 14, 21, 28, 30])
        np.testing.assert_allclose([e.value for e in logged], history[tag], rtol=1e-6)
    assert "hparams" in "".join(events.Tags()["tensors"])


def test_restoring_a_different_network_shape_is_a_clear_error(tmp_path):
    fit_trainer(tmp_path, checkpoint_dir=str(tmp_path / "ck")).fit(5)
    other = fit_trainer(tmp_path, width=12, checkpoint_dir=str(tmp_path / "ck"))
    with pytest.raises(
        CheckpointMismatch,
        match=r"params/.* has shape \((1, )?8,?\) in the checkpoint and \((1, )?12,?\) here",
    ):
        other.fit(5)


def test_divergence_keeps_last_good_checkpoint(tmp_path):
    class Blows(Trainer):
        def losses(self, net, batch):
            x = batch["x"]
            # A rate of 3 on a quadratic with curvature 2 diverges geometrically.
            loss = jnp.mean((net(x)[:, 0] - x[:, 0]) ** 2)
            return {"fit": jnp.where(loss > 1e30, jnp.inf, loss)}

    def make():
        net = nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.sgd(3.0))
        return net, Blows(
            net,
            points={"x": jnp.ones((4, 1))},
            checkpoint_dir=str(tmp_path / "ck"),
            checkpoint_every=5,
            log_every=5,
        )

    net, trainer = make()
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(200)
    assert info.value.terms == ("fit",)
    bad = info.value.step
    assert trainer.step == bad and np.isfinite(float(net.module.kernel[...][0, 0]))
    latest = Checkpointer(tmp_path / "ck").latest_step()
    assert latest == (bad // 5) * 5
    net2, resumed = make()
    with pytest.raises(TrainingDiverged) as again:
        resumed.fit(200)
    assert again.value.step == bad
