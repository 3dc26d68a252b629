"""Causal training for time-dependent PINNs (Wang, Sankaran & Perdikaris 2022).

The time interval is cut into M chunks; :func:`chunk_losses` gives the mean squared
residual of each chunk and :class:`CausalWeights` weights chunk k by how well every
earlier chunk is already resolved, ``w_k = exp(-epsilon * sum_{j<k} L_j)``, so the
network learns the solution forward in time. The weights and the causality-parameter
ladder live in :class:`~jno.nnx.state.BalancerState` variables and update inside a
compiled step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_positive_int, check_real, is_real
from jno.nnx._dtype import default_float
from jno.nnx.balancers.base import Balancer
from jno.nnx.state import BalancerState

__all__ = ["CausalWeights", "chunk_losses"]


def _column(name: str, value: Any) -> jax.Array:
    arr = jnp.asarray(value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1), got shape {arr.shape}")
    return arr


def _check_interval(t_min: Any, t_max: Any) -> None:
    # Traced bounds cannot be checked here; concrete ones can.
    if not (is_real(t_min) and is_real(t_max)):
        return
    lo, hi = float(t_min), float(t_max)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"t_max must be > t_min (both finite), got t_min={lo!r}, t_max={hi!r}")


def chunk_losses(
    residual: jax.Array, t: jax.Array, num_chunks: int, t_min: float, t_max: float
) -> jax.Array:
    """Mean squared residual of each of ``num_chunks`` equal time chunks.

    Point p falls in chunk ``k_p = floor((t_p - t_min) / (t_max - t_min) * M)``, clipped
    to ``[0, M - 1]`` (so ``t_max`` itself belongs to the last chunk, and a point on an
    inner boundary to the later chunk)::

        L_k = mean over {p : k_p = k} of residual_p^2      (0 for an empty chunk)

    Differentiable with respect to ``residual``.

    Args:
        residual: ``(n,)`` or ``(n, 1)`` residual values.
        t: ``(n,)`` or ``(n, 1)`` times of the points.
        num_chunks: Number of chunks M, an integer >= 1.
        t_min: Start of the time interval.
        t_max: End of the time interval, > ``t_min``.

    Returns:
        The ``(M,)`` chunk losses.

    Raises:
        ValueError: Bad shapes, ``num_chunks < 1`` or ``t_max <= t_min``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.causal import chunk_losses
        >>> r = jnp.array([1.0, 3.0, 2.0, 4.0])
        >>> t = jnp.array([0.1, 0.2, 0.5, 1.0])
        >>> chunk_losses(r, t, 2, 0.0, 1.0).tolist()  # (1 + 9) / 2, (4 + 16) / 2
        [5.0, 10.0]
        >>> chunk_losses(r, t, 4, 0.0, 1.0).tolist()  # [0.25, 0.5) is empty; t_max in the last
        [5.0, 0.0, 4.0, 16.0]
    """
    num_chunks = check_positive_int("num_chunks", num_chunks)
    r = _column("residual", residual)
    tt = _column("t", t)
    if r.shape[0] != tt.shape[0]:
        raise ValueError(
            f"residual and t must hold the same number of points, got {r.shape[0]} and "
            f"{tt.shape[0]}"
        )
    _check_interval(t_min, t_max)
    # The chunk index is piecewise constant in t: no gradient flows through it.
    tt = jax.lax.stop_gradient(tt)
    frac = (tt - t_min) / (t_max - t_min)
    idx = jnp.clip(jnp.floor(frac * num_chunks), 0, num_chunks - 1).astype(jnp.int32)
    sums = jax.ops.segment_sum(r**2, idx, num_segments=num_chunks)
    counts = jax.ops.segment_sum(jnp.ones_like(r), idx, num_segments=num_chunks)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1), 0.0)


def _check_epsilons(epsilons: Any) -> tuple[float, ...]:
    if isinstance(epsilons, (str, bytes)):
        raise TypeError(f"epsilons must be a number or a sequence of numbers, got {epsilons!r}")
    items = [epsilons] if np.ndim(epsilons) == 0 else list(epsilons)
    for item in items:
        if not is_real(item):
            raise TypeError(f"epsilons must hold real numbers, got {epsilons!r}")
    values = tuple(float(v) for v in items)
    if not values:
        raise ValueError(f"epsilons must not be empty, got {epsilons!r}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"epsilons must be positive and finite, got {epsilons!r}")
    if any(b < a for a, b in zip(values, values[1:])):
        raise ValueError(f"epsilons must be non-decreasing, got {epsilons!r}")
    return values


class CausalWeights(Balancer):
    """Causal weights of time chunks, with a ladder of causality parameters.

    Wang, Sankaran & Perdikaris, "Respecting causality is all you need for training
    physics-informed neural networks", arXiv:2203.07404 (2022); published as "Respecting
    causality for training physics-informed neural networks", Comput. Methods Appl. Mech.
    Engrg. 421 (2024), 116813.

    With ``L`` the M chunk losses (:func:`chunk_losses`) and ``epsilon`` the current
    rung of the ladder ``epsilons``::

        w_k = exp(-epsilon * sum_{j<k} L_j)        (w_0 = 1)

    A chunk only gains weight once every earlier chunk has a small residual. After
    computing the weights, if ``min_k w_k > delta`` (all chunks resolved at this
    ``epsilon``) and the ladder is not at its last rung, later calls use the next,
    stricter ``epsilon``. A call with a non-finite chunk loss keeps the previous weights,
    rung and state. :meth:`loss` gives the causal training loss in one call.

    Args:
        num_chunks: Number of time chunks M (the balancer's ``num_losses``).
        epsilons: The causality parameters, positive, finite and non-decreasing (a
            single number gives a fixed ``epsilon``).
        delta: Threshold on ``min(w)`` for moving to the next rung, in ``(0, 1]``
            (1 never moves).
        mode: ``"raw"`` (the paper's), ``"minmax"`` or ``"l2"`` preprocessing of the chunk
            losses before the cumulative sum.
        eps: Used by the ``"l2"`` mode only.

    Attributes:
        rung: ``BalancerState`` int32 index of the current ``epsilon`` in ``epsilons``.
        min_weight: ``BalancerState`` ``min(w)`` of the last accepted call (1 before).

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.causal import CausalWeights
        >>> cw = CausalWeights(3, epsilons=(1.0, 10.0), delta=0.5)
        >>> [round(float(v), 4) for v in cw(jnp.array([0.1, 0.2, 0.3]))]  # exp(-[0, .1, .3])
        [1.0, 0.9048, 0.7408]
        >>> int(cw.rung[...]), float(cw.epsilon)  # min(w) > 0.5: next rung
        (1, 10.0)
        >>> [round(float(v), 4) for v in cw(jnp.array([0.1, 0.2, 0.3]))]  # exp(-[0, 1, 3])
        [1.0, 0.3679, 0.0498]
    """

    def __init__(
        self,
        num_chunks: int,
        *,
        epsilons: float | Sequence[float] = (1e-2, 1e-1, 1.0, 1e1, 1e2),
        delta: float = 0.99,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        num_chunks = check_positive_int("num_chunks", num_chunks)
        self.epsilons = _check_epsilons(epsilons)
        self.delta = check_real("delta", delta, minimum=0.0, maximum=1.0, min_open=True)
        super().__init__(num_chunks, mode=mode, eps=eps)
        self.update_every = 1
        self.rung = BalancerState(jnp.zeros((), jnp.int32))
        self.min_weight = BalancerState(jnp.ones((), default_float()))

    @property
    def num_chunks(self) -> int:
        return self.num_losses

    @property
    def epsilon(self) -> jax.Array:
        """The current causality parameter ``epsilons[rung]`` (default float dtype)."""
        return jnp.asarray(self.epsilons, default_float())[self.rung[...]]

    def trackers(self) -> dict[str, jax.Array]:
        """What a trainer logs of these weights: ``epsilon`` and ``min_weight`` (the
        smallest chunk weight of the last update), as ``tracker/causal_<name>``."""
        return {"epsilon": self.epsilon, "min_weight": self.min_weight[...]}

    def _hparams(self) -> dict[str, Any]:
        return {"epsilons": list(self.epsilons), "delta": self.delta}

    def config(self) -> dict[str, Any]:
        """Class name and constructor arguments (``num_chunks`` in place of the base's
        ``num_losses``, so ``CausalWeights(**cfg)`` without ``"class"`` rebuilds it)."""
        cfg = super().config()
        return {"class": cfg.pop("class"), "num_chunks": cfg.pop("num_losses"), **cfg}

    def _update(self, x: jax.Array) -> jax.Array:
        # Exclusive cumulative sum sum_{j<k} L_j; cumsum(x) - x would cancel badly when a
        # later loss dwarfs the earlier ones.
        before = jnp.concatenate([jnp.zeros((1,), x.dtype), jnp.cumsum(x)[:-1]])
        weights = jnp.exp(-self.epsilon * before)
        low = jnp.min(weights)
        rung = self.rung[...]
        advance = (low > self.delta) & (rung < len(self.epsilons) - 1)
        self.rung[...] = jnp.where(advance, rung + 1, rung)
        self.min_weight[...] = low
        return weights

    def loss(self, residual: jax.Array, t: jax.Array, t_min: float, t_max: float) -> jax.Array:
        """Causal loss ``mean_k(w_k * L_k)`` of a residual at times ``t``.

        Computes the chunk losses (:func:`chunk_losses` over ``num_chunks`` chunks of
        ``[t_min, t_max]``), the weights from them (``stop_gradient``-ed, updating the
        state) and returns the weighted mean, differentiable through ``L_k`` only.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.nnx.balancers.causal import CausalWeights
            >>> cw = CausalWeights(2, epsilons=1.0)
            >>> r, t = jnp.array([1.0, 1.0, 2.0]), jnp.array([0.0, 0.2, 0.9])
            >>> round(float(cw.loss(r, t, 0.0, 1.0)), 4)  # (1 * 1 + exp(-1) * 4) / 2
            1.2358
        """
        losses = chunk_losses(residual, t, self.num_losses, t_min, t_max)
        weights = self(losses)
        return jnp.mean(weights * losses)
