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

__all__ = [
    "ScaleByBFGSState",
    "bfgs",
    "bfgs_update",
    "scale_by_bfgs",
    "self_scaled_update",
    "ssbfgs",
    "ssbroyden",
]


class ScaleByBFGSState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Attributes:
        count: steps taken (int32).
        params: the flattened parameters of the previous step.
        updates: the flattened gradient of the previous step.
        inv_hessian: the ``P x P`` inverse Hessian approximation.
        direction: the previous search direction ``-H g`` (the self-scaling factors
            need the previous step length, ``s = alpha * direction``).
    """

    count: jax.Array
    params: jax.Array
    updates: jax.Array
    inv_hessian: jax.Array
    direction: jax.Array


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


def self_scaled_update(
    inv_hessian: jax.Array,
    s: jax.Array,
    y: jax.Array,
    grad: jax.Array,
    direction: jax.Array,
    *,
    method: str,
    first: jax.Array,
    eps: float = 1e-10,
) -> jax.Array:
    """The self-scaled BFGS or Broyden update of ``H`` (Urbán, Stefanou & Pons 2024).

    With ``rho = 1 / y^T s``, ``h = rho y^T H y``, ``alpha`` the step length
    (``s = alpha * direction``) and ``b = -alpha rho s^T g`` (``g`` the gradient
    before the step):

    * ``"ssbfgs"`` (Al-Baali's scaling): ``H <- H / tau`` with ``tau = min(1, 1 / b)``
      (``y^T y / y^T s`` for the first pair), then the BFGS update;
    * ``"ssbroyden"``: ``a = b h - 1``, ``theta`` clipped between the bounds that keep
      the update positive definite around the SR1 value ``(1 - b) / b``,
      ``phi = (1 - theta) / (1 + a theta)``, ``v = rho s - H y / (y^T H y)``, and
      ``H+ = (H - H y y^T H / y^T H y + phi y^T H y v v^T) / tau + rho s s^T`` with the
      self-scaling ``tau`` of the paper (``h / (1 + a theta)`` for the first pair).

    ``first`` marks the first pair (``H`` still the identity). A pair without safely
    positive curvature, or an update that is not finite, leaves ``H`` unchanged.
    """
    n = s.shape[0]
    sy = jnp.vdot(s, y)
    ok = sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y)
    rho = 1.0 / jnp.where(ok, sy, 1.0)
    alpha = jnp.vdot(s, direction) / jnp.maximum(jnp.vdot(direction, direction), 1e-30)
    b = -alpha * rho * jnp.vdot(s, grad)
    b = jnp.where(jnp.isfinite(b) & (b > 0), b, 1.0)
    if method == "ssbfgs":
        tau = jnp.where(first, jnp.vdot(y, y) * rho, jnp.minimum(1.0, 1.0 / b))
        return bfgs_update(inv_hessian / tau, s, y, eps=eps)
    hy = inv_hessian @ y
    yhy = jnp.vdot(y, hy)
    h = yhy * rho
    a = b * h - 1.0
    a_safe = jnp.where(jnp.abs(a) > 1e-12, a, 1e-12)
    root = jnp.sqrt(jnp.abs(a) / jnp.maximum(1.0 + a, 1e-30))
    rho_minus = jnp.minimum(1.0, h * (1.0 - root))
    theta_minus = (rho_minus - 1.0) / a_safe
    theta_plus = 1.0 / rho_minus
    theta = jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1.0 - b) / b))
    rho_b = jnp.minimum(1.0, 1.0 / b)
    sigma = 1.0 + theta * a
    sigma_root = jnp.abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else jnp.ones_like(sigma)
    tau_later = jnp.where(
        theta <= 0,
        jnp.minimum(rho_b * sigma_root, sigma),
        rho_b * jnp.minimum(sigma_root, 1.0 / theta),
    )
    tau = jnp.where(first, h / (1.0 + a * theta), tau_later)
    v = rho * s - hy / yhy
    phi = (1.0 - theta) / (1.0 + a * theta)
    updated = (
        inv_hessian - jnp.outer(hy, hy) / yhy + phi * yhy * jnp.outer(v, v)
    ) / tau + rho * jnp.outer(s, s)
    good = ok & jnp.isfinite(tau) & (tau > 0) & jnp.all(jnp.isfinite(updated))
    return jnp.where(good, updated, inv_hessian)


def scale_by_bfgs(
    *, scale_init_precond: bool = True, eps: float = 1e-10, method: str = "bfgs"
) -> optax.GradientTransformation:
    """Preconditions the gradient with a dense BFGS inverse Hessian: returns ``H g``.

    Chain it with a negative step and a line search (as :func:`bfgs` does); the pair
    ``(s, y)`` is formed from the parameters and gradients of consecutive calls.

    Args:
        scale_init_precond: scale ``H`` to ``(y^T s / y^T y) I`` before the first update
            (plain BFGS; the self-scaled methods scale by their own rule).
        eps: curvature guard of :func:`bfgs_update`.
        method: ``"bfgs"``, ``"ssbfgs"`` or ``"ssbroyden"`` (:func:`self_scaled_update`).
    """
    if method not in ("bfgs", "ssbfgs", "ssbroyden"):
        raise ValueError(f"method must be one of ('bfgs', 'ssbfgs', 'ssbroyden'), got {method!r}")

    def init_fn(params: Any) -> ScaleByBFGSState:
        flat, _ = ravel_pytree(params)
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
        x, _ = ravel_pytree(params)
        s, y = x - state.params, g - state.updates
        h = state.inv_hessian
        first_pair = state.count == 1
        if method == "bfgs":
            if scale_init_precond:
                gamma = jnp.vdot(s, y) / jnp.vdot(y, y)
                usable = first_pair & jnp.isfinite(gamma) & (gamma > 0)
                h = jnp.where(usable, gamma * jnp.eye(h.shape[0], dtype=h.dtype), h)
            updated = bfgs_update(h, s, y, eps=eps)
        else:
            updated = self_scaled_update(
                h, s, y, state.updates, state.direction, method=method, first=first_pair, eps=eps
            )
        new_h = jnp.where(state.count > 0, updated, h)
        # A non-finite pair (a NaN loss upstream) must not poison H: start over.
        new_h = jnp.where(jnp.all(jnp.isfinite(new_h)), new_h, jnp.eye(h.shape[0], dtype=h.dtype))
        direction = new_h @ g
        new_state = ScaleByBFGSState(
            count=state.count + 1, params=x, updates=g, inv_hessian=new_h, direction=-direction
        )
        return unravel(direction), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def bfgs(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    scale_init_precond: bool = True,
    linesearch: optax.GradientTransformationExtraArgs | None = None,
    max_linesearch_steps: int = 30,
    method: str = "bfgs",
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
        method: the inverse-Hessian update, ``"bfgs"``, ``"ssbfgs"`` or ``"ssbroyden"``.
    """
    if linesearch is None:
        linesearch = optax.scale_by_zoom_linesearch(
            max_linesearch_steps=max_linesearch_steps, initial_guess_strategy="one"
        )
    base = (
        optax.scale(-1.0) if learning_rate is None else optax.scale_by_learning_rate(learning_rate)
    )
    precond = scale_by_bfgs(scale_init_precond=scale_init_precond, method=method)
    return optax.chain(precond, base, linesearch)


def ssbfgs(**kwargs: Any) -> optax.GradientTransformationExtraArgs:
    """Self-scaled BFGS (Al-Baali's scaling, as in Urbán et al. 2024): :func:`bfgs`
    with ``method="ssbfgs"``; same keywords."""
    return bfgs(method="ssbfgs", **kwargs)


def ssbroyden(**kwargs: Any) -> optax.GradientTransformationExtraArgs:
    """Self-scaled Broyden (Urbán, Stefanou & Pons 2024): :func:`bfgs` with
    ``method="ssbroyden"``; same keywords."""
    return bfgs(method="ssbroyden", **kwargs)
