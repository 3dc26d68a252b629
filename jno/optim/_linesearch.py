"""A strong-Wolfe line search that keeps the value, gradient and auxiliary output it
evaluated last, so that a quasi-Newton step costs one evaluation when the first trial
step is accepted.

The bracketing phase and the zoom phase of Nocedal & Wright ("Numerical Optimization",
algorithms 3.5 and 3.6) run in one ``lax.while_loop`` with one evaluation per pass. The
zoom phase picks the minimiser of the cubic through the bracket ends (eq. 3.59),
falling back to bisection when the cubic is not usable or lands within a tenth of the
bracket of an end. Near convergence, where sufficient decrease can no longer be told
apart from rounding, the approximate Wolfe condition of Hager & Zhang (2005) is
accepted instead. A trial point whose value or slope is not finite counts as too long a
step, so NaN never becomes the result.

Example:
    >>> import jax, jax.numpy as jnp
    >>> fun = lambda p: (jnp.sum((p - 3.0) ** 2), None)
    >>> x = jnp.zeros(2)
    >>> (value, _), grad = jax.value_and_grad(fun, has_aux=True)(x)
    >>> result = strong_wolfe(fun, x, -grad, value, grad, None, init_step=1.0)
    >>> float(result.step), bool(result.failed)   # the exact minimiser along -grad
    (0.5, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["LinesearchResult", "strong_wolfe"]


class LinesearchResult(NamedTuple):
    """Outcome of :func:`strong_wolfe`.

    Attributes:
        step: the accepted step length (zero when ``failed``).
        value, grad, aux: the function's value, gradient and auxiliary output at
            ``params + step * direction``.
        evaluations: how many times the function was evaluated.
        failed: no trial step decreased the value sufficiently; the point is unchanged.
    """

    step: jax.Array
    value: jax.Array
    grad: Any
    aux: Any
    evaluations: jax.Array
    failed: jax.Array


class _Point(NamedTuple):
    step: jax.Array
    value: jax.Array
    slope: jax.Array


class _Search(NamedTuple):
    count: jax.Array
    done: jax.Array
    zooming: jax.Array
    trial: jax.Array
    low: _Point
    high: _Point
    best: _Point
    best_grad: Any
    best_aux: Any
    wolfe: jax.Array


def _cubic_minimiser(a: _Point, b: _Point) -> jax.Array:
    """The minimiser of the cubic through ``a`` and ``b`` (values and slopes), or the
    midpoint when it is not finite or not safely inside the bracket."""
    width = b.step - a.step
    d1 = a.slope + b.slope - 3.0 * (a.value - b.value) / (a.step - b.step)
    radicand = d1 * d1 - a.slope * b.slope
    d2 = jnp.sign(width) * jnp.sqrt(jnp.maximum(radicand, 0.0))
    step = b.step - width * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2)
    lo, hi = jnp.minimum(a.step, b.step), jnp.maximum(a.step, b.step)
    margin = 0.1 * (hi - lo)
    usable = (radicand >= 0) & jnp.isfinite(step) & (step > lo + margin) & (step < hi - margin)
    return jnp.where(usable, step, 0.5 * (a.step + b.step))


def strong_wolfe(
    fun: Callable[[Any], tuple[jax.Array, Any]],
    params: Any,
    direction: Any,
    value: jax.Array,
    grad: Any,
    aux: Any,
    *,
    init_step: jax.Array | float,
    max_evaluations: int = 25,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float = 1e-6,
    increase_factor: float = 2.0,
) -> LinesearchResult:
    """Finds a step along ``direction`` that satisfies the strong Wolfe conditions.

    Args:
        fun: ``params -> (value, aux)``, differentiated with
            ``jax.value_and_grad(has_aux=True)``.
        params: the current point (a pytree).
        direction: a descent direction (``<grad, direction> < 0``), same structure.
        value, grad, aux: ``fun``'s value, gradient and auxiliary output at ``params``
            (returned unchanged when the search fails).
        init_step: the first trial step (1 for a quasi-Newton direction).
        max_evaluations: evaluations allowed before giving up.
        slope_rtol: sufficient-decrease constant ``c1``.
        curv_rtol: curvature constant ``c2`` (0.9 for quasi-Newton methods).
        approx_dec_rtol: relative change of the value below which the approximate
            Wolfe condition replaces sufficient decrease.
        increase_factor: growth of the trial step while the minimum is not bracketed.

    Returns:
        A :class:`LinesearchResult`; with no sufficient decrease found it is the
        starting point with ``step = 0`` and ``failed = True``.
    """
    value_and_grad = jax.value_and_grad(fun, has_aux=True)
    dtype = jnp.result_type(value)
    # The value's dtype rules the search (float32 parameters may feed a float64 loss).
    slope0 = optax.tree.vdot(grad, direction).astype(dtype)
    zero = jnp.zeros((), dtype)
    start = _Point(zero, value, slope0)
    tol = approx_dec_rtol * jnp.abs(value)

    def cond(search: _Search) -> jax.Array:
        return ~search.done

    def body(search: _Search) -> _Search:
        step = search.trial
        trial_params = jax.tree.map(lambda p, d: p + step.astype(p.dtype) * d, params, direction)
        (f, trial_aux), g = value_and_grad(trial_params)
        slope = optax.tree.vdot(g, direction)
        finite = jnp.isfinite(f) & jnp.isfinite(slope)
        f = jnp.where(finite, f, jnp.inf).astype(dtype)
        slope = jnp.where(finite, slope, jnp.inf).astype(dtype)
        point = _Point(step, f, slope)
        decrease = (f <= value + slope_rtol * step * slope0) | (
            (f <= value + tol) & (slope <= (2.0 * slope_rtol - 1.0) * slope0)
        )
        decrease = decrease & finite
        curvature = jnp.abs(slope) <= -curv_rtol * slope0
        wolfe = decrease & curvature
        better = wolfe | (decrease & (f < search.best.value) & ~search.wolfe)
        best = jax.tree.map(lambda a, b: jnp.where(better, a, b), point, search.best)
        best_grad = jax.tree.map(lambda a, b: jnp.where(better, a, b), g, search.best_grad)
        best_aux = jax.tree.map(lambda a, b: jnp.where(better, a, b), trial_aux, search.best_aux)

        low, high = search.low, search.high
        too_long = ~decrease | (f >= low.value) & ((search.count > 0) | search.zooming)
        # Bracketing: [low, point] brackets a minimum when the step is too long, and
        # [point, low] when the slope turned positive; otherwise grow the step.
        # Zooming: point replaces the end that keeps a minimum inside the bracket.
        turned = ~too_long & ~curvature & (slope * (high.step - low.step) >= 0)
        bracket_turned = ~too_long & ~curvature & (slope >= 0)
        new_high = jnp.where(
            search.zooming,
            jnp.where(too_long, 1, jnp.where(turned, 2, 0)),
            jnp.where(too_long, 1, jnp.where(bracket_turned, 2, 0)),
        )
        high = jax.tree.map(
            lambda p, lo, hi: jnp.select([new_high == 1, new_high == 2], [p, lo], hi),
            point,
            low,
            high,
        )
        low = jax.tree.map(lambda p, lo: jnp.where(too_long, lo, p), point, low)
        zooming = search.zooming | too_long | bracket_turned
        count = search.count + 1
        interval = jnp.abs(high.step - low.step)
        collapsed = zooming & (interval <= 1e-12 * jnp.maximum(high.step, low.step))
        done = wolfe | (count >= max_evaluations) | collapsed
        trial = jnp.where(zooming, _cubic_minimiser(low, high), increase_factor * step)
        return _Search(
            count=count,
            done=done,
            zooming=zooming,
            trial=trial,
            low=low,
            high=high,
            best=best,
            best_grad=best_grad,
            best_aux=best_aux,
            wolfe=search.wolfe | wolfe,
        )

    init = _Search(
        count=jnp.zeros((), jnp.int32),
        done=~(jnp.isfinite(value) & (slope0 < 0)),
        zooming=jnp.asarray(False),
        trial=jnp.asarray(init_step, dtype),
        low=start,
        high=start,
        best=start,
        best_grad=grad,
        best_aux=aux,
        wolfe=jnp.asarray(False),
    )
    search = jax.lax.while_loop(cond, body, init)
    return LinesearchResult(
        step=search.best.step,
        value=search.best.value,
        grad=search.best_grad,
        aux=search.best_aux,
        evaluations=search.count,
        failed=search.best.step <= 0,
    )
