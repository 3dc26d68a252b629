"""Ensembles: many seeds of one training in one compiled program.

``jno.ensemble(make, seeds)`` builds one trainer per seed with ``make(seed)`` (a
:class:`~jno.train.trainer.Trainer`, a packaged problem or a ``jno.core`` crux) and
trains them all together: parameters, optimizer, schedule, balancer, sampler and
causal states are stacked on a member axis, and one compiled program runs every
member's steps, each drawing its own points from its own seed. Each member's
trajectory is the one it has when trained alone. Members run side by side
(``jax.vmap``) or one after the other inside the program (``members_per_batch``),
and their axis is split over the devices when there are several.

Members must share their structure: class, configuration (networks, optimizers,
schedules, balancer, points, problem parameters) and run settings; a clear error names
the first difference. What can differ is what lives in state: the seed (initial
parameters, points, balancer randomness), and any value you set in a member's
``nnx.Variable`` s after ``make`` built it (for example a balancer's state).

Example:
    >>> import jax.numpy as jnp
    >>> from jno.problems import Poisson2D
    >>> make = lambda seed: Poisson2D.default(seed=seed, hidden=[8], batch_size=16,
    ...                                       progress=False, log_every=5)
    >>> ens = ensemble(make, seeds=[0, 1, 2])
    >>> history = ens.fit(10)
    >>> history.members[1]["loss/total"].shape, history.stats("loss/total").mean.shape
    ((2,), (2,))
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jno.nnx._checks import check_bool, check_int
from jno.train._chunks import ChunkedRun, check_fit, fit_target, next_boundary
from jno.train._ensemble_checks import first_difference
from jno.train._ensemble_run import (
    MemberLoop,
    default_members_per_batch,
    member_mesh,
    parameter_count,
    stack,
    unstack,
)
from jno.train.errors import TrainingDiverged
from jno.train.history import History
from jno.train.interrupts import raise_for
from jno.train.logging import ProgressReporter
from jno.train.processes import host_values
from jno.train.trainer import Trainer
from jno.train.validation import resamples

__all__ = ["Ensemble", "EnsembleHistory", "MemberDiverged", "MemberStats", "ensemble"]


class MemberStats(NamedTuple):
    """Statistics of one tag across the members, one value per logged step."""

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


class EnsembleHistory(Mapping[str, np.ndarray]):
    """The members' histories: ``history[tag]`` is ``(members, logged steps)``.

    Example:
        >>> a, b = History(), History()
        >>> a.append(10, {"loss/total": 1.0}); b.append(10, {"loss/total": 3.0})
        >>> h = EnsembleHistory([a, b], seeds=[0, 1])
        >>> h["loss/total"].tolist(), h.stats("loss/total").mean.tolist()
        ([[1.0], [3.0]], [2.0])
    """

    def __init__(self, members: Sequence[History], seeds: Sequence[int]):
        self.members = tuple(members)
        self.seeds = tuple(seeds)

    @property
    def steps(self) -> np.ndarray:
        """The logged step counts (the same for every member)."""
        return self.members[0].steps

    def __getitem__(self, tag: str) -> np.ndarray:
        return np.stack([member[tag] for member in self.members])

    def __iter__(self):
        return iter(self.members[0])

    def __len__(self) -> int:
        return len(self.members[0])

    def stats(self, tag: str) -> MemberStats:
        """Mean, standard deviation (``ddof=1``; 0 for one member), min and max of
        ``tag`` across the members at every logged step (NaNs propagate)."""
        values = self[tag]
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        return MemberStats(values.mean(axis=0), std, values.min(axis=0), values.max(axis=0))

    def final(self, tag: str) -> np.ndarray:
        """The last logged value of ``tag`` for each member."""
        return self[tag][:, -1]


class Ensemble:
    """Trainers that differ only in their seed, trained in one compiled program.

    Args:
        make: ``seed -> Trainer`` (or a packaged problem, or a ``jno.core`` crux).
        seeds: the members' seeds, distinct.
        logdir: TensorBoard folder: member ``k`` writes its run to
            ``logdir/seed_<seed>`` so the curves overlay. None keeps what ``make`` set.
        checkpoint_dir: checkpoints of the whole ensemble: member ``k`` in
            ``checkpoint_dir/seed_<seed>``, all written at the same steps, and a new
            ensemble resumes from them. None keeps what ``make`` set.
        members_per_batch: members run side by side in the program (a divisor of the
            number of members): all of them vectorises the ensemble, 1 runs the members
            one after the other. None chooses by size: all of them when a member's
            parameters times points per step are below 4e6, else 1.
        progress: progress on stderr (the mean over the members); None: the first
            member's ``progress`` setting.

    Raises:
        ValueError: repeated seeds, members that differ in structure (the message
            names the first difference), or a ``members_per_batch`` that does not
            divide the members.
        TypeError: ``make`` does not return a ``Trainer``.
    """

    def __init__(
        self,
        make: Callable[[int], Trainer],
        seeds: Iterable[int],
        *,
        logdir: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        members_per_batch: int | None = None,
        progress: bool | None = None,
    ):
        seeds = [check_int("seeds[...]", s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one member, got none")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        self.seeds = tuple(seeds)
        members = []
        for seed in seeds:
            member = make(seed)
            if not isinstance(member, Trainer):
                raise TypeError(
                    f"make must return a jno Trainer (or problem, or crux), got "
                    f"{type(member).__name__} for seed {seed}"
                )
            if logdir is not None:
                member.logdir = str(Path(logdir) / f"seed_{seed}")
            if checkpoint_dir is not None:
                member.checkpoint_dir = str(Path(checkpoint_dir).resolve() / f"seed_{seed}")
            members.append(member)
        self.members: tuple[Trainer, ...] = tuple(members)
        self.progress = (
            members[0].progress if progress is None else check_bool("progress", progress)
        )
        if members_per_batch is not None:
            members_per_batch = check_int("members_per_batch", members_per_batch, minimum=1)
            if len(seeds) % members_per_batch:
                raise ValueError(
                    f"members_per_batch must divide the {len(seeds)} members, "
                    f"got {members_per_batch}"
                )
        self._members_per_batch = members_per_batch
        for member in self.members:
            member.compile()
        difference = first_difference(self.members, self.seeds)
        if difference:
            raise ValueError(f"ensemble members must share their structure: {difference}")
        self._loop: MemberLoop | None = None
        self._loop_key: Any = None
        self._work: int | None = None

    def __len__(self) -> int:
        return len(self.members)

    @property
    def step(self) -> int:
        """The members' step count (the same for all)."""
        return self.members[0].step

    @property
    def members_per_batch(self) -> int:
        """Members run side by side (the argument, or the choice made by size)."""
        if self._members_per_batch is not None:
            return self._members_per_batch
        if self._work is None:  # the sizes are fixed: measured once
            member = self.members[0]
            points = sum(int(np.shape(x)[0]) for x in member.fixed_points().values())
            points += sum(ps.n for ps in member.points.values() if resamples(ps))
            self._work = parameter_count(member.initial_state()) * max(points, 1)
        return default_members_per_batch(len(self), self._work)

    @property
    def history(self) -> EnsembleHistory:
        """Every member's history, with statistics across members."""
        return EnsembleHistory([m.history for m in self.members], self.seeds)

    def _member_loop(self, template: Any) -> MemberLoop:
        key = (id(template), self.members_per_batch)
        if self._loop is None or self._loop_key != key:
            mesh = member_mesh(len(self))
            self._loop = MemberLoop(template, len(self), self.members_per_batch, mesh)
            self._loop_key = key
        return self._loop

    def restore(self) -> int | None:
        """Restores every member from its checkpoint (``checkpoint_dir``); returns the
        step, or None when there is nothing to restore.

        Raises:
            RuntimeError: the members' newest checkpoints are at different steps.
        """
        steps = [member.restore() for member in self.members]
        if len({m.step for m in self.members}) > 1:
            found = ", ".join(f"seed {s}: {m.step}" for s, m in zip(self.seeds, self.members))
            raise RuntimeError(
                f"the members' checkpoints are at different steps ({found}): resume them "
                "from one step, or remove the newer checkpoints"
            )
        return steps[0]

    def fit(self, steps: int | None = None, *, until: int | None = None) -> EnsembleHistory:
        """Trains every member ``steps`` more steps, or up to step ``until``, in one
        compiled program (as :meth:`Trainer.fit`, member by member).

        Raises:
            MemberDiverged: a member's loss or gradient became non-finite
                (``on_nonfinite="raise"``, a :class:`TrainingDiverged` naming the member).
            KeyboardInterrupt, SystemExit: after SIGINT, SIGTERM (every member saved).
            CheckpointDirectoryInUse, CheckpointSaveFailed: as :meth:`Trainer.fit`,
                for any member's directory.
        """
        steps, until = check_fit(steps, until)
        template = [member.compile() for member in self.members][0]
        with contextlib.ExitStack() as locks:
            for member in self.members:
                locks.enter_context(member.checkpoints.lock())
            self.restore()
            return self._fit(template, fit_target(steps, until, self.step))

    def _fit(self, template: Any, target: int) -> EnsembleHistory:
        first = self.members[0]
        loop = self._member_loop(template)
        fixed = loop.place(stack([m.fixed_points() for m in self.members]))
        carry = loop.place(stack([m.initial_state() for m in self.members]))
        empty = loop.place(stack([template.metrics.empty()] * len(self)))
        writers = [m.open_log() for m in self.members]
        every = (first.log_every, first.checkpoint_every, first.steps_per_call)
        progress = ProgressReporter(self.progress)
        progress.start(first.step, target)

        def save(carry: Any) -> None:
            if first.checkpoints.due_final_save(first.step):
                self._save(host_values(carry))

        def hand_back(carry: Any) -> None:
            # The state handed back is the newest dispatched one: its step goes with it.
            carry = host_values(carry)
            steps, diverged, bad = (
                np.asarray(a) for a in (carry.step, carry.diverged, carry.bad_step)
            )
            for k, member in enumerate(self.members):
                # A diverged member's state is that of the step before its bad one.
                member.step = int(bad[k] if diverged[k] else steps[k])
                member.load_state(unstack(carry, k))
            progress.close()
            for writer in writers:
                if writer is not None:
                    writer.close()
            for member in self.members:
                member.checkpoints.wait()

        stop = ChunkedRun(carry).fit(
            lambda c, acc, n: loop.run(c, acc, fixed, n),
            lambda *done: self._complete(template, *done, writers, progress),
            empty, first.step, target, lambda s, t: next_boundary(s, t, *every), first.log_every,
            save=save, hand_back=hand_back,
        )  # fmt: skip
        where = None if first.checkpoint_dir is None else str(Path(first.checkpoint_dir).parent)
        raise_for(stop, first.step, where)
        return self.history

    def _complete(self, template, carry, chunk, end_step, log_due, writers, progress) -> None:
        """Host side of a finished chunk for every member: divergence, logs, checkpoint."""
        # Members live on the devices of every process: each process reads them all.
        carry, chunk = host_values((carry, chunk))
        steps, diverged = (np.asarray(a) for a in (carry.step, carry.diverged))
        for member, step in zip(self.members, steps):
            member.step = int(step)
        bad = np.flatnonzero(diverged)
        if bad.size or log_due:
            self._log(template, carry, diverged, chunk, writers, progress)
        if bad.size:
            k = int(bad[0])
            state = unstack(carry, k)
            error = TrainingDiverged.at(state.bad_step, state.bad_terms, self.members[k].term_names)
            self.members[k].step = error.step  # as alone: stopped before the bad step
            raise MemberDiverged(k, self.seeds[k], error.step, error.terms)
        first = self.members[0]
        if first.checkpoint_every and end_step % first.checkpoint_every == 0:
            self._save(carry)

    def _log(self, template, carry, diverged, chunk, writers, progress) -> None:
        rows = template.metrics.compute_members(chunk)
        for k, (member, values, writer) in enumerate(zip(self.members, rows, writers)):
            if not diverged[k]:  # as alone: the member's own metrics (error/<field>, ...)
                values.update(member.evaluate(unstack(carry, k)))
            member.history.append(member.step, values)
            if writer is not None:
                writer.write_scalars(member.step, values)
        mean = {tag: statistics.fmean(row[tag] for row in rows) for tag in rows[0]}
        progress.update(self.members[0].step, mean)

    def _save(self, carry) -> None:
        for k, member in enumerate(self.members):
            member.save_checkpoint(unstack(carry, k))


class MemberDiverged(TrainingDiverged):
    """A member of an ensemble diverged (``on_nonfinite="raise"``).

    Attributes:
        member, seed: the member's index and seed; ``step`` and ``terms`` as
            :class:`~jno.train.errors.TrainingDiverged`.

    Example:
        >>> str(MemberDiverged(2, 7, 12, ["pde"]))
        "ensemble member 2 (seed 7): training diverged at step 12: non-finite value in ['pde']"
    """

    def __init__(self, member: int, seed: int, step: int, terms: Sequence[str]):
        super().__init__(step, terms)
        self.member, self.seed = member, seed
        self.args = (f"ensemble member {member} (seed {seed}): {self.args[0]}",)


def ensemble(
    make: Callable[[int], Trainer], seeds: Iterable[int] = range(8), **kwargs: Any
) -> Ensemble:
    """An :class:`Ensemble` of ``make(seed)`` for every seed (see its arguments).

    Example:
        >>> from jno.problems import Poisson2D
        >>> ens = ensemble(lambda s: Poisson2D.default(seed=s, hidden=[4], progress=False),
        ...                seeds=range(4))
        >>> len(ens), ens.seeds
        (4, (0, 1, 2, 3))
    """
    return Ensemble(make, seeds, **kwargs)
