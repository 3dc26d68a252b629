"""One ``fit`` of a trainer on the host: chunks of fused steps, each completed by
logging, a divergence check and the checkpoint that is due.

A :class:`FitLoop` drives a :class:`~jno.train._chunks.ChunkedRun` for a
:class:`~jno.train.trainer.Trainer` through its public interface (``initial_state``,
``load_state``, ``open_log``, ``save_checkpoint``, ``checkpoints``, ``history``,
``step``) and hands the newest state back to the trainer however the fit ends.

Example:
    >>> import jax.numpy as jnp, optax
    >>> from flax import nnx
    >>> import jno
    >>> class Fit(jno.Trainer):
    ...     def losses(self, net, batch):
    ...         return {"data": jnp.mean((net(batch["x"]) - 1) ** 2)}
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> _ = net.optimizer(optax.adam(0.1))
    >>> trainer = Fit(net, points={"x": jnp.ones((4, 1))}, log_every=5, progress=False)
    >>> history = FitLoop(trainer, trainer.compile(), target=10).run()
    >>> trainer.step, history.steps.tolist()
    (10, [5, 10])
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

from jno.train._chunks import ChunkedRun, next_boundary
from jno.train.errors import TrainingDiverged
from jno.train.history import History
from jno.train.interrupts import raise_for
from jno.train.logging import ProgressReporter
from jno.train.state import StepState
from jno.train.step import CompiledStep

__all__ = ["FitLoop", "Fittable"]


class Fittable(Protocol):
    """What a :class:`FitLoop` uses of a trainer (:class:`~jno.train.trainer.Trainer`)."""

    step: int
    history: History
    progress: bool | None
    log_every: int
    checkpoint_every: int | None
    checkpoint_dir: str | None
    term_names: tuple[str, ...]
    checkpoints: Any
    point_plan: Any

    def initial_state(self) -> StepState: ...
    def load_state(self, state: StepState) -> None: ...
    def open_log(self) -> Any: ...
    def save_checkpoint(self, state: StepState) -> None: ...
    def evaluate(self, state: StepState) -> dict[str, float]: ...

    steps_per_call: int | None


class FitLoop:
    """Trains ``trainer`` from its current step to ``target`` with ``compiled``.

    Args:
        trainer: The trainer (restored already, its checkpoint lock held).
        compiled: Its compiled step.
        target: The step to reach.
    """

    def __init__(self, trainer: Fittable, compiled: CompiledStep, target: int):
        self.trainer = trainer
        self.compiled = compiled
        self.target = target
        self.writer = trainer.open_log()
        self.progress = ProgressReporter(trainer.progress)

    def run(self) -> History:
        """Runs the chunks; returns the trainer's history.

        Raises:
            TrainingDiverged, KeyboardInterrupt, SystemExit: as ``Trainer.fit``.
        """
        trainer, compiled = self.trainer, self.compiled
        fixed = trainer.point_plan.fixed()
        carry = trainer.initial_state()
        self.progress.start(trainer.step, self.target)
        stop = ChunkedRun(carry).fit(
            lambda c, acc, n: compiled.run(c, acc, fixed, n),
            self._complete, compiled.metrics.empty(), trainer.step, self.target,
            self.chunk_end, trainer.log_every, save=self._final_save, hand_back=self._hand_back,
        )  # fmt: skip
        raise_for(stop, trainer.step, trainer.checkpoint_dir)
        return trainer.history

    def chunk_end(self, step: int, target: int) -> int:
        """Where the chunk of fused steps that starts at ``step`` ends (:func:`next_boundary`
        with the trainer's ``log_every``, ``checkpoint_every`` and ``steps_per_call``)."""
        t = self.trainer
        return next_boundary(step, target, t.log_every, t.checkpoint_every, t.steps_per_call)

    def _final_save(self, carry: StepState) -> None:
        if self.trainer.checkpoints.due_final_save(self.trainer.step):
            self.trainer.save_checkpoint(carry)

    def _hand_back(self, carry: StepState) -> None:
        # The state handed back is the newest dispatched one: its step goes with it.
        self.trainer.step = int(jax.device_get(carry.step))
        self.trainer.load_state(carry)
        self.progress.close()
        if self.writer is not None:
            self.writer.close()
        self.trainer.checkpoints.wait()

    def _complete(self, carry: StepState, chunk: Any, end_step: int, log_due: bool) -> None:
        """Host side of a finished chunk: divergence check, logging, checkpoint."""
        trainer = self.trainer
        step, diverged = jax.device_get((carry.step, carry.diverged))
        trainer.step = int(step)
        if diverged or log_due:
            values = self.compiled.metrics.compute(chunk)
            if not diverged:
                values.update(trainer.evaluate(carry))
            trainer.history.append(trainer.step, values)
            if self.writer is not None:
                self.writer.write_scalars(trainer.step, values)
            self.progress.update(trainer.step, values)
        if diverged:
            raise TrainingDiverged.at(
                *jax.device_get((carry.bad_step, carry.bad_terms)), trainer.term_names
            )
        if trainer.checkpoint_every and end_step % trainer.checkpoint_every == 0:
            trainer.save_checkpoint(carry)
