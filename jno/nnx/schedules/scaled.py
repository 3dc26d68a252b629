"""``ScaledSchedule``: a schedule times a scale held in state.

The scale is a :class:`~jno.nnx.state.ScheduleState` variable, not a constant of the
compiled program: members of an ensemble (:func:`jno.ensemble`) may each have their own
scale, which makes a vectorised learning-rate sweep, and a checkpoint keeps it.

Example:
    >>> from jno.nnx.schedules import LearningRateSchedule
    >>> s = ScaledSchedule(LearningRateSchedule.exponential(1e-3, 0.5, 10), scale=2.0)
    >>> round(float(s(10)), 6)  # 2 x 1e-3 x 0.5
    0.001
    >>> s.scale[...] = 0.5
    >>> round(float(s(10)), 7)
    0.00025
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_real
from jno.nnx._dtype import default_float
from jno.nnx.schedules.schedule import LearningRateSchedule, as_schedule
from jno.nnx.state import ScheduleState

__all__ = ["ScaledSchedule"]


class ScaledSchedule(LearningRateSchedule):
    """``scale * schedule(step, losses)``, with ``scale`` a state variable.

    Args:
        schedule: anything :func:`~jno.nnx.schedules.as_schedule` accepts (a loss-adaptive
            schedule keeps its own state inside this one).
        scale: the initial factor, finite and > 0.

    Attributes:
        scale: ``ScheduleState`` scalar (default float dtype); set it to change the factor.
        schedule: the scaled schedule.

    Raises:
        ValueError: ``scale`` is not a finite number > 0.
    """

    stateful = True  # it owns state: one instance per network

    def __init__(self, schedule: Any, scale: float = 1.0) -> None:
        inner = as_schedule(schedule)
        value = check_real("scale", scale, minimum=0.0, min_open=True)
        super().__init__(value)
        self.schedule = inner
        self.scale = ScheduleState(jnp.asarray(value, default_float()))
        self._kind, self._params = "scaled", (("scale", value),)

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """``scale * schedule(step, losses)`` (default float scalar)."""
        return self.scale[...] * self.schedule(step, losses)

    def config(self) -> dict[str, Any]:
        """Kind, the initial scale and the scaled schedule's configuration."""
        scale = dict(self._params)["scale"]
        return {"kind": "scaled", "scale": scale, "schedule": self.schedule.config()}
