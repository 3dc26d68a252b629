"""Learning-rate schedules: pure factories and loss-adaptive schedules with device state.

Modules:

- :mod:`~jno.nnx.schedules.schedule`: :class:`LearningRateSchedule` (``lrs(fn)`` and the
  factories ``constant``, ``exponential``, ``cosine``, ``warmup_cosine``,
  ``piecewise_constant``, ``dlrs``, ``reduce_on_plateau``) and :func:`as_schedule`;
- :mod:`~jno.nnx.schedules.adaptive`: the loss-adaptive :class:`DLRS` and
  :class:`ReduceOnPlateau`, whose state lives in ``ScheduleState`` variables;
- :mod:`~jno.nnx.schedules.scaled`: :class:`ScaledSchedule`, a schedule times a factor
  held in state.

Example:
    >>> from jno.nnx.schedules import LearningRateSchedule as lrs
    >>> s = lrs.piecewise_constant(boundaries=[10], values=[1e-3, 1e-4])
    >>> round(float(s(5)), 6), round(float(s(10)), 6)
    (0.001, 0.0001)
"""

from jno.nnx.schedules.adaptive import DLRS, ReduceOnPlateau
from jno.nnx.schedules.scaled import ScaledSchedule
from jno.nnx.schedules.schedule import LearningRateSchedule, as_schedule

__all__ = ["DLRS", "LearningRateSchedule", "ReduceOnPlateau", "ScaledSchedule", "as_schedule"]
