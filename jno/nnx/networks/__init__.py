"""Networks whose input derivatives travel forward with them (Taylor mode).

Every network here is a :class:`JetModule`: called on points it returns ``(n, out)``
values; called on a :class:`~jno.nnx.networks.jets.Jet` it carries the first and second
input derivatives a loss asks for through the same forward pass, which is what every
:mod:`jno.ops` operator uses. Modules:

- :mod:`~jno.nnx.networks.jets`: the :class:`Jet` and the operations it supports;
- :mod:`~jno.nnx.networks.mlp`: :class:`JetModule`, :class:`MLP`, :class:`FourierFeatures`
  and the :class:`Constant` variables of fixed arrays;
- :mod:`~jno.nnx.networks.modified_mlp`, :mod:`~jno.nnx.networks.piratenet`: the gated
  PINN networks :class:`ModifiedMLP` and :class:`PirateNet`;
- :mod:`~jno.nnx.networks.embeddings`: :class:`PeriodicEmbedding` (exact periodicity)
  and :class:`FactorizedDense` (random weight factorization);
- :mod:`~jno.nnx.networks.constraints`: :class:`Constrained`, boundary and initial
  conditions imposed exactly by an output transform.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno.nnx.networks import MLP
    >>> MLP(2, [16, 16], 3, rngs=nnx.Rngs(0))(jnp.zeros((4, 2))).shape
    (4, 3)
"""

from jno.nnx.networks.constraints import Constrained
from jno.nnx.networks.embeddings import FactorizedDense, PeriodicEmbedding
from jno.nnx.networks.jets import Jet
from jno.nnx.networks.mlp import MLP, Constant, FourierFeatures, JetModule
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.nnx.networks.piratenet import PirateNet

__all__ = [
    "MLP",
    "Constant",
    "Constrained",
    "FactorizedDense",
    "FourierFeatures",
    "Jet",
    "JetModule",
    "ModifiedMLP",
    "PeriodicEmbedding",
    "PirateNet",
]
