"""Quasi-Newton steps that start where the last line search stopped.

A :class:`~jno.optim.QuasiNewton` optimizer keeps the value, gradient and auxiliary
output of the point its line search accepted. When the objective does not change
between steps, the next step starts from them instead of evaluating the losses again:
one value and gradient per accepted iteration, as ``optax.value_and_grad_from_state``
gives a hand-written loop. :class:`EvaluationReuse` is the part of
:class:`~jno.train.step.CompiledStep` that decides when that holds and builds the
optimizer state and the value function for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jno.optim import QuasiNewton, QuasiNewtonState
from jno.train.optim import OptimizerSpec
from jno.train.state import StepState
from jno.train.step_plan import StepPlan
from jno.train.trained import full_params, group_params

__all__ = ["Evaluation", "EvaluationReuse"]


class Evaluation(NamedTuple):
    """What a quasi-Newton line search keeps of its accepted point besides the value
    and gradient, so that the next step starts from it without evaluating again."""

    losses: jax.Array
    trackers: dict[str, jax.Array]
    weights: jax.Array


class EvaluationReuse:
    """The evaluation reuse of a compiled step (a part of
    :class:`~jno.train.step.CompiledStep`).

    Args:
        specs: The spec of each optimizer.
        groups: The networks each optimizer updates.
        plan: The step's :class:`~jno.train.step_plan.StepPlan`.
        component_names: The slots of the step's stateful components.
        loss_vector: ``(params, rest, components, batch) -> (losses, (trackers, ...))``.
        batch_of: ``(carry, fixed) -> batch``: the points of the step ``carry`` is at.
    """

    def __init__(
        self,
        specs: Sequence[OptimizerSpec],
        groups: Sequence[tuple[int, ...]],
        plan: StepPlan,
        component_names: Sequence[str],
        loss_vector: Callable[..., Any],
        batch_of: Callable[[StepState, Mapping[str, jax.Array]], dict[str, jax.Array]],
    ):
        self.specs = tuple(specs)
        self.groups = tuple(groups)
        self.plan = plan
        self.component_names = tuple(component_names)
        self.loss_vector = loss_vector
        self.batch_of = batch_of

    def reuses_evaluations(self, index: int) -> bool:
        """Whether optimizer ``index`` keeps the line search's last evaluation for the
        next step: a :class:`~jno.optim.QuasiNewton` optimizer, the only one (of the
        only network, or joint over all), on an objective that changes only when
        adaptive points are redrawn (no point set redrawn every step, no component but
        residual-adaptive samplers)."""
        adaptive_slots = {slot for _, slot, _ in self.plan.adaptive}
        return (
            isinstance(self.specs[index].tx, QuasiNewton)
            and len(self.specs) == 1
            and not any(self.plan.resampled)
            and set(self.component_names) <= adaptive_slots
        )

    def init_optimizer(self, index: int, carry: StepState, fixed: Mapping[str, jax.Array]):
        """The initial optax state of network ``index`` (``carry.opt`` is not read)."""
        tx, params = self.specs[index].tx, group_params(carry.params, self.groups[index])
        if not self.reuses_evaluations(index):
            return tx.init(params)

        def evaluation():
            batch = self.batch_of(carry, fixed)
            losses, (trackers, _, _) = self.loss_vector(
                carry.params, carry.rest, carry.components, batch
            )
            return Evaluation(losses, trackers, losses)

        like = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(evaluation))
        return tx.init(params, aux_like=like)

    def cached(self, carry: StepState, redrawn: jax.Array):
        """``(optimizer state, usable)`` when the step may start from the last line
        search's evaluation, or None when this trainer never reuses one."""
        if not self.reuses_evaluations(0):
            return None
        state = carry.opt[0]
        if not isinstance(state, QuasiNewtonState):
            raise TypeError(f"expected a QuasiNewtonState, got {type(state).__name__}")
        return state, jnp.isfinite(state.value) & ~redrawn

    def value_fn(self, carry: StepState, batch, weights: jax.Array):
        """``params -> (weighted total, Evaluation)`` of the only optimizer."""

        def value_fn(group):
            params = full_params(carry.params, self.groups[0], group)
            vector, (trackers, _, _) = self.loss_vector(params, carry.rest, carry.components, batch)
            return jnp.sum(weights * vector), Evaluation(vector, trackers, weights)

        return value_fn
