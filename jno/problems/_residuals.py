"""Helpers of the problems' residuals: parameters, values, mean squares, periodicity.

Example:
    >>> import jax.numpy as jnp
    >>> float(mean_square((jnp.ones(4), 2 * jnp.ones((4, 1)))))  # 1 + 4
    5.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._checks import check_real

__all__ = ["embeds_periods", "mean_square", "real_parameter", "values"]

Residual = jax.Array | tuple[jax.Array, ...]


def real_parameter(name: str, value: Any, *, positive: bool = False) -> float:
    """A finite real problem parameter as a float; raises naming ``name`` otherwise
    (:func:`jno.nnx._checks.check_real`, in the words of a physical parameter).

    Example:
        >>> real_parameter("k", 2)
        2.0
        >>> real_parameter("nu", 0.0, positive=True)
        Traceback (most recent call last):
        ...
        ValueError: nu must be a finite number > 0, got 0.0
    """
    if positive:
        return check_real(name, value, minimum=0.0, min_open=True, rule="a finite number > 0")
    return check_real(name, value, rule="a finite number")


def values(u: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """``u(x)`` as shape ``(n,)``: networks return ``(n, 1)``, exact solutions ``(n,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> values(lambda x: 2 * x, jnp.ones((3, 1))).shape
        (3,)
    """
    return jnp.reshape(u(x), (x.shape[0],))


def embeds_periods(module: Any, periods: Mapping[int, float] | None) -> bool:
    """Whether ``module`` embeds every axis of ``periods`` with its period, fixed."""
    embedding = getattr(module, "periodic", None)
    if not periods or embedding is None or isinstance(embedding.frequencies, nnx.Param):
        return False
    frequencies = dict(zip(embedding.axes, np.asarray(embedding.frequencies[...]).tolist()))
    return all(
        axis in frequencies and np.isclose(frequencies[axis], 2.0 * np.pi / period)
        for axis, period in periods.items()
    )


def mean_square(r: Residual, weights: jax.Array | None = None) -> jax.Array:
    parts = r if isinstance(r, tuple) else (r,)
    if weights is None:
        return sum(jnp.mean(jnp.square(jnp.reshape(p, (p.shape[0], -1)))) for p in parts)
    w = weights / jnp.sum(weights)
    return sum(
        jnp.sum(w * jnp.mean(jnp.square(jnp.reshape(p, (p.shape[0], -1))), axis=1)) for p in parts
    )
