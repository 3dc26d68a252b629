"""Dense quasi-Newton optimizers as optax transformations: BFGS, SSBFGS and SSBroyden.

Small PINNs (a few thousand parameters) trained in float64 reach far lower errors with a
dense quasi-Newton method and a strong-Wolfe line search than with Adam or L-BFGS
(Urbán, Stefanou & Pons, J. Comput. Phys. 2024; Kiyani et al. 2025). One update is:

1. the direction ``d = -H g`` (steepest descent when ``H`` is the identity or ``d`` is
   not a descent direction, with a first step of ``min(1, 1 / ||g||)``);
2. a strong-Wolfe line search along ``d`` (:func:`~jno.optim._linesearch.strong_wolfe`);
3. the inverse-Hessian update from the pair ``s = step * d``, ``y = g+ - g`` of this one
   objective (:func:`~jno.optim._bfgs.bfgs_update`,
   :func:`~jno.optim._bfgs.self_scaled_update`).

When the line search finds no decrease the parameters stay where they are and ``H`` is
reset to the identity: the next update restarts from steepest descent. When that
steepest-descent search fails too, the optimizer is *stalled*: at the same point, value
and gradient the next search would repeat it trial for trial, so it is skipped (no
evaluation) until the objective changes, e.g. when a trainer redraws its points. The state keeps
the value and gradient of the accepted point (``optax.value_and_grad_from_state``
reuses them) and, when ``value_fn`` returns ``(value, aux)``, its auxiliary output.

Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> f = lambda p: jnp.sum((p["x"] - jnp.array([1.0, -2.0])) ** 2 * jnp.array([1.0, 10.0]))
    >>> tx = bfgs()
    >>> params = {"x": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> value_and_grad = optax.value_and_grad_from_state(f)
    >>> for _ in range(10):
    ...     value, grad = value_and_grad(params, state=state)
    ...     updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
    ...     params = optax.apply_updates(params, updates)
    >>> [round(float(v), 4) for v in params["x"]]
    [1.0, -2.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jno.optim._bfgs import METHODS, apply_update, bfgs_update, coefficients, self_scaled_update
from jno.optim._linesearch import LinesearchResult, strong_wolfe

__all__ = [
    "DEFAULT_MAX_HESSIAN_BYTES",
    "QuasiNewton",
    "QuasiNewtonState",
    "ScaleByBFGSState",
    "bfgs",
    "scale_by_bfgs",
    "ssbfgs",
    "ssbroyden",
]

#: The largest inverse Hessian allowed by default: 2 GiB, 16 384 parameters in float64.
DEFAULT_MAX_HESSIAN_BYTES = 2 << 30


class QuasiNewtonState(NamedTuple):
    """State of :func:`bfgs`, :func:`ssbfgs` and :func:`ssbroyden`.

    Attributes:
        count: pairs folded into ``inv_hessian`` since the last (re)start (int32).
        inv_hessian: the ``P x P`` inverse Hessian approximation.
        value: the objective at the current parameters (``inf`` before the first update).
        grad: its gradient there (a pytree like the parameters).
        aux: the auxiliary output of ``value_fn`` there (None without one).
        learning_rate: the step length the last line search accepted.
        evaluations: function evaluations of the last line search.
        restarts: line searches that found no decrease (each resets ``inv_hessian``).
        stalled: the last search failed along steepest descent, from the identity:
            updates at the same value and gradient move nothing and evaluate nothing.
    """

    count: jax.Array
    inv_hessian: jax.Array
    value: jax.Array
    grad: Any
    aux: Any
    learning_rate: jax.Array
    evaluations: jax.Array
    restarts: jax.Array
    stalled: jax.Array


class QuasiNewton(optax.GradientTransformationExtraArgs):
    """The transformation type of :func:`bfgs`: ``init(params, aux_like=None)`` and
    ``update(updates, state, params, *, value, grad, value_fn, aux=None)``.

    ``value_fn`` may return ``value`` or ``(value, aux)``; with an ``aux``, initialise
    the state with ``init(params, aux_like=example_aux)`` so that its structure is known.
    """

    __slots__ = ()


def _check_memory(size: int, dtype: Any, limit: int, method: str) -> None:
    need = size * size * jnp.dtype(dtype).itemsize
    if need > limit:
        raise ValueError(
            f"{method} keeps a dense {size} x {size} inverse Hessian: {size} parameters "
            f"need {need / 2**30:.2f} GiB in {jnp.dtype(dtype).name}, above "
            f"max_hessian_bytes={limit} ({limit / 2**30:.2f} GiB). Raise max_hessian_bytes "
            "if the device has the memory (each iteration also costs O(P^2)), use "
            "optax.lbfgs() (O(mP) memory), or a smaller network."
        )


def _flat_like(tree: Any) -> jax.Array:
    flat, _ = ravel_pytree(tree)
    return flat


def bfgs(
    *,
    method: str = "bfgs",
    scale_init_precond: bool = True,
    max_linesearch_steps: int = 25,
    curv_rtol: float = 0.9,
    slope_rtol: float = 1e-4,
    eps: float = 1e-10,
    max_hessian_bytes: int = DEFAULT_MAX_HESSIAN_BYTES,
) -> QuasiNewton:
    """Dense BFGS with a strong-Wolfe line search, an optax transformation.

    The interface of ``optax.lbfgs``: ``update(grads, state, params, value=, grad=,
    value_fn=)``, and ``optax.value_and_grad_from_state`` reuses the line search's last
    evaluation, so an iteration whose first trial step is accepted costs one value and
    gradient. Memory is ``P^2`` numbers.

    Args:
        method: the inverse-Hessian update: ``"bfgs"``, ``"ssbfgs"`` or ``"ssbroyden"``
            (:func:`~jno.optim._bfgs.self_scaled_update`).
        scale_init_precond: plain BFGS only: scale ``H`` to ``(y^T s / y^T y) I``
            before the first update (the self-scaled methods scale by their own rule).
        max_linesearch_steps: evaluations allowed per line search.
        curv_rtol, slope_rtol: the strong-Wolfe constants ``c2`` and ``c1``.
        eps: pairs with ``y^T s <= eps ||s|| ||y||`` are skipped.
        max_hessian_bytes: ``init`` refuses parameters whose ``P x P`` matrix is larger.

    Raises:
        ValueError: an unknown ``method`` or a non-positive number; at ``init``, too
            many parameters for ``max_hessian_bytes``.

    Example:
        >>> tx = ssbroyden(max_hessian_bytes=500)
        >>> import jax.numpy as jnp
        >>> tx.init(jnp.zeros(12))
        Traceback (most recent call last):
        ...
        ValueError: ssbroyden keeps a dense 12 x 12 inverse Hessian: 12 parameters need ...
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, value in (("max_linesearch_steps", max_linesearch_steps),):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    for name, value in (("curv_rtol", curv_rtol), ("slope_rtol", slope_rtol)):
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    if not slope_rtol < curv_rtol:
        raise ValueError(f"slope_rtol must be below curv_rtol, got {slope_rtol} >= {curv_rtol}")
    if not isinstance(max_hessian_bytes, int) or max_hessian_bytes < 1:
        raise ValueError(f"max_hessian_bytes must be an int >= 1, got {max_hessian_bytes!r}")

    def init_fn(params: Any, aux_like: Any = None) -> QuasiNewtonState:
        flat = _flat_like(params)
        _check_memory(flat.size, flat.dtype, max_hessian_bytes, method)
        # The loss may be computed in a wider dtype than the parameters (float32 flax
        # layers on float64 inputs): the line search compares values in that one.
        value_dtype = jnp.promote_types(flat.dtype, jnp.asarray(0.0).dtype)
        return QuasiNewtonState(
            count=jnp.zeros((), jnp.int32),
            inv_hessian=jnp.eye(flat.size, dtype=flat.dtype),
            value=jnp.asarray(jnp.inf, value_dtype),
            grad=jax.tree.map(jnp.zeros_like, params),
            aux=jax.tree.map(jnp.zeros_like, aux_like),
            learning_rate=jnp.zeros((), value_dtype),
            evaluations=jnp.zeros((), jnp.int32),
            restarts=jnp.zeros((), jnp.int32),
            stalled=jnp.zeros((), jnp.bool_),
        )

    def update_fn(
        updates: Any,
        state: QuasiNewtonState,
        params: Any = None,
        *,
        value: jax.Array,
        grad: Any,
        value_fn: Callable[[Any], Any],
        aux: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, QuasiNewtonState]:
        del extra_args
        if params is None:
            raise ValueError(f"{method} needs params: tx.update(grads, state, params, ...)")
        g, unravel = ravel_pytree(updates)
        h, count = state.inv_hessian, state.count
        direction = -(h @ g)
        slope = jnp.vdot(direction, g)
        descent = (slope < 0) & jnp.isfinite(slope)
        # Rounding can cost H its positive definiteness: a steepest-descent step, and H
        # starts over from the identity.
        direction = jnp.where(descent, direction, -g)
        count = jnp.where(descent, count, 0)
        gnorm = jnp.linalg.norm(g)
        init_step = jnp.where(count == 0, jnp.minimum(1.0, 1.0 / gnorm), 1.0)

        fun = _with_aux(value_fn, params, state.aux)
        start_aux = state.aux if aux is None else aux
        start_value = jnp.asarray(value, state.value.dtype)
        # After a failed steepest-descent search (H = I, count = 0) the same point, value
        # and gradient give the same direction, first step and trial points: the search
        # would fail again, evaluation for evaluation. A phase past its rounding floor
        # costs one comparison per iteration instead of a whole line search.
        repeat = (
            state.stalled
            & (start_value == state.value)
            & jnp.all(g == ravel_pytree(state.grad)[0].astype(g.dtype))
        )

        def search() -> LinesearchResult:
            return strong_wolfe(
                fun,
                params,
                unravel(direction),
                start_value,
                grad,
                start_aux,
                init_step=init_step,
                max_evaluations=max_linesearch_steps,
                curv_rtol=curv_rtol,
                slope_rtol=slope_rtol,
            )

        def skip() -> LinesearchResult:
            like = jax.eval_shape(search)
            return LinesearchResult(
                step=jnp.zeros_like(like.step),
                value=start_value.astype(like.value.dtype),
                grad=jax.tree.map(lambda a, b: jnp.asarray(a, b.dtype), grad, like.grad),
                aux=jax.tree.map(lambda a, b: jnp.asarray(a, b.dtype), start_aux, like.aux),
                evaluations=jnp.zeros_like(like.evaluations),
                failed=jnp.ones_like(like.failed),
            )

        result = jax.lax.cond(repeat, skip, search)
        # A failed search (a non-finite gradient included) moves nothing.
        s = jnp.where(result.failed, 0.0, result.step * direction)
        y = ravel_pytree(result.grad)[0] - ravel_pytree(grad)[0]
        first = count == 0
        hy = h @ y
        base = None
        if method == "bfgs" and scale_init_precond:
            # Before the first pair H is (y^T s / y^T y) I (Nocedal & Wright, eq. 6.20).
            gamma = jnp.vdot(s, y) / jnp.vdot(y, y)
            base = jnp.where(first & jnp.isfinite(gamma) & (gamma > 0), gamma, 0.0)
            hy = jnp.where(base > 0, base * y, hy)
        update = coefficients(method, hy, s, y, g, direction, first=first, eps=eps)
        restart = result.failed | ~descent
        # One pass over H: the update, H itself for an unusable pair, or the identity.
        new_h = apply_update(h, update, reset=restart, base=base)
        new_count = jnp.where(restart, 0, count + update.ok.astype(count.dtype))
        new_state = QuasiNewtonState(
            count=new_count,
            inv_hessian=new_h.astype(state.inv_hessian.dtype),
            value=result.value.astype(state.value.dtype),
            grad=result.grad,
            aux=result.aux,
            learning_rate=result.step.astype(state.learning_rate.dtype),
            evaluations=result.evaluations,
            restarts=state.restarts + (restart & ~repeat).astype(state.restarts.dtype),
            stalled=result.failed & (count == 0),
        )
        return unravel(s.astype(g.dtype)), new_state

    return QuasiNewton(init_fn, update_fn)


def _with_aux(value_fn: Callable[[Any], Any], params: Any, aux_like: Any):
    """``value_fn`` as ``params -> (value, aux)``, checking its aux against the state."""
    out = jax.eval_shape(value_fn, params)
    if not isinstance(out, tuple):
        if aux_like is not None:
            raise ValueError("the state was initialised with aux_like, but value_fn returns no aux")
        return lambda p: (value_fn(p), None)
    got = jax.tree.structure(out[1])
    if got != jax.tree.structure(aux_like):
        raise ValueError(
            "value_fn returns (value, aux): initialise the state with "
            f"init(params, aux_like=...) of the same structure ({got})"
        )
    return value_fn


def ssbfgs(**kwargs: Any) -> QuasiNewton:
    """Self-scaled BFGS (Al-Baali's scaling, as in Urbán et al. 2024): :func:`bfgs`
    with ``method="ssbfgs"``; same keywords.

    Example:
        >>> ssbfgs(max_linesearch_steps=40).init([0.0, 1.0]).inv_hessian.shape
        (2, 2)
    """
    return bfgs(method="ssbfgs", **kwargs)


def ssbroyden(**kwargs: Any) -> QuasiNewton:
    """Self-scaled Broyden (Urbán, Stefanou & Pons 2024): :func:`bfgs` with
    ``method="ssbroyden"``; same keywords.

    Example:
        >>> int(ssbroyden().init({"w": [0.0, 1.0, 2.0]}).count)
        0
    """
    return bfgs(method="ssbroyden", **kwargs)


class ScaleByBFGSState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Attributes:
        count: steps taken (int32).
        params: the flattened parameters of the previous step.
        updates: the flattened gradient of the previous step.
        inv_hessian: the ``P x P`` inverse Hessian approximation.
        direction: the previous search direction ``-H g``.
    """

    count: jax.Array
    params: jax.Array
    updates: jax.Array
    inv_hessian: jax.Array
    direction: jax.Array


def scale_by_bfgs(
    *,
    scale_init_precond: bool = True,
    eps: float = 1e-10,
    method: str = "bfgs",
    max_hessian_bytes: int = DEFAULT_MAX_HESSIAN_BYTES,
) -> optax.GradientTransformation:
    """The dense inverse Hessian alone, to chain with another line search: returns
    ``H g`` and forms each pair ``(s, y)`` from the parameters and gradients of
    consecutive calls (so the objective must not change between them).

    Example:
        >>> import optax
        >>> tx = optax.chain(
        ...     scale_by_bfgs(), optax.scale(-1.0), optax.scale_by_zoom_linesearch(20)
        ... )
        >>> import jax.numpy as jnp
        >>> tx.init(jnp.zeros(3))[0].inv_hessian.shape
        (3, 3)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def init_fn(params: Any) -> ScaleByBFGSState:
        flat = _flat_like(params)
        _check_memory(flat.size, flat.dtype, max_hessian_bytes, method)
        return ScaleByBFGSState(
            count=jnp.zeros((), jnp.int32),
            params=jnp.zeros_like(flat),
            updates=jnp.zeros_like(flat),
            inv_hessian=jnp.eye(flat.size, dtype=flat.dtype),
            direction=jnp.zeros_like(flat),
        )

    def update_fn(updates: Any, state: ScaleByBFGSState, params: Any = None):
        if params is None:
            raise ValueError("scale_by_bfgs needs params: tx.update(grads, state, params)")
        g, unravel = ravel_pytree(updates)
        x = _flat_like(params)
        s, y = x - state.params, g - state.updates
        h = state.inv_hessian
        identity = jnp.eye(h.shape[0], dtype=h.dtype)
        first = state.count == 1
        if method == "bfgs":
            if scale_init_precond:
                gamma = jnp.vdot(s, y) / jnp.vdot(y, y)
                usable = first & jnp.isfinite(gamma) & (gamma > 0)
                h = jnp.where(usable, gamma * identity, h)
            updated = bfgs_update(h, s, y, eps=eps)
        else:
            updated = self_scaled_update(
                h, s, y, state.updates, state.direction, method=method, first=first, eps=eps
            )
        new_h = jnp.where(state.count > 0, updated, h)
        new_h = jnp.where(jnp.all(jnp.isfinite(new_h)), new_h, identity)
        direction = new_h @ g
        new_state = ScaleByBFGSState(
            count=state.count + 1, params=x, updates=g, inv_hessian=new_h, direction=-direction
        )
        return unravel(direction), new_state

    return optax.GradientTransformation(init_fn, update_fn)
