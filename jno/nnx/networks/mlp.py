"""PINN-friendly networks: a fully connected MLP with optional Fourier features.

Fixed, non-trained arrays (the Fourier matrix, the input bounds) live in
:class:`Constant` variables: they travel with the model through ``nnx.split`` and
checkpoints, but are not :class:`flax.nnx.Param`, so ``nnx.Optimizer(..., wrt=nnx.Param)``
and ``nnx.state(model, nnx.Param)`` leave them out.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno.nnx.networks.mlp import MLP
    >>> net = MLP(2, [64, 64, 64, 64], 1, rngs=nnx.Rngs(0))
    >>> net(jnp.zeros((5, 2))).shape
    (5, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._checks import check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.networks._sharing import shared_value
from jno.nnx.networks.embeddings import FactorizedDense, PeriodicEmbedding
from jno.nnx.networks.jets import Jet, concatenate, elementwise

__all__ = ["MLP", "Constant", "FourierFeatures", "JetModule"]


class Constant(nnx.Variable):
    """A fixed array that is part of a model's state but never trained."""


class FourierFeatures(nnx.Module):
    """Random Fourier features ``[cos(2 pi x B), sin(2 pi x B)]``.

    ``B`` has shape ``(in_features, num_features)`` with entries drawn from
    ``N(0, scale^2)`` once at construction and then kept fixed (a :class:`Constant`,
    not trained). Maps ``(..., in_features)`` to ``(..., 2 * num_features)``, cosines
    first. A larger ``scale`` lets the following network fit higher frequencies.

    Args:
        in_features: input dimension.
        num_features: number of random frequencies (the output has twice as many).
        scale: standard deviation of the entries of ``B``.
        rngs: the ``params`` stream draws ``B``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from jno.nnx.networks.mlp import FourierFeatures
        >>> ff = FourierFeatures(2, 8, 1.0, rngs=nnx.Rngs(0))
        >>> y = ff(jnp.zeros((3, 2)))
        >>> y.shape, y[0, :8].tolist() == [1.0] * 8, y[0, 8:].tolist() == [0.0] * 8
        ((3, 16), True, True)
    """

    def __init__(self, in_features: int, num_features: int, scale: float, *, rngs: nnx.Rngs):
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.num_features = check_int("num_features", num_features, minimum=1)
        self.scale = check_real("scale", scale, minimum=0.0, min_open=True)
        b = jax.random.normal(rngs.params(), (self.in_features, self.num_features), default_float())
        self.B = Constant(self.scale * b)

    @property
    def out_features(self) -> int:
        """Output dimension, ``2 * num_features``."""
        return 2 * self.num_features

    def __call__(self, x: Any) -> Any:
        z = (x @ self.B[...]) * (2.0 * jnp.pi)
        return concatenate([elementwise(jnp.cos, z), elementwise(jnp.sin, z)])


def _input_bounds(lo: Any, hi: Any, in_features: int) -> tuple[Any, Any]:
    if (lo is None) != (hi is None):
        raise ValueError(
            f"input_lo and input_hi must be given together, got input_lo={lo!r}, input_hi={hi!r}"
        )
    if lo is None:
        return None, None
    out = []
    for name, v in (("input_lo", lo), ("input_hi", hi)):
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a sequence of numbers, got {v!r}"
            ) from None
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != in_features):
            raise ValueError(
                f"{name} must be a number or have length in_features={in_features}, got {v!r}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite, got {v!r}")
        out.append(np.broadcast_to(arr, (in_features,)))
    lo_a, hi_a = out
    if not (lo_a < hi_a).all():
        raise ValueError(
            f"input_lo must be < input_hi elementwise, got input_lo={lo!r}, input_hi={hi!r}"
        )
    return lo_a, hi_a


def _set_up_inputs(
    module: nnx.Module,
    in_features: Any,
    hidden: Any,
    out_features: Any,
    activation: Any,
    rngs: Any,
    fourier_features: Any,
    fourier_scale: Any,
    input_lo: Any,
    input_hi: Any,
    periodic: Any = None,
    periodic_trainable: bool = False,
) -> tuple[list[int], int]:
    """Checks the arguments shared by the networks of this package and sets
    ``in_features``, ``out_features``, ``activation``, ``input_lo``/``input_hi`` and
    ``fourier`` on ``module``; returns the hidden widths and the width of the features
    entering the first layer."""
    module.in_features = check_int("in_features", in_features, minimum=1)
    module.out_features = check_int("out_features", out_features, minimum=1)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of widths like [64, 64], got {hidden!r}")
    if len(hidden) == 0:
        raise ValueError(f"hidden must list at least one width, got {hidden!r}")
    widths = [check_int(f"hidden[{k}]", w, minimum=1) for k, w in enumerate(hidden)]
    if not callable(activation):
        raise TypeError(f"activation must be callable, got {activation!r}")
    if not isinstance(rngs, nnx.Rngs):
        raise TypeError(f"rngs must be an nnx.Rngs, got {rngs!r}")
    module.activation = activation
    fourier_scale = check_real("fourier_scale", fourier_scale, minimum=0.0, min_open=True)

    lo, hi = _input_bounds(input_lo, input_hi, module.in_features)
    module.input_lo = None if lo is None else Constant(jnp.asarray(lo, default_float()))
    module.input_hi = None if hi is None else Constant(jnp.asarray(hi, default_float()))

    width = module.in_features
    if periodic is None:
        module.periodic = None
    else:
        if not isinstance(periodic, Mapping) or not periodic:
            raise TypeError(
                f"periodic must map input axes to periods, e.g. {{0: 2.0}}, got {periodic!r}"
            )
        module.periodic = PeriodicEmbedding(
            width, list(periodic), list(periodic.values()), trainable=periodic_trainable
        )
        width = module.periodic.out_features
    if fourier_features is None:
        module.fourier = None
    else:
        nf = check_int("fourier_features", fourier_features, minimum=1)
        module.fourier = FourierFeatures(width, nf, fourier_scale, rngs=rngs)
        width = module.fourier.out_features
    return widths, width


def _dense(
    w_in: int, w_out: int, rngs: nnx.Rngs, factorization: tuple[float, float] | None = None
) -> nnx.Module:
    """A dense layer with Glorot-normal kernel and zero bias (the PINN convention),
    with random weight factorization ``(mean, stddev)`` when given."""
    if factorization is not None:
        mean, stddev = factorization
        return FactorizedDense(w_in, w_out, rngs=rngs, mean=mean, stddev=stddev)
    return nnx.Linear(
        w_in,
        w_out,
        kernel_init=nnx.initializers.glorot_normal(),
        bias_init=nnx.initializers.zeros_init(),
        param_dtype=default_float(),
        rngs=rngs,
    )


def _factorization(value: Any) -> tuple[float, float] | None:
    """``weight_factorization``: None, or ``(mean, stddev)`` of ``s`` (``True``: the
    paper's ``(1.0, 0.1)``)."""
    if value is None or value is False:
        return None
    if value is True:
        return (1.0, 0.1)
    try:
        mean, stddev = value
    except (TypeError, ValueError):
        raise TypeError(
            f"weight_factorization must be None, True or (mean, stddev), got {value!r}"
        ) from None
    return (
        check_real("weight_factorization mean", mean),
        check_real("weight_factorization stddev", stddev, minimum=0.0),
    )


def _input_features(module: nnx.Module, x: Any) -> Any:
    """The inputs (an array or a :class:`~jno.nnx.networks.jets.Jet`) after the optional
    standardisation and Fourier features of ``module`` (set up by :func:`_set_up_inputs`)."""
    raw = x
    if module.input_lo is not None:
        lo, hi = module.input_lo[...], module.input_hi[...]
        x = 2.0 * (x - lo) / (hi - lo) - 1.0
    if module.periodic is not None:
        # The periods are those of the raw inputs; the other axes stay standardised.
        x = module.periodic(raw, others=x)
    if module.fourier is not None:
        x = module.fourier(x)
    return x


def _linear(layer: nnx.Linear, h: Any) -> Any:
    """A dense layer applied to an array or a jet (the bias only shifts the value)."""
    return h @ layer.kernel[...] + layer.bias[...]


class JetModule(nnx.Module):
    """Base of networks whose forward pass also runs on :class:`~jno.nnx.networks.jets.Jet` s.

    A subclass implements :meth:`forward` with operations that jets support (``@``,
    ``+``, ``*``, :func:`~jno.nnx.networks.jets.elementwise`,
    :func:`~jno.nnx.networks.jets.concatenate`) and acts row-wise. :mod:`jno.ops` then
    takes every derivative of the network in one forward pass per set of points, shared
    by all operators called on the same network and points inside a loss (see
    :func:`jno.ops.share_derivatives`).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from jno import ops
        >>> class Quadratic(JetModule):
        ...     def __init__(self):
        ...         self.a = nnx.Param(jnp.array([[2.0], [3.0]]))
        ...     def forward(self, x):
        ...         h = x @ self.a[...]
        ...         return h * h
        >>> ops.laplacian(Quadratic(), jnp.ones((1, 2))).tolist()  # 2 (2^2 + 3^2)
        [26.0]
    """

    def forward(self, x: Any) -> Any:
        """The network on points ``(n, in_features)`` or on a jet of them."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def __call__(self, x: Any) -> Any:
        if isinstance(x, Jet):
            return self.forward(x)
        return shared_value(self, x)

    def forward_laplacian(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Output and its Laplacian over the inputs in one forward pass.

        Propagates, layer by layer, the activations ``h``, their derivatives along each
        input axis ``J_i`` and their Laplacian ``L`` (forward Laplacian): a dense layer
        maps all of them linearly (the bias only enters ``h``), an elementwise ``a``
        gives ``J_i -> a'(z) J_i`` and ``L -> a'(z) L + a''(z) sum_i J_i^2``, a product
        the Leibniz rule. :func:`jno.ops.laplacian` uses the same pass.

        Args:
            x: points, shape ``(n, in_features)``.

        Returns:
            ``(u, lap)``, both of shape ``(n, out_features)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from flax import nnx
            >>> net = MLP(2, [16], 1, rngs=nnx.Rngs(0))
            >>> x = jnp.array([[0.3, -0.2]])
            >>> u, lap = net.forward_laplacian(x)
            >>> h = jax.hessian(lambda p: net(p[None])[0, 0])(x[0])
            >>> bool(jnp.allclose(lap[0, 0], jnp.trace(h), atol=1e-5))
            True
        """
        jet = self.forward(Jet.seed(jnp.asarray(x), laplacian=True))
        return jet.value, jet.full(jet.laplacian)


class MLP(JetModule):
    """Fully connected network for PINNs: ``(n, in_features) -> (n, out_features)``.

    Layers, in order: optional input standardisation (``[input_lo, input_hi]`` mapped
    affinely to ``[-1, 1]``), optional :class:`FourierFeatures`, then dense layers of
    widths ``hidden`` each followed by ``activation``, then a linear output layer.
    Kernels use Glorot (Xavier) normal initialisation (variance
    ``2 / (fan_in + fan_out)``), biases start at zero. The network acts row by row,
    as :mod:`jno.ops` assumes.

    Args:
        in_features: input dimension ``d``.
        hidden: widths of the hidden layers, e.g. ``[64, 64, 64, 64]`` (non-empty).
        out_features: output dimension.
        activation: elementwise nonlinearity after each hidden layer.
        rngs: random streams; ``params`` initialises the kernels and ``B``.
        fourier_features: number of random Fourier frequencies, or ``None`` for none.
        fourier_scale: standard deviation of the Fourier matrix entries.
        input_lo: lower bound of the inputs (a number or one per input), or ``None``.
        input_hi: upper bound of the inputs, given together with ``input_lo``.
        periodic: ``{axis: period}``: an exact periodic embedding of those raw input
            axes (:class:`~jno.nnx.networks.embeddings.PeriodicEmbedding`), before the Fourier
            features; the network is then periodic in them with all its derivatives.
        periodic_trainable: train the embedding's frequencies.
        weight_factorization: random weight factorization of every dense layer
            (:class:`~jno.nnx.networks.embeddings.FactorizedDense`): ``(mean, stddev)`` of
            ``s``, or ``True`` for ``(1.0, 0.1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from jno.nnx.networks.mlp import MLP
        >>> net = MLP(2, [8, 8], 3, rngs=nnx.Rngs(0), fourier_features=4,
        ...           input_lo=[0.0, 0.0], input_hi=[1.0, 10.0])
        >>> net(jnp.ones((4, 2))).shape
        (4, 3)
        >>> isinstance(net.fourier.B, nnx.Param)  # a Constant: fixed, not trained
        False
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
        widths, width = _set_up_inputs(
            self, in_features, hidden, out_features, activation, rngs,
            fourier_features, fourier_scale, input_lo, input_hi,
            periodic, periodic_trainable,
        )  # fmt: skip
        rwf = _factorization(weight_factorization)
        sizes = [width, *widths, self.out_features]
        self.layers = nnx.List([_dense(a, b, rngs, rwf) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x: Any) -> Any:
        x = _input_features(self, x)
        for layer in self.layers[:-1]:
            x = elementwise(self.activation, _linear(layer, x))
        return _linear(self.layers[-1], x)
