"""Marker variable types for adaptive state that lives on the device.

Adaptive learning-rate schedules and loss balancers keep everything they learn
(loss windows, running statistics, RNG keys, EMA weights) in these variables.
They are ordinary :class:`flax.nnx.Variable` subclasses, so they travel with
``nnx.split``/``nnx.merge``, are updated in place inside ``nnx.jit``, are saved
with the rest of a model, and can be filtered by type. Because they are not
:class:`flax.nnx.Param`, an ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` never
touches them.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno.nnx.state import BalancerState
    >>> class Counter(nnx.Module):
    ...     def __init__(self):
    ...         self.count = BalancerState(jnp.zeros((), jnp.int32))
    >>> c = Counter()
    >>> _, state = nnx.split(c, BalancerState)
    >>> int(state["count"][...])
    0
"""

from __future__ import annotations

from flax import nnx

__all__ = ["BalancerState", "PointState", "ScheduleState"]


class ScheduleState(nnx.Variable):
    """State of a loss-adaptive learning-rate schedule (window, count, current rate)."""


class BalancerState(nnx.Variable):
    """State of an adaptive loss balancer (previous losses, EMA weights, RNG key, ...)."""


class PointState(nnx.Variable):
    """State of a residual-adaptive point set (its points, RNG key, statistics)."""
