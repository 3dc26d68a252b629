"""Differential operators on a network, evaluated on a batch of points.

Every operator takes a callable ``u`` (a function, an :class:`flax.nnx.Module`, ...)
and points ``x`` of shape ``(n, d)``. ``u(x)`` returns ``(n,)`` or ``(n, 1)`` (the same
thing: one scalar per point) or, for :func:`divergence`, a vector field ``(n, d)``.

How derivatives are taken:
    A PINN network acts *row-wise*: output row ``k`` depends on input row ``k`` only.
    For such a ``u`` the Jacobian of the whole batch function is block diagonal, so one
    forward-mode product (``jax.jvp``) with the tangent ``e_i`` tiled over all ``n``
    rows returns ``du/dx_i`` at every point at once, and a jvp of that jvp returns a
    second derivative. :func:`laplacian` is the sum over ``i`` of the second
    directional derivative along ``e_i``: no per-point ``vmap`` of the network, no
    Hessian materialised. :func:`grad` takes one reverse pass instead (the gradient of
    ``sum_k u(x_k)``), which is cheaper than ``d`` forward passes.

    A network that mixes rows (batch norm in training mode, attention over the batch,
    ...) breaks that assumption: pass ``pointwise=False`` and each point is then fed to
    ``u`` on its own, as a batch of one row, under ``jax.vmap``. The result is the
    derivative of that one-point function.

Example:
    >>> import jax.numpy as jnp
    >>> from jno import ops
    >>> u = lambda x: x[:, 0] ** 2 + 3.0 * x[:, 0] * x[:, 1]
    >>> x = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    >>> ops.grad(u, x).tolist()
    [[8.0, 3.0], [-2.0, 1.5]]
    >>> ops.laplacian(u, x).tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["divergence", "grad", "hessian", "laplacian", "partial", "partial2"]

Fn = Callable[[jax.Array], jax.Array]


def _points(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array of points of shape (n, d), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        # Integer inputs have no tangent space; differentiate in float32.
        x = x.astype(jnp.float32)
    return x


def _check_callable(u: Any, name: str, pointwise: Any) -> None:
    if not callable(u):
        raise TypeError(f"{name} must be callable (a function or an nnx.Module), got {u!r}")
    if not isinstance(pointwise, bool):
        raise TypeError(f"pointwise must be a bool, got {pointwise!r}")


def _index(i: Any, d: int, name: str) -> int:
    if isinstance(i, bool):
        raise TypeError(f"{name} must be an int, got {i!r}")
    try:
        i = operator.index(i)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {i!r}") from None
    if not -d <= i < d:
        raise ValueError(f"{name} must be in [{-d}, {d}) for points of dimension {d}, got {i}")
    return i % d


def _scalar(u: Fn, n: int) -> Fn:
    """Wrap ``u`` so it returns ``(n,)``; any other output shape is an error."""

    def f(x: jax.Array) -> jax.Array:
        y = jnp.asarray(u(x))
        if y.shape == (n, 1):
            return y[:, 0]
        if y.shape != (n,):
            raise ValueError(
                "u must return one scalar per point, shape (n,) or (n, 1) with "
                f"n={n}; got output shape {y.shape}"
            )
        return y

    return f


def _basis(x: jax.Array, i: int) -> jax.Array:
    """Tangent ``e_i`` tiled over every row of ``x``."""
    return jnp.zeros_like(x).at[:, i].set(1)


def _dir(f: Fn, t: jax.Array) -> Fn:
    """Directional derivative of ``f`` along the (tiled) tangent ``t``."""
    return lambda y: jax.jvp(f, (y,), (t,))[1]


def _per_point(op: Callable[..., jax.Array], u: Fn, x: jax.Array, *args: Any) -> jax.Array:
    """Apply a row-wise operator to each point alone (batch of one row) under vmap."""
    return jax.vmap(lambda p: op(u, p[None, :], *args)[0])(x)


# ----------------------------------------------------------------- row-wise kernels
# The axes are unrolled in Python rather than batched with vmap over the tangents:
# measured on a 4x64 tanh MLP, the unrolled form differentiates ~3x faster with
# respect to the parameters (the training step), at the same cost forward.


def _grad(u: Fn, x: jax.Array) -> jax.Array:
    # All d columns at once: one reverse pass with a cotangent of ones is the gradient
    # of sum_k u(x_k), whose row k is grad u(x_k) for a row-wise u.
    y, pullback = jax.vjp(_scalar(u, x.shape[0]), x)
    return pullback(jnp.ones_like(y))[0]


def _partial(u: Fn, x: jax.Array, i: int) -> jax.Array:
    return _dir(_scalar(u, x.shape[0]), _basis(x, i))(x)


def _partial2(u: Fn, x: jax.Array, i: int, j: int) -> jax.Array:
    f = _scalar(u, x.shape[0])
    return _dir(_dir(f, _basis(x, j)), _basis(x, i))(x)


def _laplacian(u: Fn, x: jax.Array) -> jax.Array:
    f = _scalar(u, x.shape[0])
    out = None
    for i in range(x.shape[1]):
        t = _basis(x, i)
        term = _dir(_dir(f, t), t)(x)
        out = term if out is None else out + term
    return out


def _hessian(u: Fn, x: jax.Array) -> jax.Array:
    f = _scalar(u, x.shape[0])
    d = x.shape[1]
    rows: list[list[Any]] = [[None] * d for _ in range(d)]
    for i in range(d):
        first = _dir(f, _basis(x, i))
        for j in range(i, d):
            # Symmetric: compute the upper triangle, mirror it.
            rows[i][j] = rows[j][i] = _dir(first, _basis(x, j))(x)
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def _divergence(v: Fn, x: jax.Array) -> jax.Array:
    n, d = x.shape

    def field(y: jax.Array) -> jax.Array:
        out = jnp.asarray(v(y))
        if out.shape != (n, d):
            raise ValueError(
                f"v must return a vector field of shape (n, d) = ({n}, {d}), "
                f"got output shape {out.shape}"
            )
        return out

    out = None
    for i in range(d):
        term = _dir(field, _basis(x, i))(x)[:, i]
        out = term if out is None else out + term
    return out


# ------------------------------------------------------------------- public API


def grad(u: Fn, x: Any, *, pointwise: bool = True) -> jax.Array:
    """Gradient of a scalar-output network at every point.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        pointwise: ``True`` (default) if ``u`` acts row-wise, which lets all points be
            differentiated in one batched pass; ``False`` evaluates ``u`` one point at
            a time (for networks that mix rows).

    Returns:
        ``(n, d)`` array, row ``k`` is the gradient at point ``k``.

    Raises:
        ValueError: ``x`` is not 2-D, or ``u`` does not return one scalar per point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import grad
        >>> grad(lambda x: jnp.sum(x**2, axis=1), jnp.array([[1.0, -2.0]])).tolist()
        [[2.0, -4.0]]
    """
    _check_callable(u, "u", pointwise)
    x = _points(x)
    return _grad(u, x) if pointwise else _per_point(_grad, u, x)


def partial(u: Fn, x: Any, i: int, *, pointwise: bool = True) -> jax.Array:
    """First partial derivative ``du/dx_i`` at every point, shape ``(n,)``.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        i: coordinate index (negative counts from the end, ``-1`` is the last axis).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import partial
        >>> u = lambda x: x[:, 0] * x[:, 1] ** 2
        >>> partial(u, jnp.array([[2.0, 3.0]]), 1).tolist()
        [12.0]
    """
    _check_callable(u, "u", pointwise)
    x = _points(x)
    i = _index(i, x.shape[1], "i")
    return _partial(u, x, i) if pointwise else _per_point(_partial, u, x, i)


def partial2(u: Fn, x: Any, i: int, j: int, *, pointwise: bool = True) -> jax.Array:
    """Second partial derivative ``d^2 u / (dx_i dx_j)`` at every point, shape ``(n,)``.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        i: first coordinate index.
        j: second coordinate index (``i == j`` gives ``d^2 u / dx_i^2``).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import partial2
        >>> u = lambda x: x[:, 0] ** 3 * x[:, 1]
        >>> x = jnp.array([[2.0, 5.0]])
        >>> partial2(u, x, 0, 0).tolist(), partial2(u, x, 0, 1).tolist()
        ([60.0], [12.0])
    """
    _check_callable(u, "u", pointwise)
    x = _points(x)
    i = _index(i, x.shape[1], "i")
    j = _index(j, x.shape[1], "j")
    return _partial2(u, x, i, j) if pointwise else _per_point(_partial2, u, x, i, j)


def laplacian(u: Fn, x: Any, *, pointwise: bool = True) -> jax.Array:
    """Laplacian ``sum_i d^2 u / dx_i^2`` at every point, shape ``(n,)``.

    Forward over forward mode: for each axis ``i`` a jvp of a jvp along the tiled
    tangent ``e_i``, summed over the axes. Only the Hessian diagonal is ever computed.
    A network with a ``forward_laplacian(x) -> (u, lap)`` method (``jno.nnx.MLP``)
    gets the Laplacian from that single pass instead.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import laplacian
        >>> u = lambda x: x[:, 0] ** 2 * x[:, 1] + x[:, 1] ** 3
        >>> laplacian(u, jnp.array([[1.0, 2.0]])).tolist()
        [16.0]
    """
    _check_callable(u, "u", pointwise)
    x = _points(x)
    if not pointwise:
        return _per_point(_laplacian, u, x)
    forward = _forward_laplacian_of(u)
    if forward is not None:
        return _scalar(lambda y: forward(y)[1], x.shape[0])(x)
    return _laplacian(u, x)


def _forward_laplacian_of(u: Any) -> Callable[[jax.Array], Any] | None:
    """A network's own one-pass ``forward_laplacian`` (``jno.nnx.MLP`` has one), if any.

    ``jno.nn`` wrappers expose the wrapped module as ``.module``.
    """
    for candidate in (u, getattr(u, "module", None)):
        method = getattr(candidate, "forward_laplacian", None)
        if callable(method):
            return method
    return None


def hessian(u: Fn, x: Any, *, pointwise: bool = True) -> jax.Array:
    """Hessian of a scalar-output network at every point, shape ``(n, d, d)``.

    ``hessian(u, x)[k, i, j]`` is ``d^2 u / (dx_i dx_j)`` at point ``k``. Costs
    ``d*(d+1)/2`` second-order forward passes (the upper triangle, mirrored); prefer
    :func:`laplacian` or :func:`partial2` when only some entries are needed.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import hessian
        >>> u = lambda x: x[:, 0] ** 2 * x[:, 1]
        >>> hessian(u, jnp.array([[3.0, 2.0]])).tolist()
        [[[4.0, 6.0], [6.0, 0.0]]]
    """
    _check_callable(u, "u", pointwise)
    x = _points(x)
    return _hessian(u, x) if pointwise else _per_point(_hessian, u, x)


def divergence(v: Fn, x: Any, *, pointwise: bool = True) -> jax.Array:
    """Divergence ``sum_i dv_i / dx_i`` of a vector field at every point, shape ``(n,)``.

    Args:
        v: callable mapping points ``(n, d)`` to a field of shape ``(n, d)``.
        x: points, shape ``(n, d)``.
        pointwise: see :func:`grad`.

    Raises:
        ValueError: ``x`` is not 2-D, or ``v(x)`` does not have the shape of ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import divergence
        >>> v = lambda x: jnp.stack([x[:, 0] * x[:, 1], x[:, 1] ** 2], axis=1)
        >>> divergence(v, jnp.array([[1.0, 3.0]])).tolist()
        [9.0]
    """
    _check_callable(v, "v", pointwise)
    x = _points(x)
    return _divergence(v, x) if pointwise else _per_point(_divergence, v, x)
