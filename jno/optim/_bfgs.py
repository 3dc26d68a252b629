"""The dense inverse-Hessian updates of BFGS and its self-scaled variants, O(P^2) each.

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

The transformations built on these updates are in :mod:`jno.optim._quasi_newton`.

Example:
    >>> import jax.numpy as jnp
    >>> s, y = jnp.array([1.0, 1.0]), jnp.array([2.0, 4.0])
    >>> h = bfgs_update(jnp.eye(2), s, y)
    >>> [round(float(v), 5) for v in h @ y]  # the secant condition H+ y = s
    [1.0, 1.0]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "METHODS",
    "LowRankUpdate",
    "apply_update",
    "bfgs_update",
    "coefficients",
    "self_scaled_update",
]

#: The inverse-Hessian updates: plain BFGS and the two self-scaled ones.
METHODS = ("bfgs", "ssbfgs", "ssbroyden")


class LowRankUpdate(NamedTuple):
    """``H+ = scale * H + sum(c * outer(u, w))``: every update of this module has this
    form, so that it costs one pass over ``H`` (:func:`apply_update`).

    Attributes:
        scale: the factor of ``H`` (the inverse of the self-scaling ``tau``).
        terms: ``(c, u, w)`` triples of scalars and vectors.
        ok: the pair has safely positive curvature and every coefficient is finite.
    """

    scale: jax.Array
    terms: tuple[tuple[jax.Array, jax.Array, jax.Array], ...]
    ok: jax.Array


def apply_update(
    inv_hessian: jax.Array,
    update: LowRankUpdate,
    *,
    reset: jax.Array | bool = False,
    base: jax.Array | None = None,
) -> jax.Array:
    """``update`` applied to ``inv_hessian`` (or to ``base * I`` where ``base`` is
    given and positive); ``H`` itself where ``update.ok`` is false; the identity where
    ``reset``. One fused elementwise pass over the ``P x P`` matrix."""
    n = inv_hessian.shape[0]
    dtype = inv_hessian.dtype
    rows = jax.lax.broadcasted_iota(jnp.int32, (n, n), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (n, n), 1)
    eye = (rows == cols).astype(dtype)
    start = inv_hessian if base is None else jnp.where(base > 0, base * eye, inv_hessian)
    updated = update.scale * start
    for c, u, w in update.terms:
        updated = updated + c * (u[:, None] * w[None, :])
    return jnp.where(reset, eye, jnp.where(update.ok, updated.astype(dtype), inv_hessian))


def _curvature(s: jax.Array, y: jax.Array, eps: float):
    sy = jnp.vdot(s, y)
    ok = sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y)
    return ok, 1.0 / jnp.where(ok, sy, 1.0)


def _finite(*values: jax.Array) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in values]))


def coefficients(
    method: str,
    hy: jax.Array,
    s: jax.Array,
    y: jax.Array,
    grad: jax.Array,
    direction: jax.Array,
    *,
    first: jax.Array | bool,
    eps: float = 1e-10,
) -> LowRankUpdate:
    """The update of ``method`` from ``hy = H y`` and the pair, as a
    :class:`LowRankUpdate` (see :func:`bfgs_update` and :func:`self_scaled_update`
    for the formulas)."""
    ok, rho = _curvature(s, y, eps)
    yhy = jnp.vdot(y, hy)
    if method == "bfgs":
        terms = ((-rho, s, hy), (-rho, hy, s), (rho * rho * yhy + rho, s, s))
        return LowRankUpdate(jnp.ones_like(rho), terms, ok & _finite(rho, yhy, hy, s))
    alpha = jnp.vdot(s, direction) / jnp.maximum(jnp.vdot(direction, direction), 1e-30)
    b = -alpha * rho * jnp.vdot(s, grad)
    b = jnp.where(jnp.isfinite(b) & (b > 0), b, 1.0)
    if method == "ssbfgs":
        tau = jnp.where(first, jnp.vdot(y, y) * rho, jnp.minimum(1.0, 1.0 / b))
        hy_t, yhy_t = hy / tau, yhy / tau
        terms = ((-rho, s, hy_t), (-rho, hy_t, s), (rho * rho * yhy_t + rho, s, s))
        good = ok & (tau > 0) & _finite(tau, rho, yhy_t, hy_t, s)
        return LowRankUpdate(1.0 / tau, terms, good)
    n = s.shape[0]
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
    terms = ((-1.0 / (yhy * tau), hy, hy), (phi * yhy / tau, v, v), (rho, s, s))
    good = ok & (tau > 0) & _finite(tau, phi, yhy, rho, hy, v, s)
    return LowRankUpdate(1.0 / tau, terms, good)


def bfgs_update(
    inv_hessian: jax.Array, s: jax.Array, y: jax.Array, *, eps: float = 1e-10
) -> jax.Array:
    """The BFGS update of an inverse Hessian ``H`` from the pair ``(s, y)``, in O(P^2)::

        rho = 1 / y^T s
        H+ = H - rho (s (H y)^T + (H y) s^T) + (rho^2 y^T H y + rho) s s^T

    Returns ``H`` unchanged when the curvature ``y^T s`` is not safely positive.

    Example:
        >>> import jax.numpy as jnp
        >>> h = bfgs_update(jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0]))
        >>> h.tolist()  # the secant condition H+ y = s holds
        [[0.5, 0.0], [0.0, 1.0]]
    """
    update = coefficients("bfgs", inv_hessian @ y, s, y, y, s, first=False, eps=eps)
    return apply_update(inv_hessian, update)


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
    positive curvature, or with a coefficient that is not finite, leaves ``H``
    unchanged.
    """
    if method not in ("ssbfgs", "ssbroyden"):
        raise ValueError(f"method must be 'ssbfgs' or 'ssbroyden', got {method!r}")
    hy = inv_hessian @ y
    update = coefficients(method, hy, s, y, grad, direction, first=first, eps=eps)
    return apply_update(inv_hessian, update)
