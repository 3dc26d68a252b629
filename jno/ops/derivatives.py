"""The differential operators of :mod:`jno.ops` (re-exported there): gradient, partial
derivatives, Laplacian, Hessian and divergence of a network at a batch of points, on
the shared Taylor-mode pass of :class:`~jno.nnx.JetModule` networks or by autodiff.
See :mod:`jno.ops` for how derivatives are taken."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx.networks._sharing import Request, planned_jet, run_shared
from jno.nnx.networks.jets import Jet
from jno.ops._paths import (
    Fn,
    as_points,
    autodiff_divergence,
    autodiff_grad,
    autodiff_hessian,
    autodiff_laplacian,
    autodiff_partial,
    autodiff_partial2,
    axis_index,
    check_callable,
    column,
    columns_of,
    divergence_columns,
    from_jet,
    jet_module,
    per_point,
    resolve_output,
    select,
)

__all__ = [
    "divergence",
    "grad",
    "hessian",
    "laplacian",
    "partial",
    "partial2",
    "share_derivatives",
]

# ------------------------------------------------------------------- public API


def grad(u: Fn, x: Any, *, output: int | str | None = None, pointwise: bool = True) -> jax.Array:
    """Gradient of a scalar-output network at every point.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        output: For a network with several outputs, the output column to differentiate
            (or, for a :class:`FieldSet`, a field name); None for one output. A
            :class:`Field` is already one output.
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
    check_callable(u, "u", pointwise)
    u, output = resolve_output(u, output)
    x = as_points(x)
    if not pointwise:
        return per_point(autodiff_grad, select(u, output), x)
    module = jet_module(u)
    if module is not None:
        # One reverse pass beats d forward tangents, unless the other operators on
        # these points already propagate all of them.
        jet = planned_jet(module, x)
        if jet is not None and set(range(x.shape[1])) <= jet.first.keys():
            return from_jet(
                module,
                x,
                Request.of(first=range(x.shape[1])),
                lambda jet: jnp.stack(
                    [column(jet, jet.first[i], output) for i in range(x.shape[1])], -1
                ),
                x.shape,
                columns=columns_of(output),
            )
    return autodiff_grad(select(u, output), x)


def partial(
    u: Fn, x: Any, i: int, *, output: int | str | None = None, pointwise: bool = True
) -> jax.Array:
    """First partial derivative ``du/dx_i`` at every point, shape ``(n,)``.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        i: coordinate index (negative counts from the end, ``-1`` is the last axis).
        output: the output column or field name (see :func:`grad`).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import partial
        >>> u = lambda x: x[:, 0] * x[:, 1] ** 2
        >>> partial(u, jnp.array([[2.0, 3.0]]), 1).tolist()
        [12.0]
    """
    check_callable(u, "u", pointwise)
    u, output = resolve_output(u, output)
    x = as_points(x)
    i = axis_index(i, x.shape[1], "i")
    if not pointwise:
        return per_point(autodiff_partial, select(u, output), x, i)
    module = jet_module(u)
    if module is None:
        return autodiff_partial(select(u, output), x, i)
    pick = lambda jet: column(jet, jet.first[i], output)
    request = Request.of(first=(i,))
    return from_jet(module, x, request, pick, (x.shape[0],), columns=columns_of(output))


def partial2(
    u: Fn, x: Any, i: int, j: int, *, output: int | str | None = None, pointwise: bool = True
) -> jax.Array:
    """Second partial derivative ``d^2 u / (dx_i dx_j)`` at every point, shape ``(n,)``.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        i: first coordinate index.
        j: second coordinate index (``i == j`` gives ``d^2 u / dx_i^2``).
        output: the output column or field name (see :func:`grad`).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import partial2
        >>> u = lambda x: x[:, 0] ** 3 * x[:, 1]
        >>> x = jnp.array([[2.0, 5.0]])
        >>> partial2(u, x, 0, 0).tolist(), partial2(u, x, 0, 1).tolist()
        ([60.0], [12.0])
    """
    check_callable(u, "u", pointwise)
    u, output = resolve_output(u, output)
    x = as_points(x)
    i = axis_index(i, x.shape[1], "i")
    j = axis_index(j, x.shape[1], "j")
    if not pointwise:
        return per_point(autodiff_partial2, select(u, output), x, i, j)
    module = jet_module(u)
    if module is None:
        return autodiff_partial2(select(u, output), x, i, j)
    pair = (min(i, j), max(i, j))
    pick = lambda jet: column(jet, jet.second[pair], output)
    request = Request.of(second=(pair,))
    return from_jet(module, x, request, pick, (x.shape[0],), columns=columns_of(output))


def laplacian(
    u: Fn, x: Any, *, output: int | str | None = None, pointwise: bool = True
) -> jax.Array:
    """Laplacian ``sum_i d^2 u / dx_i^2`` at every point, shape ``(n,)``.

    A :class:`~jno.nnx.JetModule` network propagates the Laplacian itself through its
    layers with the first derivatives it needs, in one pass (forward Laplacian); any
    other ``u`` takes, for each axis ``i``, a jvp of a jvp along the tiled tangent
    ``e_i``, summed over the axes. Only the Hessian diagonal is ever computed.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        output: the output column or field name (see :func:`grad`).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import laplacian
        >>> u = lambda x: x[:, 0] ** 2 * x[:, 1] + x[:, 1] ** 3
        >>> laplacian(u, jnp.array([[1.0, 2.0]])).tolist()
        [16.0]
    """
    check_callable(u, "u", pointwise)
    u, output = resolve_output(u, output)
    x = as_points(x)
    if not pointwise:
        return per_point(autodiff_laplacian, select(u, output), x)
    module = jet_module(u)
    if module is None:
        return autodiff_laplacian(select(u, output), x)
    pick = lambda jet: column(jet, jet.laplacian, output)
    request = Request.of(laplacian=True)
    return from_jet(module, x, request, pick, (x.shape[0],), columns=columns_of(output))


def hessian(u: Fn, x: Any, *, output: int | str | None = None, pointwise: bool = True) -> jax.Array:
    """Hessian of a scalar-output network at every point, shape ``(n, d, d)``.

    ``hessian(u, x)[k, i, j]`` is ``d^2 u / (dx_i dx_j)`` at point ``k``. Costs
    ``d*(d+1)/2`` second-order forward passes (the upper triangle, mirrored); prefer
    :func:`laplacian` or :func:`partial2` when only some entries are needed.

    Args:
        u: callable mapping points ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: points, shape ``(n, d)``.
        output: the output column or field name (see :func:`grad`).
        pointwise: see :func:`grad`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.ops import hessian
        >>> u = lambda x: x[:, 0] ** 2 * x[:, 1]
        >>> hessian(u, jnp.array([[3.0, 2.0]])).tolist()
        [[[4.0, 6.0], [6.0, 0.0]]]
    """
    check_callable(u, "u", pointwise)
    u, output = resolve_output(u, output)
    x = as_points(x)
    if not pointwise:
        return per_point(autodiff_hessian, select(u, output), x)
    module = jet_module(u)
    if module is None:
        return autodiff_hessian(select(u, output), x)
    n, d = x.shape
    pairs = [(i, j) for i in range(d) for j in range(i, d)]

    def pick(jet: Jet) -> jax.Array:
        rows = [
            [column(jet, jet.second[(min(i, j), max(i, j))], output) for j in range(d)]
            for i in range(d)
        ]
        return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)

    request = Request.of(second=pairs)
    return from_jet(module, x, request, pick, (n, d, d), columns=columns_of(output))


def divergence(
    v: Fn, x: Any, *, outputs: Sequence[int | str] | None = None, pointwise: bool = True
) -> jax.Array:
    """Divergence ``sum_i dv_i / dx_i`` of a vector field at every point, shape ``(n,)``.

    Args:
        v: callable mapping points ``(n, d)`` to a field of shape ``(n, d)``.
        x: points, shape ``(n, d)``.
        outputs: For a network with several outputs, the ``d`` output columns (or
            field names of a :class:`FieldSet`) that form the vector field, one per
            coordinate (``("u", "v")`` of ``(u, v, p)``); None: every output.
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
    check_callable(v, "v", pointwise)
    x = as_points(x)
    n, d = x.shape
    v, cols = divergence_columns(v, outputs, d)
    if not pointwise:
        return per_point(autodiff_divergence, v, x, cols)
    module = jet_module(v)
    if module is None:
        return autodiff_divergence(v, x, cols)
    take = range(d) if cols is None else cols

    def pick(jet: Jet) -> jax.Array:
        return sum(jet.full(jet.first[i])[:, k] for i, k in enumerate(take))

    request = Request.of(first=range(d))
    return from_jet(module, x, request, pick, (n,), outputs=d, columns=cols or ())


def share_derivatives(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Makes the operators inside ``fn`` share one derivative pass per network and points.

    Inside the returned function, every operator of this module called on the same
    :class:`~jno.nnx.JetModule` network and the same points array (the same object),
    and the network's own value at those points, come from one forward pass that
    propagates all of them together: for Burgers' ``u_t + u u_x - nu u_xx`` that is one
    pass carrying ``u``, ``u_x``, ``u_t`` and ``u_xx`` instead of four. ``fn`` runs twice
    while it is traced (first to record what is asked, then for real), so it must not
    change its inputs: a loss function. The ``Trainer`` and ``jno.core`` run
    ``losses`` and the terms this way already; use it for a hand-written training step.

    Args:
        fn: a function of networks and points that calls operators of this module.

    Returns:
        ``fn`` with shared derivatives; same signature and results.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from flax import nnx
        >>> from jno import ops
        >>> from jno.nnx import MLP
        >>> net = MLP(2, [8], 1, rngs=nnx.Rngs(0))
        >>> def residual(net, x):  # Burgers, nu = 0.01
        ...     u_x = ops.partial(net, x, 0)
        ...     u = net(x)[:, 0]
        ...     return ops.partial(net, x, 1) + u * u_x - 0.01 * ops.partial2(net, x, 0, 0)
        >>> x = jnp.array([[0.1, 0.2], [0.3, 0.4]])
        >>> bool(jnp.allclose(ops.share_derivatives(residual)(net, x), residual(net, x)))
        True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")

    @functools.wraps(fn)
    def shared(*args: Any, **kwargs: Any) -> Any:
        return run_shared(fn, *args, **kwargs)

    return shared
