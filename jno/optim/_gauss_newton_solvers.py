"""The linear algebra of one Gauss-Newton update (see :mod:`jno.optim._least_squares`):
the residual and Jacobian of flat parameters, and the damped normal equations solved
four ways (``"parameters"``, ``"samples"``, ``"svd"``, ``"cg"``), with the memory guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["SOLVERS", "System", "check_memory", "flat_problem", "linearize", "resolve_solver"]

#: The ways a Gauss-Newton system is solved (see :mod:`jno.optim._least_squares`).
SOLVERS = ("auto", "parameters", "samples", "svd", "cg")


class System(NamedTuple):
    """A linearized least-squares problem at ``x``: its residual and how to solve the
    damped normal equations for a given damping."""

    residual: jax.Array
    gradient: jax.Array  # J^T r
    solve: Callable[[jax.Array], jax.Array]  # lambda -> d with (J^T J + lambda) d = -J^T r
    jvp: Callable[[jax.Array], jax.Array]  # v -> J v


def resolve_solver(solver: str, residuals: int, parameters: int) -> str:
    """The solver ``"auto"`` stands for: ``"parameters"`` when ``P <= m``, else
    ``"samples"``.

    Example:
        >>> resolve_solver("auto", 8000, 900), resolve_solver("auto", 500, 900)
        ('parameters', 'samples')
    """
    if solver != "auto":
        return solver
    return "parameters" if parameters <= residuals else "samples"


def check_memory(method: str, solver: str, residuals: int, parameters: int, dtype, limit: int):
    """Refuse a dense solver whose Jacobian and matrix need more than ``limit`` bytes.

    Example:
        >>> check_memory("levenberg_marquardt", "parameters", 10_000, 5_000, "float64", 2**29)
        Traceback (most recent call last):
        ...
        ValueError: levenberg_marquardt with solver='parameters' keeps a 10000 x 5000 Jacobian ...
    """
    if solver == "cg":
        return
    side = parameters if solver in ("parameters", "svd") else residuals
    itemsize = jnp.dtype(dtype).itemsize
    copies = 2 if solver == "svd" else 1  # the Jacobian and U
    need = (copies * residuals * parameters + side * side) * itemsize
    if need > limit:
        raise ValueError(
            f"{method} with solver={solver!r} keeps a {residuals} x {parameters} Jacobian "
            f"and a {side} x {side} matrix: {need / 2**30:.2f} GiB in {jnp.dtype(dtype).name}, "
            f"above max_bytes={limit} ({limit / 2**30:.2f} GiB). Use solver='cg' "
            "(matrix-free, O(m + P) memory), fewer residual points, or raise max_bytes "
            "if the device has the memory."
        )


def _flat_jacobian(jacobian: Any, m: int) -> jax.Array:
    """A Jacobian pytree (leaves with a leading residual axis) as an ``m x P`` matrix in
    the order of ``ravel_pytree``."""
    leaves = jax.tree.leaves(jacobian)
    return jnp.concatenate([jnp.reshape(leaf, (m, -1)) for leaf in leaves], axis=1)


def linearize(
    method: str,
    solver: str,
    residual_of: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    jacobian_of: Callable[[jax.Array], jax.Array] | None,
    rcond: float | str | None,
    cg_steps: int,
    max_bytes: int,
) -> System:
    """The residual at ``x`` and a solver of the damped normal equations there."""
    m, p = jax.eval_shape(residual_of, x).shape[0], x.shape[0]
    solver = resolve_solver(solver, m, p)
    check_memory(method, solver, m, p, x.dtype, max_bytes)
    if solver == "cg":
        r, jvp = jax.linearize(residual_of, x)
        transpose = jax.linear_transpose(jvp, x)
        g = transpose(r)[0]

        def solve(damping):
            def normal(v):
                return transpose(jvp(v))[0] + damping * v

            return _conjugate_gradients(normal, -g, cg_steps)

        return System(r, g, solve, jvp)

    r = residual_of(x)
    jac = jacobian_of(x) if jacobian_of is not None else jax.jacfwd(residual_of)(x)
    g = jac.T @ r
    eps = jnp.finfo(x.dtype).eps * max(m, p)
    cutoff = None if rcond is None else (eps if rcond == "eps" else rcond)
    if solver == "svd":
        u, sing, vt = jnp.linalg.svd(jac, full_matrices=False)
        projected = u.T @ r
        keep = sing > (0.0 if cutoff is None else cutoff) * sing[0]

        def solve(damping):
            shrink = jnp.where(keep, sing / jnp.where(keep, sing**2 + damping, 1.0), 0.0)
            return -(vt.T @ (shrink * projected))

        return System(r, g, solve, lambda v: jac @ v)
    # The normal equations square the singular values, and their eigenvalues carry an
    # absolute error of about eps times the largest: the cutoff is the larger of both.
    cutoff = None if cutoff is None else jnp.maximum(cutoff**2, eps)
    if solver == "parameters":
        values, vectors = jnp.linalg.eigh(jac.T @ jac)
        projected = vectors.T @ g

        def solve(damping):
            return -(vectors @ (_inverse(values, damping, cutoff) * projected))

    else:
        values, vectors = jnp.linalg.eigh(jac @ jac.T)
        projected = vectors.T @ r

        def solve(damping):
            return -(jac.T @ (vectors @ (_inverse(values, damping, cutoff) * projected)))

    return System(r, g, solve, lambda v: jac @ v)


def _inverse(values: jax.Array, damping: jax.Array, rcond: float | None) -> jax.Array:
    """``1 / (values + damping)``; with ``rcond``, zero for eigenvalues at or below
    ``rcond`` times the largest (a pseudo-inverse)."""
    values = jnp.maximum(values, 0.0)
    shifted = values + damping
    inverse = jnp.where(shifted > 0, 1.0 / jnp.where(shifted > 0, shifted, 1.0), 0.0)
    if rcond is None:
        return inverse
    return jnp.where(values > rcond * jnp.max(values), inverse, 0.0)


def _conjugate_gradients(apply: Callable, b: jax.Array, steps: int) -> jax.Array:
    """``steps`` conjugate-gradient iterations on ``apply(x) = b`` from zero (a fixed
    count, so that the cost and the result are the same every run)."""

    def body(_, state):
        x, r, d, rr = state
        ad = apply(d)
        curvature = jnp.vdot(d, ad)
        alpha = jnp.where(curvature > 0, rr / jnp.where(curvature > 0, curvature, 1.0), 0.0)
        x, r = x + alpha * d, r - alpha * ad
        rr_new = jnp.vdot(r, r)
        beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1.0), 0.0)
        return x, r, r + beta * d, rr_new

    zero = jnp.zeros_like(b)
    return jax.lax.fori_loop(0, steps, body, (zero, b, b, jnp.vdot(b, b)))[0]


def flat_problem(params: Any, residual_fn: Callable, jacobian_fn: Callable | None):
    """Flat parameters, their unravel, and the residual and Jacobian of flat vectors."""
    x, unravel = ravel_pytree(params)

    def residual_of(v):
        return jnp.reshape(residual_fn(unravel(v)), (-1,))

    jacobian_of = None
    if jacobian_fn is not None:

        def jacobian_of(v):
            jac = jacobian_fn(unravel(v))
            m = jax.tree.leaves(jac)[0].shape[0]
            return _flat_jacobian(jac, m).astype(v.dtype)

    return x, unravel, residual_of, jacobian_of
