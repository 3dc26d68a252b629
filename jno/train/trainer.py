"""``Trainer``: the compiled training loop; subclass it for a new PDE.

A trainer is made of parts, each with its own state and interface: the point plan
(:class:`~jno.train.point_plan.PointPlan`), what it trains (networks, optimizers,
schedules, balancer, components: :class:`~jno.train.trained.Trained`), the term
bookkeeping (:class:`~jno.train.term_book.TermBook`), the checkpoints
(:class:`~jno.train.run_checkpoints.RunCheckpoints`) and the compiled step
(:class:`~jno.train.step.CompiledStep`); its host loop is a
:class:`~jno.train._chunks.ChunkedRun`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import optax
from flax import nnx

from jno.nnx._checks import check_choice, check_int
from jno.train._chunks import check_fit, fit_target
from jno.train.components import ComponentSlots, with_causal
from jno.train.fit_loop import FitLoop
from jno.train.history import History
from jno.train.hooks import TrainerHooks
from jno.train.logging import TensorBoardWriter
from jno.train.mesh import default_mesh
from jno.train.network import Network
from jno.train.optim import OptimizerSpec
from jno.train.point_plan import PointPlan
from jno.train.run_checkpoints import RunCheckpoints
from jno.train.state import StepState
from jno.train.step import CompiledStep
from jno.train.step_builder import StepBuilder
from jno.train.term_book import TermBook
from jno.train.trained import Trained
from jno.train.validation import as_networks, check_points, describe_points

__all__ = ["Trainer"]

_NONFINITE_MODES = ("raise", "skip")


def _every(name: str, value: int | None) -> int | None:
    return None if value is None else check_int(name, value, minimum=1)


class Trainer(TrainerHooks):
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
        nets = as_networks(net)
        points = check_points(points)
        if balancer is not None and not (isinstance(balancer, nnx.Module) and callable(balancer)):
            raise TypeError(f"balancer must be a balancer nnx.Module or None, got {balancer!r}")
        components = with_causal(components, causal)
        self.mesh = default_mesh() if mesh is None else mesh
        if "data" not in self.mesh.axis_names:
            raise ValueError(f"mesh must have a 'data' axis, got axes {self.mesh.axis_names}")
        self.seed = check_int("seed", seed)
        self.point_plan = PointPlan(points, self.mesh, self.seed)
        # Residual-adaptive point sets carry state: each is a component of its own.
        components.update(self.point_plan.components(components))
        self.trained = Trained(nets, balancer, ComponentSlots(components))
        # The parts' objects, under the names users know.
        self.nets, self.balancer, self.points = nets, balancer, self.point_plan.sets
        self.components = self.trained.components
        self.term_book = TermBook(isinstance(net, Network), [n.view for n in nets])
        self.log_every = check_int("log_every", log_every, minimum=1)
        self.checkpoint_every = _every("checkpoint_every", checkpoint_every)
        self.keep = check_int("keep", keep, minimum=1)
        self.checkpoints = RunCheckpoints(checkpoint_dir, self.keep)
        self.steps_per_call = _every("steps_per_call", steps_per_call)
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, _NONFINITE_MODES)
        self.step_builder = StepBuilder(
            self, self.trained, self.point_plan, self.term_book, self.mesh,
            raise_on_nonfinite=self.on_nonfinite == "raise",
        )  # fmt: skip
        self.logdir = logdir
        self.progress = progress
        self.step = 0
        self.history = History()

    @property
    def checkpoint_dir(self) -> str | None:
        """The checkpoint directory (None: no checkpoints)."""
        return self.checkpoints.directory

    @checkpoint_dir.setter
    def checkpoint_dir(self, directory: str | None) -> None:
        self.checkpoints = RunCheckpoints(directory, self.keep)

    @property
    def term_names(self) -> tuple[str, ...]:
        """The loss-term names (known after the first ``fit``)."""
        return self.term_book.term_names or ()

    # ------------------------------------------------------- hooks for losses
    def track(self, name: str, value: Any) -> None:
        """Logs ``value`` (a scalar) under ``tracker/<name>`` at every logged step.

        Call it inside :meth:`losses` or :meth:`weigh`: the value is computed in the
        compiled step like the losses and adds nothing to them. Outside a step it does
        nothing.

        Example:
            >>> import jax.numpy as jnp, optax
            >>> from flax import nnx
            >>> import jno
            >>> class Fit(jno.Trainer):
            ...     def losses(self, net, batch):
            ...         r = net(batch["x"])[:, 0] - 1.0
            ...         self.track("max_residual", jnp.max(jnp.abs(r)))
            ...         return {"data": jnp.mean(r**2)}
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> _ = net.optimizer(optax.adam(0.1))
            >>> h = Fit(net, points={"x": jnp.ones((4, 1))}, progress=False).fit(3)
            >>> h["tracker/max_residual"].shape
            (1,)
        """
        self.term_book.track(name, value)

    def component(self, name: str) -> nnx.Module | None:
        """The stateful loss component in slot ``name`` (None when there is none).

        Inside :meth:`losses` during a step this is the step's live module, whose state
        updates are carried to the next step; elsewhere the module the trainer holds.
        """
        if self.term_book.in_step:
            return self.term_book.live_component(name)
        return self.components.modules.get(name)

    def point_weights(self, name: str) -> jax.Array | None:
        """Per-point weights of point set ``name`` for the mean of its loss, or None.

        A :class:`~jno.resampling.RARD` buffer has empty slots: inside :meth:`losses` this
        is its live mask as ``0``/``1`` weights, so that the loss of the set is
        ``sum(w * r**2) / sum(w)``; for every other set it is None (all points count).
        """
        slot = self.point_plan.adaptive_slots.get(name)
        weights = getattr(None if slot is None else self.component(slot), "weights", None)
        return weights() if callable(weights) else None

    # ---------------------------------------------------------------- points
    def fixed_points(self) -> dict[str, jax.Array]:
        """The point sets that stay the same every step, as the arrays trained on.

        Arrays given in ``points`` and point sets with ``resample=False`` (drawn once,
        from the seed), by name; resampled sets are not included.
        """
        return dict(self.point_plan.fixed())

    @property
    def sampling_key(self) -> jax.Array:
        """The PRNG key of this trainer's point sampling (from ``seed``)."""
        return self.point_plan.key

    def plot_points(self, name: str, path: str) -> Any:
        """A scatter of the points of set ``name`` as they are now (first two coordinates)
        into ``path``; for a residual-adaptive set (:mod:`jno.resampling`), where its
        points have moved to. Returns the path written.

        Train up to a step and call it to see the points at that step, e.g. gathered at
        a shock: ``trainer.fit(until=5000); trainer.plot_points("interior", "p.png")``.
        """
        return self.point_plan.plot(name, path, self.step)

    # ------------------------------------------------------ the compiled step
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
        return self.step_builder.check()

    def compile(self) -> CompiledStep:
        """The compiled step for the networks' current optimizers, built again only when
        they or the modules' structure changed (finding the loss names first)."""
        return self.step_builder.compile()

    def initial_state(self) -> StepState:
        """The step state of the modules as they are now, replicated over the mesh."""
        return self.step_builder.initial_state(self.step)

    def optimizer(self, tx: optax.GradientTransformation | None) -> OptimizerSpec | None:
        """One optimizer over the parameters of every network, in place of each one's
        own (``None`` returns to those); ``.scale(...)`` on the result sets its rate.

        A quasi-Newton ``tx`` then takes one line search and keeps one inverse Hessian
        over all the parameters: a field network and a module of unknown coefficients
        train as one problem. With each network's own optimizer, each line search moves
        one network with the others held.
        """
        return self.trained.set_joint(tx)

    def load_state(self, state: StepState) -> None:
        """Writes a step state back into the modules the user holds."""
        self.trained.store(state)

    # ------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """The run's hyper-parameters (JSON-serialisable), as written to TensorBoard."""
        return {
            "trainer": type(self).__name__,
            "seed": self.seed,
            "log_every": self.log_every,
            "on_nonfinite": self.on_nonfinite,
            "devices": int(self.mesh.shape["data"]),
            **self.trained.config(),
            "points": {name: describe_points(ps) for name, ps in self.points.items()},
        }

    def open_log(self) -> TensorBoardWriter | None:
        """A TensorBoard writer for one ``fit`` (:meth:`TensorBoardWriter.for_run`)."""
        if self.logdir is None:
            return None
        return TensorBoardWriter.for_run(self.logdir, self.step, self.config())

    def save_checkpoint(self, state: StepState) -> None:
        """Writes ``state`` as the checkpoint of the current step (with ``checkpoint_dir``)."""
        if self.checkpoints.enabled:
            self.checkpoints.save(
                self.step, state, seed=self.seed, term_names=self.term_names, history=self.history
            )

    def latest_checkpoint_step(self) -> int | None:
        """The step of the newest checkpoint in ``checkpoint_dir`` (None without one).

        Multi-phase scripts read it before :meth:`restore` to set the optimizer of the
        phase the checkpoint was written in (its state is restored into that optimizer).
        """
        return self.checkpoints.latest_step()

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
        self.compile()
        found = self.checkpoints.restore(
            self.initial_state, current_step=self.step, seed=self.seed,
            term_names=self.term_names, step=step, strict=strict,
        )  # fmt: skip
        if found is None:
            return None
        state, self.history = found
        self.step = int(state.step)
        self.load_state(state)
        return self.step

    # -------------------------------------------------------------- the loop
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
        steps, until = check_fit(steps, until)
        compiled = self.compile()
        with self.checkpoints.lock():
            self.restore()
            target = fit_target(steps, until, self.step)
            if target == self.step:  # nothing to do: no progress bar, no event file
                return self.history
            return FitLoop(self, compiled, target).run()
