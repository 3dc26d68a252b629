"""Damaged or partial checkpoints: ``restore`` falls back to the newest readable one
with a warning, or raises naming them (``strict=True``, an explicit ``step``)."""

from __future__ import annotations

import shutil

import jax
import numpy as np
import pytest
from checkpoint_faults import flip_array_bytes
from flax import nnx

from jno.problems import Poisson2D
from jno.train.checkpoint import CheckpointUnreadable

# pytest installs its own unraisable hook for each test phase, replacing the library's
# filter: tensorstore's late "Event loop is closed" reports of the aborted reads reach it
# (a script keeps the filter: tests/test_persistence.py checks its stderr).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. None:pytest.PytestUnraisableExceptionWarning"
)


def build(directory):
    return Poisson2D.default(
        hidden=[4], batch_size=8, progress=False, checkpoint_dir=str(directory),
        checkpoint_every=2, log_every=2,
    )  # fmt: skip


def params(trainer):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(trainer.nets[0].module, nnx.Param))]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Checkpoints at steps 2, 4 and 6, and the parameters at step 4, written once."""
    root = tmp_path_factory.mktemp("written")
    reference = build(root / "reference")
    reference.fit(4)
    build(root / "ckpt").fit(6)
    return root / "ckpt", params(reference)


@pytest.fixture
def trained(written, tmp_path):
    """A copy of the written checkpoints, for one test to damage."""
    directory, at_step_4 = written
    shutil.copytree(directory, tmp_path / "ckpt")
    return tmp_path / "ckpt", at_step_4


# pytest installs its own unraisable hook for each test phase, replacing the library's
# filter: tensorstore's late "Event loop is closed" reports of the aborted reads reach it
# (a script keeps the filter: tests/test_persistence.py checks its stderr).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. None:pytest.PytestUnraisableExceptionWarning"
)
@pytest.mark.parametrize("damage", ["flipped array bytes", "metadata removed"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(trained, damage):
    directory, at_step_4 = trained
    if damage == "flipped array bytes":
        flip_array_bytes(directory / "6")
    else:
        shutil.rmtree(directory / "6" / "meta")
    trainer = build(directory)
    with pytest.warns(UserWarning, match=rf"checkpoints \[6\] in {directory} cannot be read"):
        assert trainer.restore() == 4
    for a, b in zip(params(trainer), at_step_4):
        np.testing.assert_array_equal(a, b)
    assert trainer.history.steps.tolist() == [2, 4]
    assert (directory / "6.damaged").is_dir()  # kept aside, not deleted
    trainer.fit(until=8)  # training goes on from step 4 and writes steps 6 and 8 again
    assert trainer.step == 8 and (directory / "8").is_dir()


def test_strict_and_explicit_steps_raise_naming_the_damage(trained):
    directory, at_step_4 = trained
    flip_array_bytes(directory / "6")
    with pytest.raises(
        CheckpointUnreadable, match=r"checkpoint 6 in .* other checkpoints: \[2, 4\]"
    ):
        build(directory).restore(strict=True)
    with pytest.raises(CheckpointUnreadable, match="checkpoint 6 in"):
        build(directory).restore(step=6)
    with pytest.raises(ValueError, match=r"step=5 is not a checkpoint of .*steps \[2, 4, 6\]"):
        build(directory).restore(step=5)
    older = build(directory)
    assert older.restore(step=2) == 2
    assert older.history.steps.tolist() == [2]


def test_a_directory_in_use_by_a_live_process_is_refused(tmp_path):
    import os
    import socket

    from jno.train.checkpoint_lock import CheckpointDirectoryInUse

    directory = tmp_path / "ckpt"
    directory.mkdir()
    lock = directory / ".jno-lock"
    # Another process of this host that is running: this test's parent.
    lock.write_text(f"{os.getppid()}\n{socket.gethostname()}\n")
    trainer = build(directory)
    message = rf"checkpoint_dir {directory} is in use by process {os.getppid()} on host"
    with pytest.raises(CheckpointDirectoryInUse, match=message):
        trainer.fit(2)
    assert trainer.step == 0 and lock.exists()
    # Another host's lock cannot be checked: refused too.
    lock.write_text("1\nsome-other-host\n")
    with pytest.raises(CheckpointDirectoryInUse, match="on host some-other-host"):
        trainer.fit(2)
    # A process that no longer runs left it: taken over, and removed after the fit.
    lock.write_text(f"{2**22 + 4321}\n{socket.gethostname()}\n")
    trainer.fit(2)
    assert trainer.step == 2 and not lock.exists() and (directory / "2").is_dir()


def test_a_failed_save_stops_training_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch):
    import errno

    import orbax.checkpoint as ocp

    from jno.train.checkpoint import CheckpointSaveFailed

    directory = tmp_path / "ckpt"
    real_save = ocp.CheckpointManager.save

    def disk_full_after_step_2(manager, step, *args, **kwargs):
        if step > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(manager, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", disk_full_after_step_2)
    trainer = build(directory)
    message = rf"saving checkpoint 4 into {directory} failed \(.*No space left on device\)"
    with pytest.raises(CheckpointSaveFailed, match=message):
        trainer.fit(6)
    monkeypatch.undo()
    assert trainer.step in (4, 6)  # stopped at the save, or the chunk already dispatched
    again = build(directory)
    assert again.restore() == 2  # the earlier checkpoint is intact
