"""Device-state building blocks, one folder per concept.

- :mod:`jno.nnx.networks`: networks built on :class:`JetModule`, which propagate input
  derivatives forward with :class:`Jet` s, the fast path of every :mod:`jno.ops` operator;
- :mod:`jno.nnx.balancers`: adaptive loss balancers, loss normalisation, causal weights;
- :mod:`jno.nnx.schedules`: learning-rate schedules, fixed and loss-adaptive.

They never import each other; what they share is at this level: the variable types of
:mod:`jno.nnx.state` and the private argument checks and dtype helpers.

Every public class here is a :class:`flax.nnx.Module` whose adaptive state lives in
:mod:`jno.nnx.state` variables.
"""

import importlib
import sys

from jno.nnx.balancers import (
    DWA,
    RBA,
    RLW,
    VRBA,
    Balancer,
    CausalWeights,
    GradientBalancer,
    GradNorm,
    GradNormBalancer,
    LbPINNsLossBalancing,
    LossNormalizer,
    LRAnnealing,
    NTKBalancer,
    ReLoBRaLo,
    ResidualAttention,
    SoftAdapt,
    chunk_losses,
    ntk_diagonal,
    per_term_gradients,
)
from jno.nnx.networks import (
    MLP,
    Constant,
    Constrained,
    FactorizedDense,
    FourierFeatures,
    Jet,
    JetModule,
    ModifiedMLP,
    PeriodicEmbedding,
    PirateNet,
)
from jno.nnx.schedules import DLRS, LearningRateSchedule, ReduceOnPlateau, ScaledSchedule
from jno.nnx.state import BalancerState, ScheduleState

# Module paths of the flat layout (``from jno.nnx.models import MLP``, ...) name the
# modules of the concept folders, so imports written against them keep working.
_MODULE_ALIASES = {
    "models": "networks.mlp",
    "jets": "networks.jets",
    "embeddings": "networks.embeddings",
    "modified_mlp": "networks.modified_mlp",
    "piratenet": "networks.piratenet",
    "balancer_base": "balancers.base",
    "gradient_base": "balancers.gradient_base",
    "gradient_balancers": "balancers.gradient",
    "random_balancers": "balancers.stochastic",
    "ntk": "balancers.ntk",
    "causal": "balancers.causal",
    "normalize": "balancers.normalize",
    "scaled_schedule": "schedules.scaled",
    "adaptive_schedules": "schedules.adaptive",
}
for _alias, _target in _MODULE_ALIASES.items():
    sys.modules[f"{__name__}.{_alias}"] = globals()[_alias] = importlib.import_module(
        f"{__name__}.{_target}"
    )
del _alias, _target

__all__ = [
    "DLRS",
    "DWA",
    "MLP",
    "RBA",
    "RLW",
    "VRBA",
    "Balancer",
    "BalancerState",
    "CausalWeights",
    "Constant",
    "Constrained",
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
    "ResidualAttention",
    "ReduceOnPlateau",
    "ScaledSchedule",
    "ScheduleState",
    "SoftAdapt",
    "chunk_losses",
    "ntk_diagonal",
    "per_term_gradients",
]
