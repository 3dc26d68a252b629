"""The compiled training step: sample, losses, balancer, gradients, schedule, update.

:class:`CompiledStep` turns a trainer's static description (network graph definitions,
optimizer specs, loss-term names, point sets) into one ``jax.jit``-compiled function
that runs ``n`` steps in a ``fori_loop`` over a carry of plain pytrees (``nnx.State``
of parameters, optimizer states, schedule and balancer state, step counter). Nothing
in it calls back to Python: the host only decides how many steps to run per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jno.train.metrics import StepMetrics
from jno.train.optim import OptimizerSpec

__all__ = ["CompiledStep", "StepPlan"]

Carry = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """The static layout of a step: what is computed and logged under which names."""

    term_names: tuple[str, ...]
    tracker_names: tuple[str, ...]
    net_names: tuple[str, ...]
    point_names: tuple[str, ...]
    resampled: tuple[bool, ...]
    scaled: tuple[bool, ...]
    raise_on_nonfinite: bool

    @property
    def lr_tags(self) -> tuple[str, ...]:
        if len(self.net_names) == 1:
            return ("lr",) if self.scaled[0] else ()
        return tuple(f"lr/{n}" for n, s in zip(self.net_names, self.scaled) if s)

    def metrics(self) -> StepMetrics:
        return StepMetrics(
            mean_tags=["loss/total", *(f"loss/{t}" for t in self.term_names), "grad_norm"],
            last_tags=[
                *(f"weight/{t}" for t in self.term_names),
                *self.lr_tags,
                *(f"tracker/{t}" for t in self.tracker_names),
            ],
            sum_tags=["skipped_steps"],
        )


class CompiledStep:
    """Builds and runs the compiled multi-step function of a trainer.

    Args:
        plan: Names and flags of this step.
        graphdefs: ``nnx.GraphDef`` of each network module.
        specs: The optimizer spec of each network.
        schedule_graphdefs: ``nnx.GraphDef`` of each network's scale schedule (or None).
        balancer_graphdef: ``nnx.GraphDef`` of the balancer (or None for unit weights).
        terms_fn: ``(modules, batch) -> (losses, trackers)``: named scalar losses and
            tracked values of the networks (``Trainer._terms``).
        weigh_fn: ``(balancer, losses) -> (weights, trackers)``: the weight of each loss
            from the current loss vector (``Trainer._weigh``).
        point_sets: The point sets by name (``sample(key)`` is used for resampled ones).
        base_key: Raw uint32 PRNG key the per-step keys are folded from.
        mesh: Device mesh with a ``"data"`` axis.
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
        base_key: jax.Array,
        mesh: jax.sharding.Mesh,
    ):
        self.plan = plan
        self.graphdefs = tuple(graphdefs)
        self.specs = tuple(specs)
        self.schedule_graphdefs = tuple(schedule_graphdefs)
        self.balancer_graphdef = balancer_graphdef
        self.terms_fn = terms_fn
        self.weigh_fn = weigh_fn
        self.point_sets = dict(point_sets)
        self.base_key = base_key
        self.mesh = mesh
        self.metrics = plan.metrics()
        self._run = jax.jit(self._run_steps)

    # ----------------------------------------------------------------- sampling
    def data_sharding(self, n: int) -> NamedSharding:
        """Points are split over the ``data`` axis when they divide evenly, else replicated."""
        size = self.mesh.shape["data"]
        return NamedSharding(self.mesh, P("data") if n % size == 0 else P())

    def sample_batch(self, fixed: Mapping[str, jax.Array], step: jax.Array) -> dict[str, jax.Array]:
        key = jax.random.fold_in(jax.random.fold_in(self.base_key, 1), step)
        batch = {}
        for index, (name, resample) in enumerate(zip(self.plan.point_names, self.plan.resampled)):
            if resample:
                points = self.point_sets[name].sample(jax.random.fold_in(key, index))
                batch[name] = jax.lax.with_sharding_constraint(
                    points, self.data_sharding(points.shape[0])
                )
            else:
                batch[name] = fixed[name]
        return batch

    # --------------------------------------------------------------- one step
    def loss_vector(self, params: tuple, rest: tuple, batch: Mapping[str, jax.Array]):
        """Per-term losses (N,), plus trackers and the updated non-parameter state."""
        modules = [nnx.merge(gd, p, r) for gd, p, r in zip(self.graphdefs, params, rest)]
        losses, trackers = self.terms_fn(modules, batch)
        vector = jnp.stack([losses[name] for name in self.plan.term_names])
        new_rest = tuple(nnx.state(m, nnx.Not(nnx.Param)) for m in modules)
        return vector, (trackers, new_rest)

    def one_step(self, carry: Carry, fixed: Mapping[str, jax.Array]):
        step = carry["step"]
        batch = self.sample_batch(fixed, step)
        # The weights are constants of the gradient, so the gradient of sum(w * L) is the
        # vector-Jacobian product of L with cotangent w: one forward and one backward
        # pass whatever the number of terms, and the balancer runs outside the trace.
        losses, vjp_fn, (trackers, new_rest) = jax.vjp(
            lambda p: self.loss_vector(p, carry["rest"], batch), carry["params"], has_aux=True
        )
        balancer = None
        if self.balancer_graphdef is not None:
            balancer = nnx.merge(self.balancer_graphdef, carry["balancer"])
        weights, weight_trackers = self.weigh_fn(balancer, jax.lax.stop_gradient(losses))
        trackers = {**trackers, **weight_trackers}
        new_balancer = carry["balancer"] if balancer is None else nnx.state(balancer)
        weights = jax.lax.stop_gradient(weights).astype(losses.dtype)
        (grads,) = vjp_fn(weights)
        total = jnp.sum(weights * losses)
        grad_norm = optax.tree.norm(grads)
        term_ok = jnp.isfinite(losses)
        finite = jnp.all(term_ok) & jnp.isfinite(grad_norm) & jnp.isfinite(total)

        new_params, new_opt, new_sched, rates = [], [], [], []
        for i, spec in enumerate(self.specs):
            rate = None
            sched_state = carry["schedules"][i]
            if self.schedule_graphdefs[i] is not None:
                schedule = nnx.merge(self.schedule_graphdefs[i], sched_state)
                rate = jnp.asarray(schedule(step, losses), jnp.float32)
                sched_state = nnx.state(schedule)
                rates.append(rate)
            extra = {}
            if spec.uses_extra_args:
                extra = {
                    "value": total,
                    "grad": grads[i],
                    "value_fn": self._value_fn(carry, batch, weights, i),
                }
            updates, opt_state = spec.tx.update(
                grads[i], carry["opt"][i], carry["params"][i], **extra
            )
            if rate is not None:
                updates = jax.tree.map(lambda u, r=rate: (r * u).astype(u.dtype), updates)
            new_params.append(optax.apply_updates(carry["params"][i], updates))
            new_opt.append(opt_state)
            new_sched.append(sched_state)

        rate_ok = jnp.all(jnp.isfinite(jnp.stack(rates))) if rates else jnp.asarray(True)
        finite = finite & rate_ok
        apply = finite & ~carry["diverged"]
        proposed = {
            "params": tuple(new_params),
            "rest": new_rest,
            "opt": tuple(new_opt),
            "schedules": tuple(new_sched),
            "balancer": new_balancer,
        }
        kept = {k: carry[k] for k in proposed}
        new_carry = jax.tree.map(lambda a, b: jnp.where(apply, a, b), proposed, kept)
        first_bad = ~finite & ~carry["diverged"]
        if self.plan.raise_on_nonfinite:
            new_carry["diverged"] = carry["diverged"] | ~finite
            new_carry["step"] = jnp.where(apply, step + 1, step)
        else:
            new_carry["diverged"] = carry["diverged"]
            new_carry["step"] = step + 1
        new_carry["bad_step"] = jnp.where(first_bad, step, carry["bad_step"])
        bad = jnp.concatenate([~term_ok, (~jnp.isfinite(grad_norm))[None], (~rate_ok)[None]])
        new_carry["bad_terms"] = jnp.where(first_bad, bad, carry["bad_terms"])

        values = {"loss/total": total, "grad_norm": grad_norm}
        for j, name in enumerate(self.plan.term_names):
            values[f"loss/{name}"] = losses[j]
            values[f"weight/{name}"] = weights[j]
        values.update(zip(self.plan.lr_tags, rates))
        for name in self.plan.tracker_names:
            values[f"tracker/{name}"] = trackers[name]
        values["skipped_steps"] = jnp.where(carry["diverged"], 0.0, (~finite).astype(jnp.float32))
        return new_carry, values, apply

    def _value_fn(self, carry: Carry, batch, weights: jax.Array, index: int):
        """Weighted total loss as a function of network ``index``'s parameters."""

        def value_fn(params_i):
            params = list(carry["params"])
            params[index] = params_i
            vector, _ = self.loss_vector(tuple(params), carry["rest"], batch)
            return jnp.sum(weights * vector)

        return value_fn

    # ------------------------------------------------------------ fused steps
    def _run_steps(self, carry: Carry, accumulated: Any, fixed: Mapping[str, jax.Array], n):
        def body(_, state):
            carry, accumulated = state
            carry, values, mask = self.one_step(carry, fixed)
            return carry, accumulated.merge(self.metrics.single(values, mask))

        return jax.lax.fori_loop(0, n, body, (carry, accumulated))

    def run(self, carry: Carry, accumulated: Any, fixed: Mapping[str, jax.Array], n: int):
        """Runs ``n`` steps in one dispatch; returns the new carry and accumulator."""
        return self._run(carry, accumulated, fixed, jnp.asarray(n, jnp.int32))
