"""Exact periodic embeddings and random weight factorization for PINN networks.

:class:`PeriodicEmbedding` replaces chosen input axes ``x_a`` by ``cos(w_a x_a)`` and
``sin(w_a x_a)`` with ``w_a = 2 pi / L_a``: any network behind it is exactly
``L_a``-periodic in ``x_a`` with all its derivatives, so no boundary loss is needed
(Dong & Ni 2021; Wang et al., "An expert's guide to training PINNs", 2023). The
frequencies may be trained.

:class:`FactorizedDense` is a dense layer with random weight factorization (Wang et
al. 2022, "Random weight factorization improves the training of continuous neural
representations"): the kernel is ``diag(exp(s)) V`` column by column, ``W = V *
exp(s)``, with ``s ~ N(mu, sigma)`` drawn at initialisation and ``V = W0 / exp(s)`` so
that the initial kernel is the Glorot-normal ``W0``; ``s`` and ``V`` are trained.

Both run on arrays and on :class:`~jno.nnx.networks.jets.Jet` s, so derivatives of networks that
use them take the fast path of :mod:`jno.ops`.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> emb = PeriodicEmbedding(2, axes=[0], periods=[2.0])
    >>> emb(jnp.array([[0.0, 0.5], [2.0, 0.5]])).round(6).tolist()   # x and x + 2 agree
    [[0.5, 1.0, 0.0], [0.5, 1.0, 0.0]]
    >>> layer = FactorizedDense(3, 4, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((2, 3))).shape
    (2, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._checks import check_bool, check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.networks.jets import concatenate, elementwise

__all__ = ["FactorizedDense", "PeriodicEmbedding"]


class PeriodicEmbedding(nnx.Module):
    """``(..., d) -> (..., d + len(axes))``: the other axes, then ``cos`` and ``sin`` of
    ``2 pi x_a / L_a`` for each periodic axis ``a``.

    Args:
        in_features: input dimension ``d``.
        axes: the periodic input axes.
        periods: the period ``L_a`` of each (a number for all).
        trainable: train the frequencies ``2 pi / L_a`` (the period then moves).

    Raises:
        ValueError: an axis out of range or repeated, a period that is not > 0.
    """

    def __init__(
        self,
        in_features: int,
        axes: Sequence[int],
        periods: float | Sequence[float],
        *,
        trainable: bool = False,
    ):
        self.in_features = check_int("in_features", in_features, minimum=1)
        axes = [check_int("axes[...]", a, minimum=0, maximum=in_features - 1) for a in axes]
        if not axes or len(set(axes)) != len(axes):
            raise ValueError(f"axes must be distinct input axes, got {axes!r}")
        if isinstance(periods, (int, float)):
            periods = [periods] * len(axes)
        if len(periods) != len(axes):
            raise ValueError(f"periods must have one entry per axis {axes}, got {periods!r}")
        periods = [
            check_real(f"periods[{k}]", p, minimum=0.0, min_open=True)
            for k, p in enumerate(periods)
        ]
        self.axes = tuple(axes)
        self.others = tuple(a for a in range(in_features) if a not in axes)
        eye = np.eye(in_features)
        self.pick_periodic = nnx.Variable(jnp.asarray(eye[:, list(axes)], default_float()))
        self.pick_others = nnx.Variable(jnp.asarray(eye[:, list(self.others)], default_float()))
        frequencies = jnp.asarray([2.0 * np.pi / p for p in periods], default_float())
        trainable = check_bool("trainable", trainable)
        self.frequencies = nnx.Param(frequencies) if trainable else nnx.Variable(frequencies)

    @property
    def out_features(self) -> int:
        """``in_features + len(axes)``."""
        return self.in_features + len(self.axes)

    def __call__(self, x: Any, others: Any = None) -> Any:
        """Embeds ``x`` (an array or a jet); the non-periodic axes are taken from
        ``others`` when given (e.g. the standardised inputs)."""
        z = (x @ self.pick_periodic[...]) * self.frequencies[...]
        parts = [elementwise(jnp.cos, z), elementwise(jnp.sin, z)]
        if self.others:
            parts.insert(0, (x if others is None else others) @ self.pick_others[...])
        return concatenate(parts)


class FactorizedDense(nnx.Module):
    """A dense layer with random weight factorization: ``x @ (V * exp(s)) + b``.

    Args:
        in_features, out_features: the layer's widths.
        mean, stddev: the distribution ``N(mean, stddev)`` of ``s`` (the paper: 1.0,
            0.1; ``exp(s)`` about 2.7).
        rngs: the ``params`` stream draws ``W0`` (Glorot normal) and ``s``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        mean: float = 1.0,
        stddev: float = 0.1,
    ):
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        self.mean = mean = check_real("mean", mean)
        self.stddev = stddev = check_real("stddev", stddev, minimum=0.0)
        dtype = default_float()
        w0 = nnx.initializers.glorot_normal()(rngs.params(), (in_features, out_features), dtype)
        s = mean + stddev * jax.random.normal(rngs.params(), (out_features,), dtype)
        self.s = nnx.Param(s)
        self.v = nnx.Param(w0 / jnp.exp(s))
        self.bias = nnx.Param(jnp.zeros((out_features,), dtype))

    @property
    def kernel(self) -> jax.Array:
        """The effective kernel ``V * exp(s)``."""
        return self.v[...] * jnp.exp(self.s[...])

    def __call__(self, x: Any) -> Any:
        return x @ self.kernel + self.bias[...]
