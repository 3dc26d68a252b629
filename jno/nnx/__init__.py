"""Device-state building blocks: schedules, balancers, loss normalisation, networks.

Networks built on :class:`JetModule` propagate input derivatives forward with
:class:`Jet` s (:mod:`jno.nnx.jets`), which :mod:`jno.ops` uses for every operator.

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
from jno.nnx.causal import CausalWeights, chunk_losses
from jno.nnx.embeddings import FactorizedDense, PeriodicEmbedding
from jno.nnx.gradient_balancers import (
    GradientBalancer,
    GradNorm,
    GradNormBalancer,
    LRAnnealing,
    per_term_gradients,
)
from jno.nnx.jets import Jet
from jno.nnx.models import MLP, Constant, FourierFeatures, JetModule
from jno.nnx.modified_mlp import ModifiedMLP
from jno.nnx.ntk import NTKBalancer, ntk_diagonal
from jno.nnx.piratenet import PirateNet
from jno.nnx.scaled_schedule import ScaledSchedule
from jno.nnx.schedules import DLRS, LearningRateSchedule, ReduceOnPlateau
from jno.nnx.state import BalancerState, ScheduleState

__all__ = [
    "DLRS",
    "DWA",
    "MLP",
    "RLW",
    "Balancer",
    "BalancerState",
    "CausalWeights",
    "Constant",
    "FactorizedDense",
    "FourierFeatures",
    "GradNorm",
    "GradNormBalancer",
    "GradientBalancer",
    "Jet",
    "JetModule",
    "LRAnnealing",
    "LbPINNsLossBalancing",
    "LearningRateSchedule",
    "LossNormalizer",
    "ModifiedMLP",
    "NTKBalancer",
    "PeriodicEmbedding",
    "PirateNet",
    "ReLoBRaLo",
    "ReduceOnPlateau",
    "ScaledSchedule",
    "ScheduleState",
    "SoftAdapt",
    "chunk_losses",
    "ntk_diagonal",
    "per_term_gradients",
]
