"""Residual-based attention: per-point multipliers of one loss term's residual.

Each point ``i`` of a term carries a multiplier ``lambda_i``, an exponential moving
average of a score ``q_i`` in ``[0, 1]`` of its residual magnitude
``m_i = sqrt(mean over the residual's columns of r_i^2)``::

    lambda_i <- gamma lambda_i + eta q_i

so that ``lambda`` stays within ``[min(lambda_0, eta / (1 - gamma) min q),
eta / (1 - gamma)]``. Every call of :meth:`ResidualAttention.loss` (once per training
step, inside the compiled step) updates the multipliers from the residual of this step,
held constant (``stop_gradient``), and returns the term's loss with the updated ones.

* :class:`RBA` (Anagnostopoulos et al., CMAME 2024): ``q_i = m_i / max_j m_j``; the loss
  is ``mean((lambda_i r_i)^2)``.
* :class:`VRBA` (variational RBA, Toscano, Chen, Oommen & Karniadakis 2025): ``q`` is
  the derivative of a convex potential ``Phi`` of the scaled residual, normalised to a
  largest value of 1: ``potential="exponential"`` (a uniform-error objective),
  ``q_i = exp((m_i - max_j m_j) / epsilon)`` with the temperature
  ``epsilon = temperature * max_j m_j``, so it follows the residual's scale as it
  falls; ``potential="linear"`` (the mean-square objective), ``q_i = m_i / max_j m_j``.
  The loss weights the squares, ``mean(lambda_i r_i^2)``: the multipliers are the
  density of the tilted distribution the residual is averaged over.

The multipliers are :class:`~jno.nnx.state.BalancerState` variables: a trainer carries
them in its step state, saves them in checkpoints and logs their mean and largest value
(``tracker/<slot>_mean``, ``tracker/<slot>_max``). A step whose losses are not finite
is not applied, so NaN residuals never reach them.

With a quasi-Newton optimizer the objective stays fixed within an iteration: the line
search evaluates the losses with the multipliers the step started from, and the step's
own evaluation updates them once. Across iterations the objective changes, so the
curvature pairs of the inverse Hessian mix neighbouring objectives; with
``gamma`` close to 1 they change slowly. Gauss-Newton optimizers (:mod:`jno.optim`)
minimise the unweighted residual vector and refuse a trainer with attention.

Example:
    >>> import jax.numpy as jnp
    >>> rba = RBA(3, gamma=0.5, eta=1.0)
    >>> loss = rba.loss(jnp.array([1.0, -2.0, 4.0]))  # lambda = 0.5 + (0.25, 0.5, 1)
    >>> round(float(loss), 4)  # (0.75^2 1 + 1^2 4 + 1.5^2 16) / 3
    13.5208
    >>> rba.multipliers[...].tolist()
    [0.75, 1.0, 1.5]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._checks import check_choice, check_positive_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.state import BalancerState

__all__ = ["RBA", "VRBA", "ResidualAttention"]

POTENTIALS = ("exponential", "linear")


def _parts(residual: Any) -> list[jax.Array]:
    parts = residual if isinstance(residual, tuple) else (residual,)
    return [jnp.reshape(jnp.asarray(p), (jnp.shape(p)[0], -1)) for p in parts]


class ResidualAttention(nnx.Module):
    """Per-point multipliers of a term's residual (see the module); subclasses define
    the score (:meth:`scores`) and the weighted loss (:meth:`weighted`).

    Args:
        num_points: the term's number of points (the multipliers' length).
        gamma: the memory of the moving average, in ``[0, 1)``.
        eta: the weight of each new score, > 0.
        initial: the multipliers before the first step, >= 0.

    Raises:
        ValueError: an argument out of range, naming it.
    """

    def __init__(
        self, num_points: int, *, gamma: float = 0.999, eta: float = 0.01, initial: float = 1.0
    ):
        self.num_points = check_positive_int("num_points", num_points)
        self.gamma = check_real("gamma", gamma, minimum=0.0, maximum=1.0, max_open=True)
        self.eta = check_real("eta", eta, minimum=0.0, min_open=True)
        initial = check_real("initial", initial, minimum=0.0)
        self.multipliers = BalancerState(jnp.full((self.num_points,), initial, default_float()))

    def scores(self, magnitude: jax.Array) -> jax.Array:
        """``q_i`` in ``[0, 1]`` from the residual magnitudes ``m`` (``(n,)``)."""
        raise NotImplementedError

    def weighted(self, multipliers: jax.Array, square: jax.Array) -> jax.Array:
        """The weighted mean of the squares ``(n, k)`` of one residual part."""
        raise NotImplementedError

    def update(self, residual: Any) -> jax.Array:
        """Updates the multipliers from ``residual`` (held constant); returns them.

        Raises:
            ValueError: the residual's length is not ``num_points``.
        """
        parts = _parts(residual)
        n = parts[0].shape[0]
        if any(p.shape[0] != n for p in parts) or n != self.num_points:
            raise ValueError(
                f"residual attention has num_points={self.num_points}, got a residual of "
                f"lengths {[p.shape[0] for p in parts]}"
            )
        square = sum(jnp.mean(jnp.square(jax.lax.stop_gradient(p)), axis=1) for p in parts)
        magnitude = jnp.sqrt(square / len(parts))
        lam = self.multipliers[...]
        new = self.gamma * lam + self.eta * self.scores(magnitude).astype(lam.dtype)
        self.multipliers[...] = new
        return new

    def loss(self, residual: Any) -> jax.Array:
        """The term's loss with multipliers updated from this residual (a tuple of
        parts adds their losses, as :func:`~jno.problems.mean_square` does)."""
        lam = self.update(residual)
        return sum(self.weighted(lam, jnp.square(p)) for p in _parts(residual))

    def trackers(self) -> dict[str, jax.Array]:
        """The mean and largest multiplier, logged as ``tracker/<slot>_mean`` / ``_max``."""
        lam = self.multipliers[...]
        return {"mean": jnp.mean(lam), "max": jnp.max(lam)}


def _relative(magnitude: jax.Array) -> jax.Array:
    top = jnp.max(magnitude)
    return jnp.where(top > 0, magnitude / jnp.where(top > 0, top, 1.0), 0.0)


class RBA(ResidualAttention):
    """Residual-based attention (Anagnostopoulos et al. 2024): ``q_i = m_i / max m``,
    loss ``mean((lambda_i r_i)^2)``.

    Example:
        >>> import jax.numpy as jnp
        >>> rba = RBA(2, gamma=0.9, eta=0.1, initial=0.0)
        >>> [round(v, 6) for v in rba.update(jnp.array([1.0, 4.0])).tolist()]
        [0.025, 0.1]
    """

    def scores(self, magnitude: jax.Array) -> jax.Array:
        return _relative(magnitude)

    def weighted(self, multipliers: jax.Array, square: jax.Array) -> jax.Array:
        return jnp.mean(jnp.square(multipliers)[:, None] * square)


class VRBA(ResidualAttention):
    """Variational residual-based attention (Toscano et al. 2025): the score is the
    potential's derivative, normalised to 1 at the largest residual; the loss is
    ``mean(lambda_i r_i^2)``.

    Args:
        num_points, gamma, eta, initial: as :class:`ResidualAttention`.
        potential: ``"exponential"`` or ``"linear"``.
        temperature: ``epsilon / max m`` of the exponential potential, > 0.

    Example:
        >>> import jax.numpy as jnp
        >>> v = VRBA(2, gamma=0.0, eta=1.0, temperature=0.5)
        >>> [round(q, 6) for q in v.update(jnp.array([1.0, 2.0])).tolist()]  # exp(-1), 1
        [0.367879, 1.0]
    """

    def __init__(
        self,
        num_points: int,
        *,
        potential: str = "exponential",
        temperature: float = 0.25,
        gamma: float = 0.999,
        eta: float = 0.01,
        initial: float = 1.0,
    ):
        super().__init__(num_points, gamma=gamma, eta=eta, initial=initial)
        self.potential = check_choice("potential", potential, POTENTIALS)
        self.temperature = check_real("temperature", temperature, minimum=0.0, min_open=True)

    def scores(self, magnitude: jax.Array) -> jax.Array:
        if self.potential == "linear":
            return _relative(magnitude)
        return jnp.exp((_relative(magnitude) - 1.0) / self.temperature)

    def weighted(self, multipliers: jax.Array, square: jax.Array) -> jax.Array:
        return jnp.mean(multipliers[:, None] * square)
