"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024).

"SOAP: Improving and Stabilizing Shampoo using Adam" (arXiv:2409.11321). For a weight
matrix ``W`` (``m x n``) with gradient ``G`` SOAP keeps Shampoo's factors
``L <- beta_s L + (1 - beta_s) G G^T`` and ``R <- beta_s R + (1 - beta_s) G^T G`` and
their eigenbases ``Q_L``, ``Q_R``, and runs Adam on the rotated gradient
``G' = Q_L^T G Q_R``:

    M <- b1 M + (1 - b1) G'          V <- b2 V + (1 - b2) G'^2
    W <- W - lr sqrt(1 - b2^t) / (1 - b1^t) * Q_L (M / (sqrt(V) + eps)) Q_R^T
    W <- W - lr * weight_decay * W                     (decoupled, as AdamW)

The first call only builds ``L``, ``R`` and their eigenbases (by ``eigh``) and leaves
the parameters alone, so that a gradient never preconditions itself. Every
``precondition_frequency`` steps the bases are refreshed by one power iteration and a
QR decomposition, after sorting them by their estimated eigenvalues (``V`` follows the
new order). ``M`` lives in the rotated space and is carried into a refreshed basis;
between refreshes it stays there untouched. The first call and the refresh are each
one branch over all tensors, not one per tensor.
Tensors of any rank are handled axis by axis; an axis longer than
``max_precond_dim``, and 1-D tensors unless ``precondition_1d``, keep the identity
basis there, so a bias vector is trained by Adam.

Example:
    >>> import jax.numpy as jnp, optax
    >>> tx = soap(learning_rate=0.1)
    >>> params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> grads = {"w": jnp.arange(6.0).reshape(3, 2), "b": jnp.ones(2)}
    >>> updates, state = tx.update(grads, state, params)   # first call: bases only
    >>> float(jnp.abs(updates["w"]).max())
    0.0
    >>> updates, state = tx.update(grads, state, params)
    >>> [round(float(u), 3) for u in updates["b"]]           # Adam on the bias
    [-0.1, -0.1]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["SOAPState", "soap"]


class SOAPState(NamedTuple):
    """State of :func:`soap`.

    Attributes:
        count: calls so far (the first one only builds the bases).
        exp_avg: first moments, in each tensor's rotated space.
        exp_avg_sq: second moments, in the rotated space.
        factors: per tensor, one Shampoo factor per axis (a ``0 x 0`` array for an axis
            that is not preconditioned).
        bases: per tensor, the eigenbasis of each factor (same layout).
    """

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any
    factors: Any
    bases: Any


def _project(x: jax.Array, bases: tuple, back: bool = False) -> jax.Array:
    """``x`` in the eigenbases (``Q^T`` along each axis), or back (``Q``)."""
    for q in bases:
        if q.size == 0:
            x = jnp.moveaxis(x, 0, -1)
        else:
            x = jnp.tensordot(x, q, axes=[[0], [1 if back else 0]])
    return x


def _outer(g: jax.Array, axis: int) -> jax.Array:
    """``g g^T`` contracted over every axis but ``axis``."""
    others = [a for a in range(g.ndim) if a != axis]
    return jnp.tensordot(g, g, axes=[others, others])


def _eigenbasis(factor: jax.Array) -> jax.Array:
    """Eigenvectors of a factor, largest eigenvalue first."""
    _, q = jnp.linalg.eigh(factor + 1e-30 * jnp.eye(factor.shape[0], dtype=factor.dtype))
    return q[:, ::-1]


def soap(
    learning_rate: optax.ScalarOrSchedule = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10_000,
    precondition_1d: bool = False,
) -> optax.GradientTransformation:
    """SOAP as an optax transformation, with the paper's hyper-parameters.

    Args:
        learning_rate: a number or an optax schedule of the update count (1 together
            with a jno ``.scale(schedule)`` gives the schedule's rate).
        b1, b2: Adam's moment decay rates.
        shampoo_beta: decay of the Shampoo factors (``b2`` when None).
        eps: added to ``sqrt(V)``.
        weight_decay: decoupled weight decay (AdamW's).
        precondition_frequency: steps between refreshes of the eigenbases.
        max_precond_dim: axes longer than this are not preconditioned.
        precondition_1d: precondition 1-D tensors (biases) too.

    Raises:
        ValueError: a rate outside ``[0, 1)``, a negative ``eps`` or ``weight_decay``,
            or a frequency / dimension below 1.
    """
    shampoo_beta = b2 if shampoo_beta is None else shampoo_beta
    for name, value in (("b1", b1), ("b2", b2), ("shampoo_beta", shampoo_beta)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    for name, value in (("eps", eps), ("weight_decay", weight_decay)):
        if not float(value) >= 0.0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    for name, value in (
        ("precondition_frequency", precondition_frequency),
        ("max_precond_dim", max_precond_dim),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    def preconditioned_axes(p: jax.Array) -> tuple[bool, ...]:
        if p.ndim == 1 and not precondition_1d:
            return (False,)
        return tuple(n <= max_precond_dim for n in p.shape)

    def init_fn(params: Any) -> SOAPState:
        def square(p):
            return tuple(
                jnp.zeros((n, n) if on else (0, 0), p.dtype)
                for n, on in zip(p.shape, preconditioned_axes(p))
            )

        factors = jax.tree.map(square, params)
        return SOAPState(
            count=jnp.zeros((), jnp.int32),
            exp_avg=jax.tree.map(jnp.zeros_like, params),
            exp_avg_sq=jax.tree.map(jnp.zeros_like, params),
            factors=factors,
            bases=factors,
        )

    def accumulate(factors: tuple, g: jax.Array) -> tuple:
        return tuple(
            f
            if f.size == 0
            else shampoo_beta * f + (1.0 - shampoo_beta) * _outer(g, axis).astype(f.dtype)
            for axis, f in enumerate(factors)
        )

    def first(g, factors):
        factors = accumulate(factors, g)
        return factors, tuple(f if f.size == 0 else _eigenbasis(f) for f in factors)

    def refresh(m, v, factors, bases):
        """Sort each basis by its estimated eigenvalues, one power iteration, QR; the
        moments follow: ``V`` re-ordered, ``M`` carried into the new basis."""
        m = _project(m, bases, back=True)
        new = []
        for axis, (f, q) in enumerate(zip(factors, bases)):
            if q.size == 0:
                new.append(q)
                continue
            order = jnp.argsort(-jnp.diag(q.T @ f @ q))
            v = jnp.take(v, order, axis=axis)
            q, _ = jnp.linalg.qr(f @ q[:, order])
            new.append(q)
        new = tuple(new)
        return _project(m, new), v, new

    def later(g, m, v, factors, bases, step, rate):
        rotated = _project(g, bases)
        m = b1 * m + (1.0 - b1) * rotated
        v = b2 * v + (1.0 - b2) * rotated * rotated
        t = step.astype(g.dtype)
        size = rate * jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        update = -size * _project(m / (jnp.sqrt(v) + eps), bases, back=True)
        # The update is applied after the step; the next bases see this gradient.
        return update, m, v, accumulate(factors, g)

    def first_call(updates, state, params):
        out = jax.tree.map(first, updates, state.factors)
        factors = jax.tree.map(lambda _, o: o[0], updates, out)
        bases = jax.tree.map(lambda _, o: o[1], updates, out)
        zeros = jax.tree.map(jnp.zeros_like, updates)
        return zeros, SOAPState(state.count, state.exp_avg, state.exp_avg_sq, factors, bases)

    def later_call(updates, state, params):
        step = state.count  # real updates so far, counting this one
        rate = learning_rate(step - 1) if callable(learning_rate) else learning_rate
        out = jax.tree.map(
            lambda g, m, v, f, q: later(g, m, v, f, q, step, rate),
            updates, state.exp_avg, state.exp_avg_sq, state.factors, state.bases,
        )  # fmt: skip
        parts = [jax.tree.map(lambda _, o, i=i: o[i], updates, out) for i in range(4)]
        update, m, v, factors = parts
        if weight_decay > 0:
            # Decoupled, on the weights after this update (AdamW's order).
            update = jax.tree.map(lambda u, p: u - rate * weight_decay * (p + u), update, params)

        def refresh_all(m, v, bases):
            out = jax.tree.map(refresh, m, v, factors, bases)
            return tuple(jax.tree.map(lambda _, o, i=i: o[i], updates, out) for i in range(3))

        # One branch for every tensor: the refresh is due for all of them at once.
        m, v, bases = jax.lax.cond(
            step % precondition_frequency == 0,
            refresh_all,
            lambda m, v, bases: (m, v, bases),
            m, v, state.bases,
        )  # fmt: skip
        return update, SOAPState(state.count, m, v, factors, bases)

    def update_fn(updates: Any, state: SOAPState, params: Any = None):
        if weight_decay > 0 and params is None:
            raise ValueError("soap with weight_decay needs params: tx.update(g, state, params)")
        params = updates if params is None else params
        update, state = jax.lax.cond(
            state.count == 0, first_call, later_call, updates, state, params
        )
        return update, SOAPState(state.count + 1, *state[1:])

    return optax.GradientTransformation(init_fn, update_fn)
