"""SIGINT and SIGTERM during ``fit``: a checkpoint of the last completed step, a closed
TensorBoard run, then KeyboardInterrupt / SystemExit; the next ``fit`` resumes exactly."""

from __future__ import annotations

import os
import signal
import threading
import time

import jax
import numpy as np
import pytest
from flax import nnx

from jno.problems import Poisson2D
from jno.train import ensemble


@pytest.fixture(autouse=True)
def interactive_sigint():
    """SIGINT as in an interactive shell, even where the test runner was started with it
    ignored (in the background of a shell)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def build(directory=None, logdir=None, seed=0):
    return Poisson2D.default(
        seed=seed, hidden=[4], batch_size=8, progress=False, log_every=20,
        checkpoint_dir=None if directory is None else str(directory),
        checkpoint_every=10**6, logdir=None if logdir is None else str(logdir),
    )  # fmt: skip


def params(trainer):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(trainer.nets[0].module, nnx.Param))]


def signal_once_training(trainer, signum):
    """Sends ``signum`` to this process once ``trainer`` has logged a step."""

    def wait_and_send():
        deadline = time.monotonic() + 60
        while trainer.step == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=wait_and_send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "signum, error", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_a_signal_stops_at_a_step_boundary_saves_and_resumes_exactly(tmp_path, signum, error):
    trainer = build(tmp_path / "ckpt", tmp_path / "runs")
    thread = signal_once_training(trainer, signum)
    with pytest.raises(error) as stopped:
        trainer.fit(until=20_000)
    thread.join()
    if error is SystemExit:
        assert stopped.value.code == 143
    step = trainer.step
    assert 0 < step < 20_000 and step % 20 == 0  # a logged step boundary
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [str(step)]
    assert any((tmp_path / "runs").iterdir())  # the TensorBoard run was written
    # The handlers are back: a signal outside fit acts as usual.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = build(tmp_path / "ckpt")
    resumed.fit(until=step + 40)
    straight = build()
    straight.fit(until=step + 40)
    for a, b in zip(params(resumed), params(straight)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed.history["loss/total"], straight.history["loss/total"])


def test_an_ensemble_stops_every_member_and_resumes(tmp_path):
    ens = ensemble(lambda s: build(seed=s), seeds=[0, 1], checkpoint_dir=tmp_path)
    thread = signal_once_training(ens.members[0], signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        ens.fit(until=20_000)
    thread.join()
    step = ens.step
    assert 0 < step < 20_000 and all(m.step == step for m in ens.members)
    again = ensemble(lambda s: build(seed=s), seeds=[0, 1], checkpoint_dir=tmp_path)
    assert again.restore() == step


def test_ctrl_c_in_the_cli_saves_and_exits_with_130(tmp_path, capsys):
    from jno.app.cli import main

    runs, ckpt = tmp_path / "runs", tmp_path / "ckpt"

    def wait_and_send():  # once the TensorBoard run exists, the loop is about to run
        deadline = time.monotonic() + 60
        while not (runs.exists() and any(runs.rglob("events*"))) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=wait_and_send, daemon=True)
    thread.start()
    argv = ["train", "poisson2d", "--hidden", "4", "--batch-size", "8", "--steps", "1000000"]
    argv += ["--log-every", "20", "--quiet", "--logdir", str(runs / "r")]
    argv += ["--checkpoint-dir", str(ckpt), "--out", str(tmp_path / "figs")]
    assert main(argv) == 130
    thread.join()
    err = capsys.readouterr().err
    assert "SIGINT received" in err and "checkpoint of step" in err and str(ckpt) in err
    assert len(list(ckpt.iterdir())) == 1


def test_an_ignored_signal_stays_ignored(tmp_path):
    from jno.train.interrupts import deferred_signals

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    with deferred_signals() as request:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGINT)
    assert not request and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
