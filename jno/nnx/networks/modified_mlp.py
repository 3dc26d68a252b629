"""The modified (gated) MLP of Wang, Teng & Perdikaris for PINNs.

Wang, Teng & Perdikaris (2021), "Understanding and mitigating gradient flow
pathologies in physics-informed neural networks", SIAM J. Sci. Comput. 43(5),
eq. (2.37)-(2.41): two encoders of the input, ``U`` and ``V``, and every hidden
layer is a pointwise blend of the two, gated by that layer's activations::

    U = s(X W_U + b_U),  V = s(X W_V + b_V),  H_1 = s(X W_1 + b_1)
    Z_k = s(H_k W_{z,k} + b_{z,k}),  H_{k+1} = (1 - Z_k) * U + Z_k * V,  k = 1..L-1
    f(X) = H_L W + b

The multiplicative links carry the input into every layer; the paper finds the
network more resilient than a plain MLP to the stiff gradient dynamics of PINN training.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno.nnx.networks.modified_mlp import ModifiedMLP
    >>> net = ModifiedMLP(2, [64, 64, 64, 64], 1, rngs=nnx.Rngs(0))
    >>> net(jnp.zeros((5, 2))).shape
    (5, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx.networks.jets import elementwise
from jno.nnx.networks.mlp import (
    JetModule,
    _dense,
    _factorization,
    _input_features,
    _linear,
    _set_up_inputs,
)

__all__ = ["ModifiedMLP"]


class ModifiedMLP(JetModule):
    """Gated MLP with two input encoders: ``(n, in_features) -> (n, out_features)``.

    With ``hidden = [w] * L`` the network has, on the features ``X`` (the inputs after
    the optional standardisation and Fourier features, as in
    :class:`~jno.nnx.networks.mlp.MLP`):

    * two encoders ``U = s(X W_U + b_U)`` and ``V = s(X W_V + b_V)`` of width ``w``
      (``encoder_u``, ``encoder_v``);
    * a first layer ``H_1 = s(X W_1 + b_1)`` of width ``w`` (``layers[0]``);
    * ``L - 1`` gated layers, ``Z_k = s(H_k W_{z,k} + b_{z,k})`` and
      ``H_{k+1} = (1 - Z_k) * U + Z_k * V`` (``layers[k]``, ``k = 1..L-1``);
    * a linear output ``f = H_L W + b`` (``layers[-1]``).

    So ``layers`` holds as many weight matrices as ``MLP`` with the same ``hidden``
    (``L + 1``), plus the two encoders. With a single width (``L = 1``) there is no
    gated layer, the network is a one-hidden-layer MLP and the encoders are not built
    (``encoder_u`` and ``encoder_v`` are ``None``). The number of trained parameters
    is, with ``p`` the feature width (``in_features``, or ``2 * fourier_features``)::

        (p + 1) w * (1 + 2 [L > 1]) + (L - 1)(w + 1) w + (w + 1) out_features

    Kernels use Glorot normal initialisation, biases start at zero; the Fourier matrix
    and input bounds are :class:`~jno.nnx.networks.mlp.Constant` s, not trained.

    Args:
        in_features: input dimension ``d``.
        hidden: widths of the hidden layers, all equal, e.g. ``[64, 64, 64, 64]``.
        out_features: output dimension.
        activation: elementwise nonlinearity ``s`` (encoders, ``H_1`` and gates).
        rngs: random streams; ``params`` initialises the kernels and ``B``.
        fourier_features: number of random Fourier frequencies, or ``None`` for none.
        fourier_scale: standard deviation of the Fourier matrix entries.
        input_lo: lower bound of the inputs (a number or one per input), or ``None``;
            ``[input_lo, input_hi]`` is mapped affinely to ``[-1, 1]``.
        input_hi: upper bound of the inputs, given together with ``input_lo``.
        periodic, periodic_trainable, weight_factorization: as for
            :class:`~jno.nnx.networks.mlp.MLP`.

    Raises:
        ValueError: ``hidden`` is empty or its widths differ, or a bad size / bound.
        TypeError: an argument of the wrong type (e.g. a non-callable ``activation``).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from jno.nnx.networks.modified_mlp import ModifiedMLP
        >>> net = ModifiedMLP(2, [8, 8, 8], 1, rngs=nnx.Rngs(0), fourier_features=4,
        ...                   input_lo=[0.0, 0.0], input_hi=[1.0, 10.0])
        >>> net(jnp.ones((4, 2))).shape
        (4, 1)
        >>> len(net.layers), net.encoder_u.kernel.shape
        (4, (8, 8))
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        *,
        rngs: nnx.Rngs,
        fourier_features: int | None = None,
        fourier_scale: float = 1.0,
        input_lo: float | Sequence[float] | None = None,
        input_hi: float | Sequence[float] | None = None,
        periodic: Mapping[int, float] | None = None,
        periodic_trainable: bool = False,
        weight_factorization: tuple[float, float] | None = None,
    ):
        widths, p = _set_up_inputs(
            self, in_features, hidden, out_features, activation, rngs,
            fourier_features, fourier_scale, input_lo, input_hi,
            periodic, periodic_trainable,
        )  # fmt: skip
        rwf = _factorization(weight_factorization)
        if len(set(widths)) != 1:
            # U and V are blended into every layer, so all layers share their width.
            raise ValueError(f"hidden widths must all be equal, got {list(hidden)!r}")

        w, depth = widths[0], len(widths)
        gated = depth > 1
        self.encoder_u = _dense(p, w, rngs, rwf) if gated else None
        self.encoder_v = _dense(p, w, rngs, rwf) if gated else None
        layers = [_dense(p, w, rngs, rwf)]
        layers += [_dense(w, w, rngs, rwf) for _ in range(depth - 1)]
        layers.append(_dense(w, self.out_features, rngs, rwf))
        self.layers = nnx.List(layers)

    def forward(self, x: Any) -> Any:
        s = lambda z: elementwise(self.activation, z)
        x = _input_features(self, x)
        h = s(_linear(self.layers[0], x))
        if self.encoder_u is not None:
            u, v = s(_linear(self.encoder_u, x)), s(_linear(self.encoder_v, x))
            dv = v - u
            for layer in self.layers[1:-1]:
                z = s(_linear(layer, h))
                h = u + z * dv  # = (1 - z) * u + z * v
        return _linear(self.layers[-1], h)
