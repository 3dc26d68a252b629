"""Gauss-Newton methods for residual least squares: Levenberg-Marquardt and ENGD.

The objective is a sum of squares ``f(p) = ||r(p)||^2`` of a residual vector ``r`` of
``m`` entries (a trainer's weighted losses ``sum_t w_t mean(r_t^2)`` are one, with
entries ``sqrt(w_t / (n_t k_t)) r_t``). With the Jacobian ``J = dr/dp`` (``m x P``),
one update solves a damped Gauss-Newton system

    ``(J^T J + lambda I) d = -J^T r``

four ways (``solver``, :mod:`jno.optim._gauss_newton_solvers`):

* ``"parameters"``: the ``P x P`` matrix ``J^T J`` and its eigendecomposition, so that
  every damping tried in one update costs two matrix-vector products. Per iteration:
  ``O(m P^2 + P^3)`` time, ``m P + P^2`` numbers.
* ``"samples"``: the Woodbury form ``d = -J^T (J J^T + lambda I)^{-1} r`` with the
  ``m x m`` matrix ``J J^T``: ``O(m^2 P + m^3)`` time, ``m P + m^2`` numbers; the
  cheaper one when there are fewer residuals than parameters.
* ``"cg"``: matrix-free conjugate gradients on ``(J^T J + lambda I) d = -J^T r``, with
  ``J v`` and ``J^T u`` by forward and reverse mode through one linearization:
  ``cg_steps`` of each per damping tried, ``O(m + P)`` numbers besides the network's
  own activations.
* ``"svd"``: the thin singular value decomposition of ``J`` itself,
  ``d = -V diag(s / (s^2 + lambda)) U^T r``: ``O(m P min(m, P))`` time, a few times the
  normal equations' on a CPU, but no squared condition number: directions with singular
  values down to machine precision stay resolved (ENGD's default).

``"auto"`` picks ``"parameters"`` when ``P <= m``, else ``"samples"``. A memory guard
refuses, when the residual count is known (the first update is traced), a Jacobian and
matrix above ``max_bytes``, naming ``"cg"`` as the way out.

:func:`levenberg_marquardt` adapts the damping by the ratio ``rho`` of the actual to the
predicted decrease (Nielsen 1999): a step with ``rho > 0`` is taken and ``lambda`` is
multiplied by ``max(1/3, 1 - (2 rho - 1)^3)``; otherwise ``lambda`` grows by a factor
``nu`` that doubles each time, and the same update tries again (up to ``max_tries``).
:func:`engd` (energy natural gradient, Müller & Zeinhofer 2023) takes the undamped
Gauss-Newton direction (the pseudo-inverse of ``J``, singular values below ``rcond``
times the largest dropped, as ``lstsq`` does) and the best step of a logarithmic grid
``2^-k``.

Both are optax ``GradientTransformationExtraArgs`` on any pytree:
``update(updates, state, params, *, residual_fn, jacobian_fn=None)``, with
``residual_fn(params) -> (m,)``. ``jacobian_fn(params)``, when given, returns the
Jacobian as a pytree like ``params`` whose leaves have a leading axis of ``m`` (what
``jax.jacrev`` returns); without it ``jax.jacfwd`` builds it. A trainer passes both
(its Jacobian from per-point gradients).

Example:
    >>> import jax.numpy as jnp, optax
    >>> residual = lambda p: jnp.stack([10 * (p["x"][1] - p["x"][0] ** 2), 1 - p["x"][0]])
    >>> tx = levenberg_marquardt()
    >>> params = {"x": jnp.array([-1.2, 1.0])}
    >>> state = tx.init(params)
    >>> for _ in range(30):
    ...     updates, state = tx.update(params, state, params, residual_fn=residual)
    ...     params = optax.apply_updates(params, updates)
    >>> [round(float(v), 6) for v in params["x"]]
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jno.optim._gauss_newton_solvers import (
    SOLVERS,
    flat_problem,
    linearize,
)
from jno.optim._quasi_newton import DEFAULT_MAX_HESSIAN_BYTES

__all__ = [
    "SOLVERS",
    "LeastSquares",
    "LeastSquaresState",
    "engd",
    "levenberg_marquardt",
]


class LeastSquaresState(NamedTuple):
    """State of :func:`levenberg_marquardt` and :func:`engd`.

    Attributes:
        count: updates that took a step (int32).
        damping: the damping ``lambda`` the next update starts from (ENGD: its fixed
            regularisation).
        growth: the factor ``nu`` by which a rejected step raises the damping.
        value: ``||r||^2`` at the parameters the last update returned.
        learning_rate: the step length taken (LM: 1 or 0; ENGD: the grid's best).
        evaluations: residual evaluations of the last update (the tries or the grid).
        rejections: updates that found no decrease (the parameters stayed).
    """

    count: jax.Array
    damping: jax.Array
    growth: jax.Array
    value: jax.Array
    learning_rate: jax.Array
    evaluations: jax.Array
    rejections: jax.Array


class LeastSquares(optax.GradientTransformationExtraArgs):
    """The transformation type of :func:`levenberg_marquardt` and :func:`engd`:
    ``update(updates, state, params, *, residual_fn, jacobian_fn=None)``; ``updates``
    is not read (the gradient is ``2 J^T r``). A trainer recognises the type and passes
    its residual vector."""

    __slots__ = ()


def _check_positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _check_positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _check_solver(solver: Any) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    return solver


def _linearized(method, params, residual_fn, jacobian_fn, solver, rcond, cg_steps, max_bytes):
    """Flat parameters, their unravel, the residual of a flat vector and the
    linearized system at the parameters."""
    if params is None:
        raise ValueError(f"{method} needs params: tx.update(g, state, params, ...)")
    x, unravel, residual_of, jacobian_of = flat_problem(params, residual_fn, jacobian_fn)
    system = linearize(method, solver, residual_of, x, jacobian_of, rcond, cg_steps, max_bytes)
    return x, unravel, residual_of, system


def _init_state(params: Any, damping: float) -> LeastSquaresState:
    x, _ = ravel_pytree(params)
    value_dtype = jnp.promote_types(x.dtype, jnp.asarray(0.0).dtype)
    return LeastSquaresState(
        count=jnp.zeros((), jnp.int32),
        damping=jnp.asarray(damping, value_dtype),
        growth=jnp.asarray(2.0, value_dtype),
        value=jnp.asarray(jnp.inf, value_dtype),
        learning_rate=jnp.zeros((), value_dtype),
        evaluations=jnp.zeros((), jnp.int32),
        rejections=jnp.zeros((), jnp.int32),
    )


def levenberg_marquardt(
    damping: float = 1e-3,
    *,
    solver: str = "auto",
    max_tries: int = 10,
    cg_steps: int = 50,
    min_damping: float = 1e-12,
    max_bytes: int = DEFAULT_MAX_HESSIAN_BYTES,
) -> LeastSquares:
    """Levenberg-Marquardt on a residual vector, an optax transformation.

    Each update linearizes the residual once, then tries dampings from the current one
    until a step decreases ``||r||^2`` (see the module for the rule and the solvers).
    Without a decrease in ``max_tries`` tries the parameters stay, the damping keeps
    its raised value and ``rejections`` counts it.

    Args:
        damping: the initial ``lambda``.
        solver: one of :data:`SOLVERS`.
        max_tries: dampings tried per update (each one residual evaluation).
        cg_steps: conjugate-gradient iterations per damping (``solver="cg"``).
        min_damping: the damping never falls below it (a floor against exact
            singularity of ``J^T J``).
        max_bytes: the dense solvers refuse a Jacobian and matrix larger than this.

    Raises:
        ValueError: a bad argument, naming it; when the first update is traced, a
            dense system above ``max_bytes``.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = levenberg_marquardt(1e-2)
        >>> state = tx.init(jnp.zeros(2))
        >>> residual = lambda p: p - jnp.array([3.0, -1.0])
        >>> updates, state = tx.update(None, state, jnp.zeros(2), residual_fn=residual)
        >>> [round(float(u), 3) for u in updates], int(state.count)
        ([2.97, -0.99], 1)
    """
    damping = _check_positive("damping", damping)
    solver = _check_solver(solver)
    max_tries = _check_positive_int("max_tries", max_tries)
    cg_steps = _check_positive_int("cg_steps", cg_steps)
    min_damping = _check_positive("min_damping", min_damping)
    max_bytes = _check_positive_int("max_bytes", max_bytes)

    def init_fn(params: Any) -> LeastSquaresState:
        return _init_state(params, max(damping, min_damping))

    def update_fn(
        updates: Any,
        state: LeastSquaresState,
        params: Any = None,
        *,
        residual_fn: Callable[[Any], jax.Array],
        jacobian_fn: Callable[[Any], Any] | None = None,
        **extra_args: Any,
    ) -> tuple[Any, LeastSquaresState]:
        del updates, extra_args
        x, unravel, residual_of, system = _linearized(
            "levenberg_marquardt", params, residual_fn, jacobian_fn, solver, None, cg_steps,
            max_bytes,
        )  # fmt: skip
        r = system.residual
        dtype = state.value.dtype
        value = jnp.vdot(r, r).astype(dtype)

        def attempt(carry):
            lam, nu, _, _, _, tries = carry
            d = system.solve(lam.astype(x.dtype))
            trial = residual_of(x + d)
            new_value = jnp.vdot(trial, trial).astype(dtype)
            model = r + system.jvp(d)
            predicted = value - jnp.vdot(model, model).astype(dtype)
            rho = (value - new_value) / jnp.where(predicted > 0, predicted, 1.0)
            ok = jnp.isfinite(new_value) & (predicted > 0) & (rho > 0)
            shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            lam = jnp.where(ok, jnp.maximum(lam * shrink, min_damping), lam * nu)
            nu = jnp.where(ok, 2.0, 2.0 * nu)
            return lam, nu, ok, d, new_value, tries + 1

        def more(carry):
            ok, tries = carry[2], carry[5]
            return ~ok & (tries < max_tries)

        start = (state.damping, state.growth, jnp.asarray(False), jnp.zeros_like(x), value, 0)
        lam, nu, ok, d, new_value, tries = jax.lax.while_loop(more, attempt, start)
        step = jnp.where(ok, d, 0.0)
        new_state = LeastSquaresState(
            count=state.count + ok.astype(jnp.int32),
            damping=lam,
            growth=nu,
            value=jnp.where(ok, new_value, value),
            learning_rate=ok.astype(dtype),
            evaluations=jnp.asarray(tries, jnp.int32),
            rejections=state.rejections + (~ok).astype(jnp.int32),
        )
        return unravel(step), new_state

    return LeastSquares(init_fn, update_fn)


def engd(
    *,
    grid: int = 31,
    rcond: float | None = 1e-8,
    damping: float = 0.0,
    solver: str = "svd",
    cg_steps: int = 50,
    max_bytes: int = DEFAULT_MAX_HESSIAN_BYTES,
) -> LeastSquares:
    """Energy natural gradient descent (Müller & Zeinhofer 2023), an optax
    transformation.

    The direction is the Gauss-Newton one, ``d = -(J^T J)^+ J^T r`` (for a linear PDE
    operator ``J^T J`` is the energy Gramian); the step is the best of ``2^-k`` for
    ``k = 0 .. grid - 1`` (all evaluated at once). A grid with no decrease leaves the
    parameters and counts a rejection.

    Args:
        grid: step lengths tried (``1, 1/2, ..., 2^-(grid - 1)``).
        rcond: singular values of ``J`` at or below ``rcond`` times the largest are
            dropped (dense solvers; None: machine epsilon times ``max(m, P)``, as
            ``lstsq``). On the Poisson problem of ``benchmarks/engd_peer.py`` the
            default 1e-8 reached 7e-9 in 200 steps, 1e-6 stopped at 5e-6, and None
            took no step from a random start: the full pseudo-inverse's steps are too
            long for the grid.
        damping: a Tikhonov term added to the Gramian (0: the pseudo-inverse alone;
            ``solver="cg"`` needs it positive).
        solver: one of :data:`SOLVERS`; ``"svd"`` keeps the directions of the
            smallest singular values that the normal equations lose.
        cg_steps: conjugate-gradient iterations (``solver="cg"``).
        max_bytes: the dense solvers refuse a Jacobian and matrix larger than this.

    Raises:
        ValueError: a bad argument, naming it.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = engd()
        >>> state = tx.init(jnp.zeros(2))
        >>> residual = lambda p: 2.0 * p - jnp.array([3.0, -1.0])
        >>> updates, state = tx.update(None, state, jnp.zeros(2), residual_fn=residual)
        >>> [round(float(u), 3) for u in updates], float(state.learning_rate)
        ([1.5, -0.5], 1.0)
    """
    grid = _check_positive_int("grid", grid)
    rcond = "eps" if rcond is None else _check_positive("rcond", rcond)
    solver = _check_solver(solver)
    if isinstance(damping, bool) or not (float(damping) >= 0 and math.isfinite(float(damping))):
        raise ValueError(f"damping must be a finite number >= 0, got {damping!r}")
    if solver == "cg" and not float(damping) > 0:
        raise ValueError(f"solver='cg' needs damping > 0, got damping={damping!r}")
    cg_steps = _check_positive_int("cg_steps", cg_steps)
    max_bytes = _check_positive_int("max_bytes", max_bytes)

    def init_fn(params: Any) -> LeastSquaresState:
        return _init_state(params, float(damping))

    def update_fn(
        updates: Any,
        state: LeastSquaresState,
        params: Any = None,
        *,
        residual_fn: Callable[[Any], jax.Array],
        jacobian_fn: Callable[[Any], Any] | None = None,
        **extra_args: Any,
    ) -> tuple[Any, LeastSquaresState]:
        del updates, extra_args
        x, unravel, residual_of, system = _linearized(
            "engd", params, residual_fn, jacobian_fn, solver, rcond, cg_steps, max_bytes
        )
        dtype = state.value.dtype
        value = jnp.vdot(system.residual, system.residual).astype(dtype)
        d = system.solve(state.damping.astype(x.dtype))
        steps = 0.5 ** jnp.arange(grid, dtype=x.dtype)
        trials = jax.vmap(lambda eta: residual_of(x + eta * d))(steps)
        values = jnp.sum(trials * trials, axis=1).astype(dtype)
        values = jnp.where(jnp.isfinite(values), values, jnp.inf)
        best = jnp.argmin(values)
        ok = values[best] < value
        eta = jnp.where(ok, steps[best], 0.0)
        new_state = LeastSquaresState(
            count=state.count + ok.astype(jnp.int32),
            damping=state.damping,
            growth=state.growth,
            value=jnp.where(ok, values[best], value),
            learning_rate=eta.astype(dtype),
            evaluations=jnp.asarray(grid, jnp.int32),
            rejections=state.rejections + (~ok).astype(jnp.int32),
        )
        return unravel(eta * d), new_state

    return LeastSquares(init_fn, update_fn)
