"""``Trainer``: the compiled training loop; subclass it for a new PDE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._checks import check_choice, check_int
from jno.nnx._dtype import default_float
from jno.resampling import ResidualAdaptivePoints
from jno.train._chunks import ChunkedRun
from jno.train.checkpoint import Checkpointer
from jno.train.components import ComponentSlots
from jno.train.errors import TrainingDiverged
from jno.train.history import History
from jno.train.hooks import LossHooksMixin
from jno.train.interrupts import raise_for
from jno.train.logging import ProgressReporter
from jno.train.mesh import default_mesh, replicated
from jno.train.network import Network
from jno.train.persistence import PersistenceMixin
from jno.train.setup import SetupMixin
from jno.train.state import StepState
from jno.train.step import CompiledStep, StepPlan
from jno.train.term_gradients import BalancerNeeds
from jno.train.validation import as_networks, check_points, net_name, resamples

__all__ = ["Trainer"]

_NONFINITE_MODES = ("raise", "skip")


class Trainer(LossHooksMixin, SetupMixin, PersistenceMixin):
    """Trains networks on named losses with one compiled step per iteration.

    Subclass it and override :meth:`losses`. Each step samples the point sets, evaluates
    the losses, asks the balancer for weights, differentiates the weighted sum, evaluates
    each network's learning-rate scale and applies its optimizer, all inside one
    ``jax.jit``-compiled function; several steps are fused per dispatch (up to the next
    logging or checkpoint step, or ``steps_per_call``).

    Args:
        net: A :class:`~jno.train.network.Network` (``jno.nn(module)``) with an optimizer,
            or a sequence of them; :meth:`losses` receives the wrapped module(s).
        points: ``{name: PointSet or (n, d) array}``; the batch passed to :meth:`losses`
            has the same keys, with the points of the current step.
        balancer: A balancer module (``jno.nnx.ReLoBRaLo(2)``, ...) turning the loss
            vector into weights; None for unit weights.
        mesh: Device mesh with a ``"data"`` axis; points are sharded over it and the
            parameters replicated. None uses every device (:func:`default_mesh`).
        seed: Seed of the point sampling.
        log_every: Steps between logged values (the last step of every fit is logged).
        logdir: TensorBoard directory (None: no event files).
        checkpoint_dir: Directory for checkpoints (None: none).
        checkpoint_every: Steps between checkpoints.
        keep: Number of checkpoints kept.
        progress: Progress on standard error: None (default) a live bar when it is a
            terminal and plain lines otherwise, True always the bar, False nothing.
        on_nonfinite: ``"raise"`` stops with :class:`~jno.train.errors.TrainingDiverged`
            at the first non-finite loss or gradient; ``"skip"`` drops such steps.
        steps_per_call: Most steps fused into one dispatch (None: up to the next logging
            or checkpoint step).
        causal: A :class:`~jno.nnx.balancers.causal.CausalWeights` used by :meth:`causal_loss`
            (None: :meth:`causal_loss` is the plain mean square): the component in slot
            ``"causal"``. Its epsilon and smallest chunk weight are logged as
            ``tracker/causal_epsilon`` and ``tracker/causal_min_weight``.
        components: Further stateful loss components by slot name
            (:mod:`jno.train.components`): modules whose state the compiled step
            carries, updates, logs and checkpoints; :meth:`component` returns the live
            one inside :meth:`losses`.

    A balancer that needs per-term gradients (``jno.nnx.LRAnnealing``, ...) or NTK
    diagonals (``jno.nnx.NTKBalancer``, which also needs :meth:`residuals`) gets them
    computed inside the step every ``balancer.update_every`` steps; the per-term
    gradient norms are then logged as ``grad_norm/<term>``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from flax import nnx
        >>> import jno
        >>> class Fit(Trainer):
        ...     def losses(self, net, batch):
        ...         x = batch["x"]
        ...         return {"data": jnp.mean((net(x)[:, 0] - 2 * x[:, 0]) ** 2)}
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> _ = net.optimizer(optax.adam(0.1))
        >>> x = jnp.linspace(-1, 1, 32)[:, None]
        >>> trainer = Fit(net, points={"x": x}, log_every=50, progress=False)
        >>> history = trainer.fit(300)
        >>> bool(history["loss/data"][-1] < 1e-4), trainer.step
        (True, 300)
    """

    def __init__(
        self,
        net: Network | Sequence[Network],
        *,
        points: Mapping[str, Any],
        balancer: nnx.Module | None = None,
        mesh: jax.sharding.Mesh | None = None,
        seed: int = 0,
        log_every: int = 100,
        logdir: str | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int | None = None,
        keep: int = 3,
        progress: bool | None = None,
        on_nonfinite: str = "raise",
        steps_per_call: int | None = None,
        causal: nnx.Module | None = None,
        components: Mapping[str, nnx.Module] | None = None,
    ):
        self._single = isinstance(net, Network)
        self.nets: tuple[Network, ...] = as_networks(net)
        self.points: dict[str, Any] = check_points(points)
        if balancer is not None and not (isinstance(balancer, nnx.Module) and callable(balancer)):
            raise TypeError(f"balancer must be a balancer nnx.Module or None, got {balancer!r}")
        self.balancer = balancer
        if causal is not None and not callable(getattr(causal, "loss", None)):
            raise TypeError(f"causal must be a jno.nnx.CausalWeights or None, got {causal!r}")
        if components is not None and not isinstance(components, Mapping):
            raise TypeError(f"components must be a dict {{name: nnx.Module}}, got {components!r}")
        components = dict(components or {})
        if causal is not None:
            if "causal" in components:
                raise ValueError("give the causal weights once: causal= or components['causal']")
            components["causal"] = causal
        # Residual-adaptive point sets carry state: each is a component of its own.
        self._adaptive_slots: dict[str, str] = {}
        for name, ps in self.points.items():
            if isinstance(ps, ResidualAdaptivePoints):
                slot = "points_" + "".join(ch if ch.isalnum() else "_" for ch in name)
                if slot in components:
                    raise ValueError(f"component slot {slot!r} is taken by points {name!r}")
                components[slot] = ps
                self._adaptive_slots[name] = slot
        self.components = ComponentSlots(components)
        self._live_components: dict[str, nnx.Module] | None = None
        self.mesh = default_mesh() if mesh is None else mesh
        if "data" not in self.mesh.axis_names:
            raise ValueError(f"mesh must have a 'data' axis, got axes {self.mesh.axis_names}")
        self.seed = check_int("seed", seed)
        self.log_every = check_int("log_every", log_every, minimum=1)
        self.checkpoint_every = (
            None
            if checkpoint_every is None
            else check_int("checkpoint_every", checkpoint_every, minimum=1)
        )
        self.keep = check_int("keep", keep, minimum=1)
        self.steps_per_call = (
            None
            if steps_per_call is None
            else check_int("steps_per_call", steps_per_call, minimum=1)
        )
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, _NONFINITE_MODES)
        self.logdir = logdir
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.step = 0
        self.history = History()
        self._base_key = jax.random.PRNGKey(self.seed)
        self._fixed: dict[str, jax.Array] | None = None
        self._specs: list[Any] = [None] * len(self.nets)
        self._opt_states: list[Any] = [None] * len(self.nets)
        self._term_names: tuple[str, ...] | None = None
        self._tracker_names: tuple[str, ...] = ()
        self._compiled: CompiledStep | None = None
        self._compiled_key: tuple | None = None
        self._ckpt: Checkpointer | None = None
        self._saved_step: int | None = None
        self._resume_checked = False

    @property
    def term_names(self) -> tuple[str, ...]:
        """The loss-term names (known after the first ``fit``)."""
        return self._term_names or ()

    def _prepare(self) -> CompiledStep:
        for i, net in enumerate(self.nets):
            spec = net.optimizer_spec
            if spec is None:
                raise RuntimeError(
                    f"network {net_name(net, self.nets)} has no optimizer: call "
                    "net.optimizer(optax.adam(1e-3)) (optionally .scale(...)) before fit"
                )
            if spec is not self._specs[i]:
                self._specs[i] = spec
                self._opt_states[i] = None
        schedules = [spec.schedule for spec in self._specs]
        owned = [id(s) for s in schedules if s is not None and s.stateful]
        if len(owned) != len(set(owned)):
            raise ValueError("each network needs its own loss-adaptive schedule instance")
        graphdefs, params, rest = self._split_nets()
        sched_gds = [None if s is None else nnx.split(s)[0] for s in schedules]
        bal_gd = None if self.balancer is None else nnx.split(self.balancer)[0]
        key = (
            tuple(graphdefs),
            tuple(id(s) for s in self._specs),
            tuple(sched_gds),
            bal_gd,
            self.components.graphdefs(),
        )
        if self._compiled is None or key != self._compiled_key:
            self._discover(graphdefs, params, rest)
            plan = StepPlan(
                term_names=self._term_names,
                tracker_names=self._tracker_names,
                net_names=tuple(net_name(n, self.nets, quote=False) for n in self.nets),
                point_names=tuple(self.points),
                resampled=tuple(resamples(ps) for ps in self.points.values()),
                scaled=tuple(s is not None for s in schedules),
                raise_on_nonfinite=self.on_nonfinite == "raise",
                needs=BalancerNeeds.of(self.balancer),
                pointwise_residuals=bool(self.pointwise_residuals),
                adaptive=self._adaptive_plan(),
            )
            self._compiled = CompiledStep(
                plan,
                graphdefs,
                self._specs,
                sched_gds,
                bal_gd,
                self._terms,
                self._weigh,
                self.points,
                self.mesh,
                residuals_fn=self._residuals,
                components=self.components,
            )
            self._compiled_key = key
        return self._compiled

    def check(self) -> tuple[str, ...]:
        """Evaluates the losses and their weights once, abstractly (nothing is compiled
        or trained), so that a mistake in :meth:`losses` shows now; returns the loss
        names (:attr:`term_names`). ``fit`` does this by itself; ``jno.core`` calls it
        when the crux is built.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> class Fit(jno.Trainer):
            ...     def losses(self, net, batch):
            ...         return {"data": jnp.mean(net(batch["x"]) ** 2)}
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> Fit(net, points={"x": jnp.ones((4, 1))}, progress=False).check()
            ('data',)
        """
        self._discover(*self._split_nets())
        return self.term_names

    @property
    def causal(self) -> nnx.Module | None:
        """The causal weights (the component in slot ``"causal"``), or None."""
        return self.components.modules.get("causal")

    def _initial_carry(self) -> StepState:
        _, params, rest = self._split_nets()
        compiled = self._prepare()
        schedules = tuple(
            None if spec.schedule is None else nnx.state(spec.schedule) for spec in self._specs
        )
        carry = StepState(
            step=jnp.asarray(self.step, jnp.int32),
            params=params,
            rest=rest,
            opt=(),
            schedules=schedules,
            balancer=None if self.balancer is None else nnx.state(self.balancer),
            components=self.components.states(),
            key=self._base_key,
            term_grad_norms=jnp.full(len(self.term_names), jnp.nan, default_float()),
            diverged=jnp.asarray(False),
            bad_step=jnp.asarray(-1, jnp.int32),
            bad_terms=jnp.zeros(len(self.term_names) + 2, bool),
        )
        fixed = self._fixed_points()
        for i in range(len(self._specs)):
            if self._opt_states[i] is None:
                self._opt_states[i] = compiled.init_optimizer(i, carry, fixed)
        carry = carry.replace(opt=tuple(self._opt_states))
        return jax.device_put(carry, replicated(self.mesh))

    def _store(self, carry: StepState) -> None:
        """Writes the carry back into the modules the user holds."""
        for net, params, rest in zip(self.nets, carry.params, carry.rest):
            nnx.update(net.module, params, rest)
        for i, spec in enumerate(self._specs):
            if spec.schedule is not None and carry.schedules[i] is not None:
                nnx.update(spec.schedule, carry.schedules[i])
        if self.balancer is not None:
            nnx.update(self.balancer, carry.balancer)
        self.components.store(carry.components)
        self._opt_states = list(carry.opt)

    # --------------------------------------------------------------- loop
    def _next_boundary(self, step: int, target: int) -> int:
        stops = [target, (step // self.log_every + 1) * self.log_every]
        if self.checkpoint_every is not None:
            stops.append((step // self.checkpoint_every + 1) * self.checkpoint_every)
        if self.steps_per_call is not None:
            stops.append(step + self.steps_per_call)
        return min(stops)

    def fit(self, steps: int | None = None, *, until: int | None = None) -> History:
        """Trains ``steps`` more steps, or up to step ``until`` in total.

        With a ``checkpoint_dir`` that already holds a checkpoint, the first ``fit`` of a
        new trainer first restores it and continues from its step. ``fit(until=N)`` is
        the crash-safe form: run the same script again after an interruption and it
        resumes and stops at step ``N``, as the uninterrupted run would have, where
        ``fit(n)`` would train ``n`` steps past the restored step.

        Args:
            steps: number of steps to run from the current step.
            until: total step to reach (nothing is run when the trainer is already
                there). Give exactly one of ``steps`` and ``until``.

        Returns:
            The history of the whole run.

        SIGINT (Ctrl-C) and SIGTERM stop the training at the end of the chunk of fused
        steps in flight (at most ``log_every`` steps), save a checkpoint of that step
        when ``checkpoint_dir`` is set, close the TensorBoard run, and then raise
        ``KeyboardInterrupt`` or ``SystemExit(143)``; the next ``fit`` resumes exactly
        (:mod:`jno.train.interrupts`). A second Ctrl-C stops at once.

        Raises:
            TrainingDiverged: A loss or gradient became non-finite (``on_nonfinite="raise"``).
            KeyboardInterrupt, SystemExit: after SIGINT, SIGTERM.
            CheckpointDirectoryInUse: another live process trains into ``checkpoint_dir``.
            CheckpointSaveFailed: ``checkpoint_dir`` cannot be written (found before the
                first step) or a save failed (disk full); earlier checkpoints stay.
        """
        if (steps is None) == (until is None):
            raise TypeError(
                f"fit takes exactly one of steps and until, got steps={steps!r}, until={until!r}"
            )
        if until is not None:
            until = check_int("until", until, minimum=0)
        else:
            steps = check_int("steps", steps, minimum=0)
        compiled = self._prepare()
        with self._checkpoint_lock():
            return self._fit(compiled, steps, until)

    def _fit(self, compiled: CompiledStep, steps: int | None, until: int | None) -> History:
        self.restore()
        if until is not None:
            steps = max(0, until - self.step)
        fixed = self._fixed_points()
        carry = self._initial_carry()
        target = self.step + steps
        writer = self._tensorboard()
        progress = ProgressReporter(self.progress)
        progress.start(self.step, target)

        def save(carry: StepState) -> None:
            if self._checkpointer is not None and self._saved_step != self.step:
                self._save(carry)

        def hand_back(carry: StepState) -> None:
            # The state handed back is the newest dispatched one: its step goes with it.
            self.step = int(jax.device_get(carry.step))
            self._store(carry)
            progress.close()
            if writer is not None:
                writer.close()
            if self._checkpointer is not None:
                self._checkpointer.wait()

        stop = ChunkedRun(carry).fit(
            lambda c, acc, n: compiled.run(c, acc, fixed, n),
            lambda *done: self._complete(compiled, *done, writer, progress),
            compiled.metrics.empty(), self.step, target, self._next_boundary, self.log_every,
            save=save, hand_back=hand_back,
        )  # fmt: skip
        raise_for(stop, self.step, self.checkpoint_dir)
        return self.history

    def _complete(self, compiled, carry, chunk_metrics, end_step, log_due, writer, progress):
        """Host side of a finished chunk: divergence check, logging, checkpoint."""
        step, diverged = jax.device_get((carry.step, carry.diverged))
        self.step = int(step)
        if diverged:
            self._log(compiled, chunk_metrics, writer, progress)
            raise self._diverged(carry)
        if log_due:
            self._log(compiled, chunk_metrics, writer, progress)
        if self.checkpoint_every and end_step % self.checkpoint_every == 0:
            self._save(carry)

    def _diverged(self, carry: StepState) -> TrainingDiverged:
        bad_step, bad = jax.device_get((carry.bad_step, carry.bad_terms))
        names = [*self.term_names, "gradient", "learning rate"]
        terms = [names[j] for j in np.flatnonzero(bad)]
        if any(t in self.term_names for t in terms):
            # A non-finite loss makes the gradient non-finite too: name the cause.
            terms = [t for t in terms if t in self.term_names]
        return TrainingDiverged(int(bad_step), terms)

    def _log(self, compiled: CompiledStep, accumulated: Any, writer, progress) -> None:
        values = compiled.metrics.compute(accumulated)
        self.history.append(self.step, values)
        if writer is not None:
            writer.write_scalars(self.step, values)
        progress.update(self.step, values)
