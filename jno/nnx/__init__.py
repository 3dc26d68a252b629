"""Device-state building blocks: schedules, balancers, loss normalisation, networks.

Every public class here is a :class:`flax.nnx.Module` whose adaptive state lives in
:mod:`jno.nnx.state` variables.
"""

from jno.nnx.schedules import DLRS, LearningRateSchedule, ReduceOnPlateau
from jno.nnx.state import BalancerState, ScheduleState

__all__ = [
    "BalancerState",
    "DLRS",
    "LearningRateSchedule",
    "ReduceOnPlateau",
    "ScheduleState",
]
