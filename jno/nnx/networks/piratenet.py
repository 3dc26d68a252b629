"""PirateNet: residual adaptive networks for PINNs (Wang, Sankaran, Wang & Perdikaris,
"PirateNets: physics-informed deep learning with residual adaptive networks", JMLR 2024).

The input goes through the optional standardisation and periodic embedding of
:class:`~jno.nnx.networks.mlp.MLP`, then random Fourier features ``Phi`` (width ``2m``). Two
gates ``U = s(Phi W_u + b_u)`` and ``V = s(Phi W_v + b_v)`` are shared by every block.
Block ``l`` maps ``x`` (``x_1 = Phi``) to::

    f = s(x W1 + b1);   z1 = f * U + (1 - f) * V
    g = s(z1 W2 + b2);  z2 = g * U + (1 - g) * V
    h = s(z2 W3 + b3)
    x_next = alpha_l h + (1 - alpha_l) x

with a trainable ``alpha_l`` that starts at zero, so the initial network is the linear
model ``Phi(x) W_out + b_out`` on the embedding, whatever its depth. That makes the
physics-informed initialisation of the paper a least-squares problem:
:meth:`PirateNet.fit_output` sets ``W_out, b_out`` to fit given data (e.g. the initial
condition) before training. Every dense layer may use random weight factorization.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> net = PirateNet(2, 16, 1, blocks=2, rngs=nnx.Rngs(0))
    >>> net(jnp.ones((3, 2))).shape, float(net.alphas[...].sum())
    ((3, 1), 0.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._checks import check_int
from jno.nnx._dtype import default_float
from jno.nnx.networks.jets import elementwise
from jno.nnx.networks.mlp import (
    JetModule,
    _dense,
    _factorization,
    _input_features,
    _linear,
    _set_up_inputs,
)

__all__ = ["PirateNet"]


class PirateNet(JetModule):
    """The PirateNet of Wang et al. (2024): ``(n, in_features) -> (n, out_features)``.

    Args:
        in_features: input dimension ``d``.
        width: the width of the embedding and of every block (even: ``width / 2``
            Fourier frequencies).
        out_features: output dimension.
        blocks: number of residual blocks (three dense layers each).
        activation: the nonlinearity ``s``.
        rngs: random streams (``params``).
        fourier_scale: standard deviation of the Fourier matrix entries.
        input_lo, input_hi: input bounds mapped to ``[-1, 1]`` (as for MLP).
        periodic: ``{axis: period}``: exact periodic embedding of raw input axes.
        periodic_trainable: train the embedding's frequencies.
        weight_factorization: ``(mean, stddev)`` of the factorization of every dense
            layer, ``True`` for ``(1.0, 0.1)``, or None.

    Raises:
        ValueError: an odd ``width`` or a size below 1.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out_features: int,
        *,
        blocks: int = 3,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        rngs: nnx.Rngs,
        fourier_scale: float = 1.0,
        input_lo: float | Sequence[float] | None = None,
        input_hi: float | Sequence[float] | None = None,
        periodic: Mapping[int, float] | None = None,
        periodic_trainable: bool = False,
        weight_factorization: Any = (1.0, 0.1),
    ):
        width = check_int("width", width, minimum=2)
        if width % 2:
            raise ValueError(f"width must be even (cosines and sines), got {width}")
        self.blocks = check_int("blocks", blocks, minimum=1)
        _, w = _set_up_inputs(
            self, in_features, [width], out_features, activation, rngs,
            width // 2, fourier_scale, input_lo, input_hi, periodic, periodic_trainable,
        )  # fmt: skip
        rwf = _factorization(weight_factorization)
        self.gate_u = _dense(w, w, rngs, rwf)
        self.gate_v = _dense(w, w, rngs, rwf)
        self.block_layers = nnx.List(
            [nnx.List([_dense(w, w, rngs, rwf) for _ in range(3)]) for _ in range(self.blocks)]
        )
        self.alphas = nnx.Param(jnp.zeros((self.blocks,), default_float()))
        self.output = _dense(w, self.out_features, rngs, rwf)

    def embedding(self, x: Any) -> Any:
        """``Phi(x)``: standardisation, periodic embedding and Fourier features."""
        return _input_features(self, x)

    def forward(self, x: Any) -> Any:
        s = lambda z: elementwise(self.activation, z)  # noqa: E731
        x = self.embedding(x)
        u, v = s(_linear(self.gate_u, x)), s(_linear(self.gate_v, x))
        alphas = self.alphas[...]
        for index, (first, second, third) in enumerate(self.block_layers):
            f = s(_linear(first, x))
            z = f * u + (1.0 - f) * v
            g = s(_linear(second, z))
            z = g * u + (1.0 - g) * v
            h = s(_linear(third, z))
            x = h * alphas[index] + x * (1.0 - alphas[index])
        return _linear(self.output, x)

    def fit_output(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Physics-informed initialisation: sets the output layer to the least-squares
        fit of ``y`` by the embedding at ``x`` (exact for the network while every
        ``alpha`` is zero); returns the residual ``Phi(x) W + b - y``.

        Args:
            x: points ``(n, in_features)``.
            y: targets ``(n, out_features)`` or ``(n,)``.

        Raises:
            ValueError: an ``alpha`` is not zero (the network is no longer linear in
                the output layer), or ``y`` has the wrong shape.
        """
        if bool(jnp.any(self.alphas[...] != 0)):
            raise ValueError("fit_output needs every alpha at zero (before training)")
        y = jnp.reshape(jnp.asarray(y, default_float()), (x.shape[0], -1))
        if y.shape[1] != self.out_features:
            raise ValueError(f"y must have {self.out_features} columns, got shape {y.shape}")
        phi = self.embedding(jnp.asarray(x, default_float()))
        design = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1), phi.dtype)], axis=1)
        solution, *_ = jnp.linalg.lstsq(design, y)
        kernel, bias = solution[:-1], solution[-1]
        layer = self.output
        if hasattr(layer, "v"):  # factorized: keep s, set V = W / exp(s)
            layer.v[...] = kernel / jnp.exp(layer.s[...])
        else:
            layer.kernel[...] = kernel
        layer.bias[...] = bias
        return design @ solution - y
