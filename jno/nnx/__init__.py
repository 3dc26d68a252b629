"""Device-state building blocks: schedules, balancers, loss normalisation, networks.

Every public class here is a :class:`flax.nnx.Module` whose adaptive state lives in
:mod:`jno.nnx.state` variables.
"""

from jno.nnx.balancers import (
    DWA,
    RLW,
    Balancer,
    LbPINNsLossBalancing,
    LossNormalizer,
    ReLoBRaLo,
    SoftAdapt,
)
from jno.nnx.models import MLP, Constant, FourierFeatures
from jno.nnx.schedules import DLRS, LearningRateSchedule, ReduceOnPlateau
from jno.nnx.state import BalancerState, ScheduleState

__all__ = [
    "DLRS",
    "DWA",
    "MLP",
    "RLW",
    "Balancer",
    "BalancerState",
    "Constant",
    "FourierFeatures",
    "LbPINNsLossBalancing",
    "LearningRateSchedule",
    "LossNormalizer",
    "ReLoBRaLo",
    "ReduceOnPlateau",
    "ScheduleState",
    "SoftAdapt",
]
