"""Boundary operators: the normal derivative and the residuals of Neumann and Robin
conditions, on the same derivative paths as every :mod:`jno.ops` operator.

Normals come with the points: ``shape.normal(x)`` of a :mod:`jno.domain` shape gives
the outward unit normals at its boundary points (drawn afresh each step or not).

Example:
    >>> import jax.numpy as jnp
    >>> from jno import ops
    >>> u = lambda x: x[:, 0] ** 2 + x[:, 1]          # grad u = (2 x, 1)
    >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])       # unit-disk normals
    >>> ops.normal_derivative(u, x, n).tolist()
    [2.0, 1.0]
    >>> ops.robin(u, x, n, alpha=1.0, beta=2.0, value=5.0).tolist()  # u + 2 du/dn - 5
    [0.0, -2.0]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_real
from jno.ops._paths import Fn, as_points, resolve_output, scalar_fn, select
from jno.ops.derivatives import grad

__all__ = ["neumann", "normal_derivative", "robin", "robin_coefficients"]


def normal_derivative(
    u: Fn, x: Any, normals: Any, *, output: int | str | None = None, pointwise: bool = True
) -> jax.Array:
    """``du/dn = grad u . n`` at every point, shape ``(n,)``.

    Args:
        u: callable mapping points ``(n, d)`` to one scalar per point (or a network with
            several outputs and ``output``, or a field of :func:`jno.ops.fields`).
        x: points, shape ``(n, d)``.
        normals: unit normals, shape ``(n, d)`` (e.g. ``shape.normal(x)``).
        output, pointwise: as for :func:`jno.ops.grad`.

    Raises:
        ValueError: ``normals`` does not have the shape of ``x``.
    """
    x = as_points(x)
    normals = _normals(normals, x)
    return jnp.sum(grad(u, x, output=output, pointwise=pointwise) * normals, axis=1)


def neumann(
    u: Fn,
    x: Any,
    normals: Any,
    value: Any = None,
    *,
    output: int | str | None = None,
    pointwise: bool = True,
) -> jax.Array:
    """The residual ``du/dn - g`` of the Neumann condition ``du/dn = g``, shape ``(n,)``.

    Args:
        u, x, normals, output, pointwise: as for :func:`normal_derivative`.
        value: ``g``: a function of the points, an array ``(n,)``, a number, or None
            for zero flux.
    """
    x = as_points(x)
    flux = normal_derivative(u, x, normals, output=output, pointwise=pointwise)
    return flux - _data(value, x)


def robin(
    u: Fn,
    x: Any,
    normals: Any,
    *,
    alpha: float,
    beta: float,
    value: Any = None,
    output: int | str | None = None,
    pointwise: bool = True,
) -> jax.Array:
    """The residual ``alpha u + beta du/dn - g`` of a Robin condition, shape ``(n,)``.

    Args:
        u, x, normals, output, pointwise: as for :func:`normal_derivative`.
        alpha, beta: the coefficients (finite numbers, not both zero).
        value: ``g``, as for :func:`neumann`.

    Raises:
        ValueError: ``alpha`` and ``beta`` are both zero, or not finite.
    """
    alpha, beta = robin_coefficients(alpha, beta)
    x = as_points(x)
    net, column = resolve_output(u, output)
    values = scalar_fn(select(net, column), x.shape[0])(x)
    flux = normal_derivative(u, x, normals, output=output, pointwise=pointwise)
    return alpha * values + beta * flux - _data(value, x)


def robin_coefficients(alpha: Any, beta: Any) -> tuple[float, float]:
    """``(alpha, beta)`` of a Robin condition, checked: finite and not both zero.

    Raises:
        ValueError: either is not finite, or both are zero.
    """
    alpha, beta = check_real("alpha", alpha), check_real("beta", beta)
    if alpha == 0.0 and beta == 0.0:
        raise ValueError("alpha and beta must not both be zero, got alpha=0.0, beta=0.0")
    return alpha, beta


def _normals(normals: Any, x: jax.Array) -> jax.Array:
    n = jnp.asarray(normals, x.dtype)
    if n.shape != x.shape:
        raise ValueError(f"normals must have the shape of x {tuple(x.shape)}, got {n.shape}")
    return n


def _data(value: Any, x: jax.Array) -> jax.Array:
    if value is None:
        return jnp.zeros((x.shape[0],), x.dtype)
    if callable(value):
        out = jnp.asarray(value(x), x.dtype)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out
    return jnp.broadcast_to(jnp.asarray(value, x.dtype), (x.shape[0],))
