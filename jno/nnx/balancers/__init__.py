"""Adaptive loss balancers: every one an ``nnx.Module`` with its state on the device.

``balancer(losses)`` takes N losses and returns N weights (of the default float dtype,
``jax.lax.stop_gradient``-ed, always finite) and updates the balancer's
:class:`~jno.nnx.state.BalancerState` variables in place, so it runs inside a compiled
training step with no host round trip. Modules:

- :mod:`~jno.nnx.balancers.base`: :class:`Balancer`, the behaviour all share (loss
  preprocessing modes, NaN/Inf guard, ``config``);
- :mod:`~jno.nnx.balancers.normalize`: :class:`LossNormalizer`, the ``mode`` preprocessing;
- :mod:`~jno.nnx.balancers.value_based`: :class:`SoftAdapt`, :class:`DWA`,
  :class:`LbPINNsLossBalancing`;
- :mod:`~jno.nnx.balancers.stochastic`: :class:`ReLoBRaLo`, :class:`RLW` (random draws);
- :mod:`~jno.nnx.balancers.gradient_base`, :mod:`~jno.nnx.balancers.gradient`: the
  balancers of per-term gradients, :class:`GradientBalancer`, :class:`GradNormBalancer`,
  :class:`LRAnnealing`, :class:`GradNorm`;
- :mod:`~jno.nnx.balancers.ntk`: :class:`NTKBalancer` (NTK diagonals);
- :mod:`~jno.nnx.balancers.causal`: :class:`CausalWeights` (time chunks);
- :mod:`~jno.nnx.balancers.attention`: :class:`RBA`, :class:`VRBA` (per-point
  multipliers of one term's residual).

Example:
    >>> from jno.nnx.balancers import ReLoBRaLo
    >>> ReLoBRaLo(2)([1.0, 2.0]).tolist()  # the first call: ones
    [1.0, 1.0]
"""

from jno.nnx.balancers.attention import RBA, VRBA, ResidualAttention
from jno.nnx.balancers.base import Balancer
from jno.nnx.balancers.causal import CausalWeights, chunk_losses
from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing
from jno.nnx.balancers.gradient_base import GradientBalancer, per_term_gradients
from jno.nnx.balancers.normalize import LossNormalizer
from jno.nnx.balancers.ntk import NTKBalancer, ntk_diagonal
from jno.nnx.balancers.stochastic import RLW, ReLoBRaLo
from jno.nnx.balancers.value_based import DWA, LbPINNsLossBalancing, SoftAdapt

__all__ = [
    "DWA",
    "RBA",
    "RLW",
    "VRBA",
    "Balancer",
    "CausalWeights",
    "GradNorm",
    "GradNormBalancer",
    "GradientBalancer",
    "LRAnnealing",
    "LbPINNsLossBalancing",
    "LossNormalizer",
    "NTKBalancer",
    "ReLoBRaLo",
    "ResidualAttention",
    "SoftAdapt",
    "chunk_losses",
    "ntk_diagonal",
    "per_term_gradients",
]
