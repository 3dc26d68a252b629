"""The compiled step of a trainer, built from its parts and its hooks.

A :class:`StepBuilder` is one part of a :class:`~jno.train.trainer.Trainer`. It
evaluates the hooks once abstractly to find the loss and tracker names
(:meth:`StepBuilder.check`), builds the :class:`~jno.train.step.CompiledStep` for the
networks' current optimizers, and builds it again only when they or the modules'
structure changed (:meth:`StepBuilder.compile`).

Example:
    >>> import jax.numpy as jnp, optax
    >>> from flax import nnx
    >>> import jno
    >>> class Fit(jno.Trainer):
    ...     def losses(self, net, batch):
    ...         return {"data": jnp.mean(net(batch["x"]) ** 2)}
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> _ = net.optimizer(optax.adam(1e-2))
    >>> builder = Fit(net, points={"x": jnp.ones((4, 1))}, progress=False).step_builder
    >>> builder.compile() is builder.compile(), builder.compile().plan.term_names
    (True, ('data',))
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from jno.train.hooks import TrainerHooks
from jno.train.mesh import replicated
from jno.train.point_plan import PointPlan
from jno.train.processes import global_array
from jno.train.state import StepState
from jno.train.step import CompiledStep
from jno.train.step_plan import StepPlan
from jno.train.term_book import TermBook
from jno.train.term_gradients import BalancerNeeds, TermSources
from jno.train.trained import Trained
from jno.train.validation import net_name

__all__ = ["StepBuilder"]


class StepBuilder:
    """Finds the names of a trainer's losses and builds its compiled step.

    Args:
        hooks: The trainer whose hooks (``losses``, ``weigh``, ``residuals``) the step
            runs.
        trained: What it trains.
        point_plan: Its point sets.
        term_book: Its term bookkeeping.
        mesh: The device mesh.
        raise_on_nonfinite: A non-finite step stops the training (else it is skipped).
    """

    def __init__(
        self,
        hooks: TrainerHooks,
        trained: Trained,
        point_plan: PointPlan,
        term_book: TermBook,
        mesh: jax.sharding.Mesh,
        raise_on_nonfinite: bool,
    ):
        self.hooks = hooks
        self.trained = trained
        self.point_plan = point_plan
        self.term_book = term_book
        self.mesh = mesh
        self.raise_on_nonfinite = raise_on_nonfinite
        self._compiled: CompiledStep | None = None
        self._key: tuple | None = None

    def check(self) -> tuple[str, ...]:
        """Finds the loss and tracker names by one abstract evaluation of the hooks
        (nothing is compiled); returns the loss names."""
        hooks, book, components = self.hooks, self.term_book, self.trained.components
        balancer = self.trained.balancer
        graphdefs, params, rest = self.trained.split()
        bal_gd, bal_state = (None, None) if balancer is None else nnx.split(balancer)
        comp_gds, comp_states = components.graphdefs(), components.states()

        def evaluate(params, rest, batch, bal_state, comp_states):
            modules = [nnx.merge(gd, p, r) for gd, p, r in zip(graphdefs, params, rest)]
            live = components.live(comp_gds, comp_states)
            losses, trackers = book.losses(hooks.losses, modules, batch, live)
            trackers = {**trackers, **components.trackers(live)}
            # The values weigh tracks are logged too: find their names.
            vector = jnp.stack(list(losses.values()))
            bal = None if bal_gd is None else nnx.merge(bal_gd, bal_state)
            sources = TermSources.stand_in(vector.shape[0])
            return losses, trackers, book.weigh(hooks.weigh, bal, vector, sources)[1]

        batch = self.point_plan.stand_in()
        book.discover(
            evaluate, params, rest, batch, bal_state, comp_states,
            diagnose=lambda: self.point_plan.dimension_mismatch(self.trained.nets, batch),
        )  # fmt: skip
        names = book.term_names
        expected = getattr(balancer, "num_losses", None)
        if expected is not None and expected != len(names):
            raise ValueError(
                f"balancer num_losses={expected} but losses() returns "
                f"{len(names)} terms {list(names)}"
            )
        return names

    def compile(self) -> CompiledStep:
        """The compiled step for the networks' current optimizers (built again only when
        they or the modules' structure changed)."""
        self.trained.refresh()
        key = self.trained.compile_key()
        if self._compiled is None or key != self._key:
            self._compiled = self._build(self.check())
            self._key = key
        return self._compiled

    def _build(self, names: tuple[str, ...]) -> CompiledStep:
        hooks, book, trained = self.hooks, self.term_book, self.trained
        nets = trained.nets
        plan = StepPlan(
            term_names=names,
            tracker_names=book.tracker_names,
            net_names=tuple(
                "+".join(net_name(nets[i], nets, quote=False) for i in g) for g in trained.groups()
            ),
            point_names=tuple(self.point_plan.sets),
            resampled=self.point_plan.resampled,
            scaled=tuple(s is not None for s in trained.schedules()),
            raise_on_nonfinite=self.raise_on_nonfinite,
            needs=BalancerNeeds.of(trained.balancer),
            pointwise_residuals=bool(hooks.pointwise_residuals),
            adaptive=self.point_plan.adaptive_plan(
                names, hooks.defines_residuals(), type(hooks).__name__
            ),
        )
        return CompiledStep(
            plan,
            trained.split()[0],
            trained.specs,
            trained.schedule_graphdefs(),
            trained.balancer_graphdef(),
            functools.partial(book.losses, hooks.losses),
            functools.partial(book.weigh, hooks.weigh),
            self.point_plan.sets,
            self.mesh,
            residuals_fn=functools.partial(book.residuals, hooks.residuals),
            components=trained.components,
            groups=trained.groups(),
        )

    def initial_state(self, step: int) -> StepState:
        """The step state of the modules as they are now at ``step``, replicated over
        the mesh (optimizer states made where a network has none yet)."""
        compiled = self.compile()
        fixed = self.point_plan.fixed()
        carry = self.trained.initial(
            step,
            self.point_plan.key,
            len(compiled.plan.term_names),
            lambda i, carry: compiled.init_optimizer(i, carry, fixed),
        )
        return global_array(carry, replicated(self.mesh))
