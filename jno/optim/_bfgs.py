"""Dense BFGS as an optax transformation: an O(P^2) inverse-Hessian update per step.

Small PINNs (a few thousand parameters) trained in float64 reach far lower errors with a
dense quasi-Newton method and a strong-Wolfe line search than with Adam or L-BFGS
(Urbán, Stefanou & Pons, J. Comput. Phys. 2024; Kiyani et al. 2025). This module keeps
the full inverse Hessian approximation ``H`` (``P x P``) on the device and updates it
with the rank-two BFGS formula (Nocedal & Wright, "Numerical Optimization", eq. 6.17)::

    rho = 1 / (y^T s)
    H+  = H - rho (s (H y)^T + (H y) s^T) + (rho^2 y^T H y + rho) s s^T

which is the product form ``(I - rho s y^T) H (I - rho y s^T) + rho s s^T`` expanded so
that it costs O(P^2), never a P x P matrix product. ``s`` is the last step of the
parameters and ``y`` the change of the gradient. Before the first update ``H`` is
scaled to ``(y^T s / y^T y) I`` (eq. 6.20); a pair with too little curvature
(``y^T s <= eps ||s|| ||y||``, possible when the line search stops early) is skipped,
and a non-finite pair resets ``H`` to the identity, so NaN never reaches ``H``.

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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

__all__ = ["ScaleByBFGSState", "bfgs", "bfgs_update", "scale_by_bfgs"]


class ScaleByBFGSState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Attributes:
        count: steps taken (int32).
        params: the flattened parameters of the previous step.
        updates: the flattened gradient of the previous step.
        inv_hessian: the ``P x P`` inverse Hessian approximation.
    """

    count: jax.Array
    params: jax.Array
    updates: jax.Array
    inv_hessian: jax.Array


def bfgs_update(
    inv_hessian: jax.Array, s: jax.Array, y: jax.Array, *, eps: float = 1e-10
) -> jax.Array:
    """The BFGS update of an inverse Hessian ``H`` from the pair ``(s, y)``, in O(P^2).

    Returns ``H`` unchanged when the curvature ``y^T s`` is not safely positive.

    Example:
        >>> import jax.numpy as jnp
        >>> h = bfgs_update(jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0]))
        >>> h.tolist()  # the secant condition H+ y = s holds
        [[0.5, 0.0], [0.0, 1.0]]
    """
    sy = jnp.vdot(s, y)
    ok = sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y)
    rho = 1.0 / jnp.where(ok, sy, 1.0)
    hy = inv_hessian @ y
    updated = (
        inv_hessian
        - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
        + (rho * rho * jnp.vdot(y, hy) + rho) * jnp.outer(s, s)
    )
    return jnp.where(ok, updated, inv_hessian)


def scale_by_bfgs(
    *, scale_init_precond: bool = True, eps: float = 1e-10
) -> optax.GradientTransformation:
    """Preconditions the gradient with a dense BFGS inverse Hessian: returns ``H g``.

    Chain it with a negative step and a line search (as :func:`bfgs` does); the pair
    ``(s, y)`` is formed from the parameters and gradients of consecutive calls.

    Args:
        scale_init_precond: scale ``H`` to ``(y^T s / y^T y) I`` before the first update.
        eps: curvature guard of :func:`bfgs_update`.
    """

    def init_fn(params: Any) -> ScaleByBFGSState:
        flat, _ = ravel_pytree(params)
        return ScaleByBFGSState(
            count=jnp.zeros((), jnp.int32),
            params=jnp.zeros_like(flat),
            updates=jnp.zeros_like(flat),
            inv_hessian=jnp.eye(flat.size, dtype=flat.dtype),
        )

    def update_fn(updates: Any, state: ScaleByBFGSState, params: Any = None):
        if params is None:
            raise ValueError("scale_by_bfgs needs params: tx.update(grads, state, params)")
        g, unravel = ravel_pytree(updates)
        x, _ = ravel_pytree(params)
        s, y = x - state.params, g - state.updates
        h = state.inv_hessian
        first_pair = state.count == 1
        if scale_init_precond:
            gamma = jnp.vdot(s, y) / jnp.vdot(y, y)
            usable = first_pair & jnp.isfinite(gamma) & (gamma > 0)
            h = jnp.where(usable, gamma * jnp.eye(h.shape[0], dtype=h.dtype), h)
        new_h = jnp.where(state.count > 0, bfgs_update(h, s, y, eps=eps), h)
        # A non-finite pair (a NaN loss upstream) must not poison H: start over.
        new_h = jnp.where(jnp.all(jnp.isfinite(new_h)), new_h, jnp.eye(h.shape[0], dtype=h.dtype))
        direction = new_h @ g
        new_state = ScaleByBFGSState(count=state.count + 1, params=x, updates=g, inv_hessian=new_h)
        return unravel(direction), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def bfgs(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    scale_init_precond: bool = True,
    linesearch: optax.GradientTransformationExtraArgs | None = None,
    max_linesearch_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
    """Dense BFGS with a strong-Wolfe zoom line search, an optax transformation.

    The interface of ``optax.lbfgs``: ``update(grads, state, params, value=, grad=,
    value_fn=)``; with :func:`optax.value_and_grad_from_state` the line search's last
    gradient is reused. Memory is ``P^2`` numbers: meant for networks of up to some
    thousands of parameters.

    Args:
        learning_rate: a fixed step instead of the line search's, or None.
        scale_init_precond: see :func:`scale_by_bfgs`.
        linesearch: the line search (default: ``optax.scale_by_zoom_linesearch`` with
            ``max_linesearch_steps``).
        max_linesearch_steps: steps of the default zoom line search.
    """
    if linesearch is None:
        linesearch = optax.scale_by_zoom_linesearch(
            max_linesearch_steps=max_linesearch_steps, initial_guess_strategy="one"
        )
    base = (
        optax.scale(-1.0) if learning_rate is None else optax.scale_by_learning_rate(learning_rate)
    )
    return optax.chain(scale_by_bfgs(scale_init_precond=scale_init_precond), base, linesearch)
