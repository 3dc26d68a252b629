"""The loss-adaptive learning-rate schedules, :class:`DLRS` and :class:`ReduceOnPlateau`.

Both are defined in :mod:`jno.nnx.schedules` (the public home of every schedule, next
to the :class:`~jno.nnx.schedules.LearningRateSchedule` they subclass and whose
``dlrs`` / ``reduce_on_plateau`` factories build them); this module re-exports them so
that ``from jno.nnx.adaptive_schedules import DLRS`` keeps working.

Example:
    >>> from jno.nnx import adaptive_schedules, schedules
    >>> adaptive_schedules.DLRS is schedules.DLRS
    True
"""

from jno.nnx.schedules import DLRS, ReduceOnPlateau

__all__ = ["DLRS", "ReduceOnPlateau"]
