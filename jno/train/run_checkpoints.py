"""The checkpoints of one run: the directory, its lock, saving and restoring.

A :class:`RunCheckpoints` is one part of a :class:`~jno.train.trainer.Trainer`. It owns
``checkpoint_dir``: the lock a ``fit`` holds on it
(:class:`~jno.train.checkpoint_lock.DirectoryLock`), the writes (the step state with the
seed, the loss names and the history), and the restore that falls back from an
unreadable checkpoint to the newest readable one and refuses a checkpoint of another
trainer (:class:`~jno.train.checkpoint.CheckpointMismatch`).

Example:
    >>> store = RunCheckpoints(None, keep=3)
    >>> store.enabled, store.latest_step(), store.due_final_save(10)
    (False, None, False)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence

from jno.train.checkpoint import (
    Checkpointer,
    CheckpointMismatch,
    CheckpointSaveFailed,
    CheckpointUnreadable,
    read_newest,
)
from jno.train.checkpoint_lock import CheckpointDirectoryInUse, DirectoryLock
from jno.train.history import History
from jno.train.processes import any_process, is_primary
from jno.train.state import StepState

__all__ = ["RunCheckpoints"]


class RunCheckpoints:
    """Saving, restoring and locking the checkpoints of a run in ``directory``.

    Args:
        directory: The checkpoint directory (None: no checkpoints; every method is
            then a no-op that says so).
        keep: Number of checkpoints kept.

    Attributes:
        saved_step: The step of the newest checkpoint this run wrote or restored
            (None before either).
    """

    def __init__(self, directory: str | None, keep: int):
        self.directory = directory
        self.keep = keep
        self.saved_step: int | None = None
        self._writer: Checkpointer | None = None
        self._resume_checked = False

    @property
    def enabled(self) -> bool:
        """Whether the run has a checkpoint directory."""
        return self.directory is not None

    def _checkpointer(self) -> Checkpointer:
        if self._writer is None:
            self._writer = Checkpointer(self.directory, keep=self.keep)
        return self._writer

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the directory's lock for a ``fit``: a second live process training into
        it is refused (:class:`~jno.train.checkpoint_lock.CheckpointDirectoryInUse`)."""
        if not self.enabled:
            yield
            return
        lock = DirectoryLock(self.directory)
        # Of a run's processes, process 0 holds the lock for all of them; a refusal
        # stops every one (a process left alone would wait on a collective).
        refused = None
        if is_primary():
            try:
                lock.acquire()
            except (CheckpointDirectoryInUse, CheckpointSaveFailed) as err:
                refused = err
        if any_process(refused is not None):
            if refused is not None:
                raise refused
            raise CheckpointDirectoryInUse(
                f"checkpoint_dir {self.directory}: process 0 of this run was refused its "
                "lock (its error says why)"
            )
        try:
            yield
        finally:
            lock.release()

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint (None without one)."""
        return self._checkpointer().latest_step() if self.enabled else None

    def due_final_save(self, step: int) -> bool:
        """Whether a run that stops at ``step`` still has to save it."""
        return self.enabled and self.saved_step != step

    def save(
        self,
        step: int,
        state: StepState,
        *,
        seed: int,
        term_names: Sequence[str],
        history: History,
    ) -> None:
        """Writes the checkpoint of ``step`` (asynchronously; :meth:`wait` ends it)."""
        meta = {
            "seed": seed,
            "terms": list(term_names),
            "history": {k: v.tolist() for k, v in history.to_dict().items()},
            "marks": [list(m) for m in history.marks],
        }
        self._checkpointer().save(step, state.saved(), meta)
        self.saved_step = step

    def wait(self) -> None:
        """Blocks until the checkpoints being written are on disk."""
        if self._writer is not None:
            self._writer.wait()

    def restore(
        self,
        initial: Callable[[], StepState],
        *,
        current_step: int,
        seed: int,
        term_names: Sequence[str],
        step: int | None = None,
        strict: bool = False,
    ) -> tuple[StepState, History] | None:
        """The state and history of a checkpoint, or None when there is nothing to restore.

        Without ``step``, restores once per run, and only into a run at step 0.

        Args:
            initial: The run's current state (its structure is what is read).
            current_step: The step of the run restoring.
            seed, term_names: The run's seed and loss names, which the checkpoint must have.
            step: Restore this checkpoint, no other (default: the newest readable).
            strict: Raise instead of falling back to an older checkpoint.

        Raises:
            CheckpointMismatch, CheckpointUnreadable, ValueError: as
                :meth:`~jno.train.trainer.Trainer.restore`.
        """
        if not self.enabled or (self._resume_checked and step is None):
            return None
        self._resume_checked = True
        checkpointer = self._checkpointer()
        steps = sorted(checkpointer.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise ValueError(
                    f"step={step!r} is not a checkpoint of {checkpointer.directory}; "
                    f"its checkpoints are at steps {sorted(steps)}"
                )
            steps = [step]
        elif current_step != 0 or not steps:
            return None
        start = initial()
        state, meta, damaged = read_newest(checkpointer, start.saved(), steps)
        where = checkpointer.directory
        if damaged and (strict or state is None):
            others = [s for s in checkpointer.all_steps() if s not in damaged]
            raise CheckpointUnreadable(where, damaged, others)
        if damaged:
            # Newer than the restored step: set aside (kept) so that training can write
            # those steps again.
            moved = [checkpointer.set_aside(s) for s in sorted(damaged)]
            warnings.warn(
                f"checkpoints {sorted(damaged)} in {where} cannot be read "
                f"({next(iter(damaged.values()))}); restored step {int(state['step'])}, "
                f"the unreadable ones are kept as {moved}",
                stacklevel=3,
            )
        if meta.get("seed") != seed:
            raise CheckpointMismatch(
                f"checkpoint in {where} was written with seed={meta.get('seed')}, this trainer "
                f"has seed={seed}: use the same seed to resume, or another checkpoint_dir"
            )
        if list(meta.get("terms", [])) != list(term_names):
            raise CheckpointMismatch(
                f"checkpoint in {where} has loss terms {meta.get('terms')}, this trainer "
                f"{list(term_names)}"
            )
        self.saved_step = int(state["step"])
        history = History.from_dict(
            {
                k: [float("nan") if v is None else v for v in vals]
                for k, vals in meta["history"].items()
            },
            meta.get("marks", ()),
        )
        return start.with_saved(state), history
