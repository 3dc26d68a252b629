"""The compiled training step: sample, losses, balancer, gradients, schedule, update.

:class:`CompiledStep` turns a trainer's static description (network graph definitions,
optimizer specs, loss-term names, point sets) into one ``jax.jit``-compiled function
that runs ``n`` steps in a ``fori_loop`` over a carry of plain pytrees (``nnx.State``
of parameters, optimizer states, schedule and balancer state, step counter). Nothing
in it calls back to Python: the host only decides how many steps to run per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jno.nnx._dtype import default_float
from jno.optim import LeastSquares
from jno.train.components import ComponentSlots
from jno.train.evaluations import Evaluation, EvaluationReuse
from jno.train.mesh import data_sharding
from jno.train.optim import OptimizerSpec
from jno.train.state import StepState
from jno.train.step_plan import StepPlan
from jno.train.term_gradients import TermSources, stacked_term_gradients
from jno.train.term_residuals import TermResiduals
from jno.train.trained import full_params, group_params

__all__ = ["CompiledStep"]


class CompiledStep:
    """Builds and runs the compiled multi-step function of a trainer.

    Args:
        plan: Names and flags of this step.
        graphdefs: ``nnx.GraphDef`` of each network module.
        specs: The spec of each optimizer.
        schedule_graphdefs: ``nnx.GraphDef`` of each optimizer's scale schedule (or None).
        balancer_graphdef: ``nnx.GraphDef`` of the balancer (or None for unit weights).
        terms_fn: ``(modules, batch, components) -> (losses, trackers)``: named scalar
            losses and tracked values of the networks, with the live stateful
            components by slot name (``Trainer._terms``).
        weigh_fn: ``(balancer, losses, sources) -> (weights, trackers)``: the weight of
            each loss from the current loss vector and the per-term gradients or NTK
            diagonals in ``sources`` (``Trainer._weigh``).
        point_sets: The point sets by name (``sample(key)`` is used for resampled ones).
        mesh: Device mesh with a ``"data"`` axis (None: no sharding constraint, for
            members of an ensemble, which are sharded on their member axis instead).
        residuals_fn: ``(modules, batch) -> {term: residual}`` (``Trainer._residuals``),
            used for NTK diagonals.
        components: The trainer's stateful loss components.
        groups: The networks each optimizer updates (default: one optimizer each).
    """

    def __init__(
        self,
        plan: StepPlan,
        graphdefs: Sequence[Any],
        specs: Sequence[OptimizerSpec],
        schedule_graphdefs: Sequence[Any | None],
        balancer_graphdef: Any | None,
        terms_fn: Callable[..., Any],
        weigh_fn: Callable[..., Any],
        point_sets: Mapping[str, Any],
        mesh: jax.sharding.Mesh | None,
        residuals_fn: Callable[..., Any] | None = None,
        components: ComponentSlots | None = None,
        groups: Sequence[Sequence[int]] | None = None,
    ):
        self.plan = plan
        self.graphdefs = tuple(graphdefs)
        self.specs = tuple(specs)
        self.groups = tuple(
            tuple(g) for g in (groups or [(i,) for i in range(len(self.graphdefs))])
        )
        self.schedule_graphdefs = tuple(schedule_graphdefs)
        self.balancer_graphdef = balancer_graphdef
        self.terms_fn = terms_fn
        self.weigh_fn = weigh_fn
        self.point_sets = dict(point_sets)
        self.mesh = mesh
        self.residuals_fn = residuals_fn
        self.components = ComponentSlots({}) if components is None else components
        self.component_graphdefs = self.components.graphdefs()
        self.metrics = plan.metrics()
        self.term_residuals = TermResiduals(plan, self.graphdefs, residuals_fn)
        self.evaluations = EvaluationReuse(
            self.specs, self.groups, plan, self.components.names, self.loss_vector, self.batch_of
        )
        self._run = jax.jit(self.run_steps)

    def init_optimizer(self, index: int, carry: StepState, fixed: Mapping[str, jax.Array]):
        """The initial optax state of optimizer ``index``; a Gauss-Newton one first
        checks that the losses are the mean squares of the residuals."""
        if isinstance(self.specs[index].tx, LeastSquares):
            batch = self.batch_of(carry, fixed)
            losses, _ = self.loss_vector(carry.params, carry.rest, carry.components, batch)
            self.term_residuals.check(losses, carry.params, carry.rest, batch, "this trainer")
        return self.evaluations.init_optimizer(index, carry, fixed)

    # ----------------------------------------------------------------- sampling
    def sample_batch(
        self, fixed: Mapping[str, jax.Array], step: jax.Array, base_key: jax.Array
    ) -> dict[str, jax.Array]:
        # The key is an input of the compiled function, not a constant of it: trainers
        # that differ only in their seed share one compiled program.
        key = jax.random.fold_in(jax.random.fold_in(base_key, 1), step)
        batch = {}
        for index, (name, resample) in enumerate(zip(self.plan.point_names, self.plan.resampled)):
            if resample:
                points = self.point_sets[name].sample(jax.random.fold_in(key, index))
                batch[name] = self._constrain(points)
            else:
                batch[name] = fixed[name]
        return batch

    def _constrain(self, points: jax.Array) -> jax.Array:
        """Points split over the mesh's ``data`` axis (no constraint without a mesh)."""
        if self.mesh is None:
            return points
        return jax.lax.with_sharding_constraint(points, data_sharding(self.mesh, points.shape[0]))

    def batch_of(self, carry: StepState, fixed: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The points of the step ``carry`` is at, residual-adaptive sets included."""
        batch = self.sample_batch(fixed, carry.step, carry.key)
        self.adaptive_points(carry.components, batch)
        return batch

    # --------------------------------------------------------------- one step
    def loss_vector(
        self, params: tuple, rest: tuple, components: Mapping[str, Any], batch: Mapping
    ):
        """Per-term losses (N,), plus trackers and the updated non-parameter state."""
        modules = [nnx.merge(gd, p, r) for gd, p, r in zip(self.graphdefs, params, rest)]
        live = self.components.live(self.component_graphdefs, components)
        losses, trackers = self.terms_fn(modules, batch, live)
        vector = jnp.stack([losses[name] for name in self.plan.term_names])
        new_rest = tuple(nnx.state(m, nnx.Not(nnx.Param)) for m in modules)
        new_components = {name: nnx.state(m) for name, m in live.items()}
        trackers = {**trackers, **self.components.trackers(live)}
        return vector, (trackers, new_rest, new_components)

    def ntk_diagonals(self, params: tuple, rest: tuple, batch) -> list[jax.Array]:
        """Per-point NTK diagonal of every term's residual (``Trainer.residuals``)."""
        return self.term_residuals.ntk_diagonals(params, rest, batch)

    def term_sources(self, carry: StepState, batch) -> tuple[TermSources, jax.Array]:
        """The per-term gradients / NTK diagonals the balancers need, computed only on
        steps where one of them is due; also whether this step is such a step."""
        step, needs = carry.step, self.plan.needs
        if not needs.any:
            return TermSources(step), jnp.asarray(False)
        due = jnp.any(jnp.stack([step % every == 0 for every in needs.update_everies]))
        n = len(self.plan.term_names)
        grads = ntk = None
        if needs.gradients:
            size = sum(leaf.size for leaf in jax.tree.leaves(carry.params))

            def term_gradients():
                # A fresh forward pass inside the branch: handing the step's vjp residuals
                # to the cond would make every step carry them into it, while the
                # recomputation is paid on update steps only.
                def losses_of(params):
                    return self.loss_vector(params, carry.rest, carry.components, batch)[0]

                _, vjp = jax.vjp(losses_of, carry.params)
                return stacked_term_gradients(vjp, n)

            grads = jax.lax.cond(due, term_gradients, lambda: jnp.zeros((n, size), default_float()))
        if needs.ntk:

            def compute():
                return self.ntk_diagonals(carry.params, carry.rest, batch)

            shapes = jax.eval_shape(compute)
            ntk = jax.lax.cond(due, compute, lambda: [jnp.zeros(s.shape, s.dtype) for s in shapes])
        return TermSources(step, grads=grads, ntk=ntk), due

    def adapt_points(
        self, carry: StepState, batch: dict[str, jax.Array]
    ) -> tuple[StepState, jax.Array]:
        """Redraws the residual-adaptive point sets that are due, from the residual of
        their term at the current parameters (``jax.lax.cond``: only due steps pay), and
        puts their points into ``batch``; also whether any set was redrawn."""
        redrawn = jnp.asarray(False)
        if not self.plan.adaptive:
            return carry, redrawn
        components = dict(carry.components)
        names = self.components.names
        for point_name, slot, term in self.plan.adaptive:
            graphdef = self.component_graphdefs[names.index(slot)]
            every = self.components.modules[slot].every

            def redraw(state, point_name=point_name, term=term, graphdef=graphdef):
                sampler = nnx.merge(graphdef, jax.tree.map(lambda a: a, state))
                modules = [
                    nnx.merge(g, p, r) for g, p, r in zip(self.graphdefs, carry.params, carry.rest)
                ]

                def residual(pool):
                    return self.residuals_fn(modules, {**batch, point_name: pool})[term]

                sampler.redraw(residual)
                return nnx.state(sampler)

            due = (carry.step > 0) & (carry.step % every == 0)
            redrawn = redrawn | due
            components[slot] = jax.lax.cond(due, redraw, lambda s: s, components[slot])
            self.adaptive_points({slot: components[slot]}, batch, only=point_name)
        return carry.replace(components=components), redrawn

    def adaptive_points(
        self, components: Mapping[str, Any], batch: dict[str, jax.Array], only: str | None = None
    ) -> None:
        """Puts the current points of the residual-adaptive sets (or set ``only``) into
        ``batch``."""
        names = self.components.names
        for point_name, slot, _ in self.plan.adaptive:
            if only is not None and point_name != only:
                continue
            graphdef = self.component_graphdefs[names.index(slot)]
            points = nnx.merge(graphdef, components[slot]).points[...]
            batch[point_name] = self._constrain(points)

    def one_step(self, carry: StepState, fixed: Mapping[str, jax.Array]):
        step = carry.step
        batch = self.sample_batch(fixed, step, carry.key)
        carry, redrawn = self.adapt_points(carry, batch)

        def losses_of(params):
            return self.loss_vector(params, carry.rest, carry.components, batch)

        cache = self.evaluations.cached(carry, redrawn)
        if cache is None:
            # The weights are constants of the gradient, so the gradient of sum(w * L) is
            # the vector-Jacobian product of L with cotangent w: one forward and one
            # backward pass whatever the number of terms; the balancer runs outside.
            losses, vjp_fn, (trackers, new_rest, new_components) = jax.vjp(
                losses_of, carry.params, has_aux=True
            )
        else:
            # A quasi-Newton step starts where the last line search stopped: its value,
            # gradient and losses are in the optimizer state (a forward pass otherwise).
            state, valid = cache
            losses, (trackers, new_rest, new_components) = jax.lax.cond(
                valid,
                lambda: (state.aux.losses, (state.aux.trackers, carry.rest, carry.components)),
                lambda: losses_of(carry.params),
            )
        balancer = None
        if self.balancer_graphdef is not None:
            balancer = nnx.merge(self.balancer_graphdef, carry.balancer)
        sources, due = self.term_sources(carry, batch)
        weights, weight_trackers = self.weigh_fn(balancer, jax.lax.stop_gradient(losses), sources)
        trackers = {**trackers, **weight_trackers}
        new_balancer = carry.balancer if balancer is None else nnx.state(balancer)
        weights = jax.lax.stop_gradient(weights).astype(losses.dtype)
        if cache is None:
            (grads,) = vjp_fn(weights)
        else:
            same = valid & jnp.all(weights == state.aux.weights)
            grads = jax.lax.cond(
                same,
                lambda: full_params(carry.params, self.groups[0], state.grad),
                lambda: jax.vjp(lambda p: losses_of(p)[0], carry.params)[1](weights)[0],
            )
        total = jnp.sum(weights * losses)
        grad_norm = optax.tree.norm(grads)
        term_ok = jnp.isfinite(losses)
        finite = jnp.all(term_ok) & jnp.isfinite(grad_norm) & jnp.isfinite(total)

        new_opt, new_sched, rates = [], [], []
        new_params = list(carry.params)
        for i, (spec, members) in enumerate(zip(self.specs, self.groups)):
            params, grad = group_params(carry.params, members), group_params(grads, members)
            rate = None
            sched_state = carry.schedules[i]
            if self.schedule_graphdefs[i] is not None:
                schedule = nnx.merge(self.schedule_graphdefs[i], sched_state)
                rate = jnp.asarray(schedule(step, losses), default_float())
                sched_state = nnx.state(schedule)
                rates.append(rate)
            extra = {}
            if isinstance(spec.tx, LeastSquares):
                extra = self.term_residuals.least_squares_args(
                    carry.params, carry.rest, batch, weights, members
                )
            elif spec.uses_extra_args:
                extra = {
                    "value": total,
                    "grad": grad,
                    "value_fn": self._value_fn(carry, batch, weights, members),
                }
                if cache is not None:
                    extra["value_fn"] = self.evaluations.value_fn(carry, batch, weights)
                    extra["aux"] = Evaluation(losses, trackers, weights)
            updates, opt_state = spec.tx.update(grad, carry.opt[i], params, **extra)
            if rate is not None:
                updates = jax.tree.map(lambda u, r=rate: (r * u).astype(u.dtype), updates)
            new_params = list(
                full_params(new_params, members, optax.apply_updates(params, updates))
            )
            new_opt.append(opt_state)
            new_sched.append(sched_state)

        rate_ok = jnp.all(jnp.isfinite(jnp.stack(rates))) if rates else jnp.asarray(True)
        finite = finite & rate_ok
        apply = finite & ~carry.diverged
        term_norms = carry.term_grad_norms
        if sources.grads is not None:
            # Between updates the norms of the last update are carried (and logged).
            term_norms = jnp.where(due, jnp.linalg.norm(sources.grads, axis=1), term_norms)
        proposed = carry.replace(
            params=tuple(new_params),
            rest=new_rest,
            opt=tuple(new_opt),
            schedules=tuple(new_sched),
            balancer=new_balancer,
            components=new_components,
            term_grad_norms=term_norms,
        )
        # A step that is not applied leaves every learned or adaptive state as it was.
        new_carry = jax.tree.map(lambda a, b: jnp.where(apply, a, b), proposed, carry)
        first_bad = ~finite & ~carry.diverged
        if self.plan.raise_on_nonfinite:
            diverged, next_step = carry.diverged | ~finite, jnp.where(apply, step + 1, step)
        else:
            diverged, next_step = carry.diverged, step + 1
        if self.plan.uniform_step:
            next_step = step + 1
        bad = jnp.concatenate([~term_ok, (~jnp.isfinite(grad_norm))[None], (~rate_ok)[None]])
        new_carry = new_carry.replace(
            step=next_step,
            diverged=diverged,
            bad_step=jnp.where(first_bad, step, carry.bad_step),
            bad_terms=jnp.where(first_bad, bad, carry.bad_terms),
        )

        values = {"loss/total": total, "grad_norm": grad_norm}
        for j, name in enumerate(self.plan.term_names):
            values[f"loss/{name}"] = losses[j]
            values[f"weight/{name}"] = weights[j]
        values.update(zip(self.plan.lr_tags, rates))
        if sources.grads is not None:
            for j, name in enumerate(self.plan.term_names):
                values[f"grad_norm/{name}"] = term_norms[j]
        for name in self.plan.tracker_names:
            values[f"tracker/{name}"] = trackers[name]
        skipped = (~finite).astype(default_float())
        values["skipped_steps"] = jnp.where(carry.diverged, 0.0, skipped)
        return new_carry, values, apply

    def _value_fn(self, carry: StepState, batch, weights: jax.Array, members: tuple[int, ...]):
        """Weighted total loss as a function of the parameters of the networks
        ``members`` (one optimizer's), the others held."""

        def value_fn(group):
            params = full_params(carry.params, members, group)
            vector, _ = self.loss_vector(params, carry.rest, carry.components, batch)
            return jnp.sum(weights * vector)

        return value_fn

    # ------------------------------------------------------------ fused steps
    def run_steps(self, carry: StepState, accumulated: Any, fixed: Mapping[str, jax.Array], n):
        def body(_, state):
            carry, accumulated = state
            carry, values, mask = self.one_step(carry, fixed)
            return carry, accumulated.merge(self.metrics.single(values, mask))

        return jax.lax.fori_loop(0, n, body, (carry, accumulated))

    def run(self, carry: StepState, accumulated: Any, fixed: Mapping[str, jax.Array], n: int):
        """Runs ``n`` steps in one dispatch; returns the new carry and accumulator."""
        return self._run(carry, accumulated, fixed, jnp.asarray(n, jnp.int32))
