"""TensorBoard event files, exact resume in a fresh process, kill -9, divergence."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from checkpoint_faults import flip_array_bytes
from flax import nnx

from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import DLRS
from jno.train import Trainer, TrainingDiverged, nn
from jno.train.checkpoint import Checkpointer, CheckpointMismatch
from jno.train.checkpoint_lock import CheckpointDirectoryInUse

RUN = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np, optax
    from flax import nnx
    import jno
    from jno.domain import Interval
    from jno.nnx.balancers import RLW, ReLoBRaLo
    from jno.nnx.networks.mlp import MLP
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
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
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


def checkpoint_steps(directory):
    """Finished checkpoints are folders named by their step (saves in flight live in
    temporary folders): read the listing, never touch the files."""
    if not directory.exists():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


class Child:
    """A training subprocess of ``script``, its stderr in a file."""

    def __init__(self, script, log, *args):
        self.log = log
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *map(str, args)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def wait_until(self, ready, timeout=240):
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"the training ended early:\n{self.stderr()}"
            assert time.monotonic() < deadline, "the training made no progress"
            time.sleep(0.02)

    def training(self, directory):
        """True once this process holds ``directory``'s lock: its ``fit`` has begun."""
        lock = directory / ".jno-lock"
        return lock.exists() and lock.read_text().split("\n")[0] == str(self.proc.pid)

    def stepping(self):
        """True once this process has reported a finished chunk of steps: its ``fit``
        defers SIGINT and SIGTERM to the end of a chunk from then on."""
        return re.search(r"^step \d+/", self.stderr(), re.MULTILINE) is not None

    def send(self, signum):
        os.kill(self.proc.pid, signum)
        self.proc.wait(timeout=120)
        return self.proc.returncode

    def stderr(self):
        return self.log.read_text()


def test_a_run_survives_sigint_sigterm_sigkill_a_second_process_and_damage(tmp_path, script):
    """One training carried through the faults a long run meets, each process fresh:
    Ctrl-C, a second process on its directory, a preemption (SIGTERM), kill -9, and a
    damaged newest checkpoints. It ends bit for bit where an uninterrupted run ends."""
    ckpt, far = tmp_path / "ckpt", 10**9
    # SIGINT with no periodic checkpoint due: the checkpoint written on the signal.
    child = Child(script, tmp_path / "int.err", "relobralo", ckpt, far, "-", far)
    child.wait_until(child.stepping)
    assert child.send(signal.SIGINT) == -signal.SIGINT  # an uncaught KeyboardInterrupt
    first = checkpoint_steps(ckpt)
    assert len(first) == 1 and first[0] > 0 and first[0] % 5 == 0
    assert f"checkpoint of step {first[0]}" in child.stderr() and str(ckpt) in child.stderr()
    # Resumed; a second process (this one) trying to train into the directory is refused
    # while it runs, naming it; then a preemption (SIGTERM) saves again.
    child = Child(script, tmp_path / "term.err", "relobralo", ckpt, far, "-", far)
    # Built while the child starts, so that the child trains few steps before SIGTERM.
    intruder = fit_trainer(tmp_path, checkpoint_dir=str(ckpt))
    intruder.compile()
    child.wait_until(lambda: child.training(ckpt) and child.stepping())
    with pytest.raises(CheckpointDirectoryInUse, match=f"in use by process {child.proc.pid} "):
        intruder.fit(5)
    assert intruder.step == 0
    assert child.send(signal.SIGTERM) == 143
    second = checkpoint_steps(ckpt)[-1]
    assert second > first[0] and second % 5 == 0
    # kill -9 with a checkpoint every 5 steps: the last finished one survives.
    child = Child(script, tmp_path / "kill.err", "relobralo", ckpt, far, "-", 5)
    child.wait_until(lambda: checkpoint_steps(ckpt)[-1] >= second + 20)
    child.send(signal.SIGKILL)
    *_, oldest, previous, newest = checkpoint_steps(ckpt)
    # The two newest checkpoints damaged (array bytes flipped, metadata removed): the
    # next run falls back to the one before them.
    flip_array_bytes(ckpt / str(newest))
    shutil.rmtree(ckpt / str(previous) / "meta")
    target = newest + 10
    resumed = Child(script, tmp_path / "resume.err", "relobralo", ckpt, target, tmp_path / "r.npz")
    # The uninterrupted run, in this process meanwhile.
    namespace = {"__name__": "run"}
    exec(compile(RUN, "run.py", "exec"), namespace)
    net, straight = namespace["build"]("relobralo", None)
    straight.fit(target)
    namespace["dump"](tmp_path / "f.npz", net, straight)
    assert resumed.proc.wait(timeout=240) == 0, resumed.stderr()
    assert f"checkpoints [{previous}, {newest}] in {ckpt} cannot be read" in resumed.stderr()
    assert f"restored step {oldest}" in resumed.stderr()
    assert "Event loop is closed" not in resumed.stderr()  # tensorstore's late reports
    full, resumed = np.load(tmp_path / "f.npz"), np.load(tmp_path / "r.npz")
    assert int(resumed["step"]) == target
    for key in [k for k in full.files if k.startswith("arr_")] + ["w", "lr", "hsteps"]:
        np.testing.assert_array_equal(resumed[key], full[key], err_msg=key)
    # Logged interval means are reductions XLA may order differently per executable.
    np.testing.assert_allclose(resumed["total"], full["total"], rtol=1e-6)


# Runs a script without the capabilities that let root write into any directory, so
# that a directory without write permission is read-only to it as to any user.
WITHOUT_WRITE_OVERRIDE = textwrap.dedent(
    """
    import ctypes, runpy, sys
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # capability API version 3, this process
    caps = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable; twice (64 bits)
    assert libc.capget(header, caps) == 0, ctypes.get_errno()
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        caps[0] &= ~(1 << cap)
        caps[1] &= ~(1 << cap)
    assert libc.capset(header, caps) == 0, ctypes.get_errno()
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def test_a_read_only_checkpoint_dir_stops_before_training(tmp_path, script):
    """A subprocess that cannot write ``checkpoint_dir`` fails at once with an error
    naming it, and the checkpoint already there restores."""
    ckpt = tmp_path / "ckpt"
    namespace = {"__name__": "run"}
    exec(compile(RUN, "run.py", "exec"), namespace)
    namespace["build"]("rlw", str(ckpt))[1].fit(5)
    ckpt.chmod(0o555)
    try:
        command = [sys.executable, "-c", WITHOUT_WRITE_OVERRIDE, str(script)]
        done = subprocess.run(
            [*command, "rlw", str(ckpt), "10", "-"], capture_output=True, text=True, timeout=300
        )
    finally:
        ckpt.chmod(0o755)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"jno.train.checkpoint.CheckpointSaveFailed: saving a checkpoint into {ckpt} failed"
    )
    assert "Permission denied" in last
    assert checkpoint_steps(ckpt) == [5]
    assert namespace["build"]("rlw", str(ckpt))[1].restore() == 5


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
