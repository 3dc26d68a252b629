"""Checkpointing, resuming and TensorBoard set-up of a :class:`~jno.train.trainer.Trainer`."""

from __future__ import annotations

from typing import Any

from jno.train.checkpoint import Checkpointer, CheckpointMismatch
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

    def latest_checkpoint_step(self) -> int | None:
        """The step of the newest checkpoint in ``checkpoint_dir`` (None without one).

        Multi-phase scripts read it before :meth:`restore` to set the optimizer of the
        phase the checkpoint was written in (its state is restored into that optimizer).
        """
        if self._checkpointer is None:
            return None
        return self._checkpointer.latest_step()

    def restore(self) -> int | None:
        """Restores the newest checkpoint of ``checkpoint_dir`` into this fresh trainer.

        ``fit`` does this by itself the first time it runs; call it earlier to know the
        step a run resumes from (e.g. to ``fit(total - trainer.step)``). Returns the
        restored step, or None when there is nothing to restore.

        Raises:
            CheckpointMismatch: the checkpoint was written by a differently shaped
                trainer (network shapes, loss terms, seed), or with another float dtype
                (a float32 checkpoint in a ``jax_enable_x64`` process, or the reverse:
                arrays are never cast).
        """
        self._prepare()
        if self._resume_checked or self._checkpointer is None:
            return None
        self._resume_checked = True
        if self.step != 0 or self._checkpointer.latest_step() is None:
            return None
        initial = self._initial_carry()
        state, meta = self._checkpointer.restore(initial.saved())
        where = self._checkpointer.directory
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
