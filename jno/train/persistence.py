"""Checkpointing, resuming and TensorBoard set-up of a :class:`~jno.train.trainer.Trainer`."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from jno.train.checkpoint import (
    Checkpointer,
    CheckpointMismatch,
    CheckpointUnreadable,
    read_newest,
)
from jno.train.checkpoint_lock import DirectoryLock
from jno.train.history import History
from jno.train.logging import TensorBoardWriter
from jno.train.state import StepState
from jno.train.validation import config_of, describe_points, net_name


class PersistenceMixin:
    """The trainer's checkpoint, resume and hyper-parameter logging methods."""

    def config(self) -> dict[str, Any]:
        """The run's hyper-parameters (JSON-serialisable), as written to TensorBoard."""
        return {
            "trainer": type(self).__name__,
            "seed": self.seed,
            "log_every": self.log_every,
            "on_nonfinite": self.on_nonfinite,
            "devices": int(self.mesh.shape["data"]),
            "networks": {
                net_name(net, self.nets, quote=False): (
                    None if net.optimizer_spec is None else net.optimizer_spec.config()
                )
                for net in self.nets
            },
            "balancer": None if self.balancer is None else config_of(self.balancer),
            **{name: config_of(m) for name, m in self.components.modules.items()},
            "points": {name: describe_points(ps) for name, ps in self.points.items()},
        }

    def _tensorboard(self) -> TensorBoardWriter | None:
        """A writer for one ``fit``; closing it at the end is what puts every event on disk.

        Events at or after the first step this fit writes are purged, so a run resumed
        after a crash joins its curves instead of doubling them.
        """
        if self.logdir is None:
            return None
        writer = TensorBoardWriter(self.logdir, purge_step=self.step + 1 if self.step else None)
        writer.write_config(self.config(), step=self.step)
        return writer

    @property
    def _checkpointer(self) -> Checkpointer | None:
        if self.checkpoint_dir is None:
            return None
        if self._ckpt is None:
            self._ckpt = Checkpointer(self.checkpoint_dir, keep=self.keep)
        return self._ckpt

    def _save(self, carry: StepState) -> None:
        state = carry.saved()
        meta = {
            "seed": self.seed,
            "terms": list(self.term_names),
            "history": {k: v.tolist() for k, v in self.history.to_dict().items()},
        }
        self._checkpointer.save(self.step, state, meta)
        self._saved_step = self.step

    @contextlib.contextmanager
    def _checkpoint_lock(self) -> Iterator[None]:
        """Holds ``checkpoint_dir``'s lock for a ``fit``: a second live process training
        into it is refused (:class:`~jno.train.checkpoint_lock.CheckpointDirectoryInUse`)."""
        if self.checkpoint_dir is None:
            yield
            return
        lock = DirectoryLock(self.checkpoint_dir)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def latest_checkpoint_step(self) -> int | None:
        """The step of the newest checkpoint in ``checkpoint_dir`` (None without one).

        Multi-phase scripts read it before :meth:`restore` to set the optimizer of the
        phase the checkpoint was written in (its state is restored into that optimizer).
        """
        if self._checkpointer is None:
            return None
        return self._checkpointer.latest_step()

    def restore(self, step: int | None = None, *, strict: bool = False) -> int | None:
        """Restores the newest checkpoint of ``checkpoint_dir`` into this fresh trainer.

        ``fit`` does this by itself the first time it runs; call it earlier to know the
        step a run resumes from (e.g. to ``fit(total - trainer.step)``). Returns the
        restored step, or None when there is nothing to restore.

        A checkpoint that cannot be read (damaged or partial files) is skipped with a
        warning that names it, and the newest readable one is restored instead; the
        unreadable one is renamed ``<step>.damaged`` (kept, not deleted) so that the
        run can write that step again.

        Args:
            step: restore this checkpoint, no other (default: the newest readable).
            strict: raise instead of falling back to an older checkpoint.

        Raises:
            CheckpointMismatch: the checkpoint was written by a differently shaped
                trainer (network shapes, loss terms, seed), or with another float dtype
                (a float32 checkpoint in a ``jax_enable_x64`` process, or the reverse:
                arrays are never cast).
            CheckpointUnreadable: ``step`` (or, with ``strict``, the newest checkpoint)
                cannot be read, or no checkpoint can; the message names the directory,
                the damaged steps and the other checkpoints.
            ValueError: ``step`` is not a checkpoint of ``checkpoint_dir``.
        """
        self._prepare()
        if self._checkpointer is None or (self._resume_checked and step is None):
            return None
        self._resume_checked = True
        steps = sorted(self._checkpointer.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise ValueError(
                    f"step={step!r} is not a checkpoint of {self._checkpointer.directory}; "
                    f"its checkpoints are at steps {sorted(steps)}"
                )
            steps = [step]
        elif self.step != 0 or not steps:
            return None
        initial = self._initial_carry()
        state, meta, damaged = read_newest(self._checkpointer, initial.saved(), steps)
        where = self._checkpointer.directory
        if damaged and (strict or state is None):
            others = [s for s in self._checkpointer.all_steps() if s not in damaged]
            raise CheckpointUnreadable(where, damaged, others)
        if damaged:
            # Newer than the restored step: set aside (kept) so that training can write
            # those steps again.
            moved = [self._checkpointer.set_aside(s) for s in sorted(damaged)]
            warnings.warn(
                f"checkpoints {sorted(damaged)} in {where} cannot be read "
                f"({next(iter(damaged.values()))}); restored step {int(state['step'])}, "
                f"the unreadable ones are kept as {moved}",
                stacklevel=2,
            )
        if meta.get("seed") != self.seed:
            raise CheckpointMismatch(
                f"checkpoint in {where} was written with seed={meta.get('seed')}, this trainer "
                f"has seed={self.seed}: use the same seed to resume, or another checkpoint_dir"
            )
        if list(meta.get("terms", [])) != list(self.term_names):
            raise CheckpointMismatch(
                f"checkpoint in {where} has loss terms {meta.get('terms')}, this trainer "
                f"{list(self.term_names)}"
            )
        self.step = int(state["step"])
        restored = initial.with_saved(state)
        self._saved_step = self.step
        self.history = History.from_dict(
            {
                k: [float("nan") if v is None else v for v in vals]
                for k, vals in meta["history"].items()
            }
        )
        self._store(restored)
        return self.step
