"""Exact-count rejection sampling: pure, jit-able, ``vmap``-able functions of a key.

A draw proposes ``n`` candidates and keeps the accepted ones in place; inside a
``jax.lax.while_loop`` it proposes top-up batches, whose accepted candidates fill the
rejected slots, until none is left (:func:`exact_count`). It always returns exactly
``n`` points, i.i.d. from the accepted region. A top-up batch is sized for the
expected rejects of the first with a 10 % margin, so one usually suffices.
Regions whose acceptance fraction is below :data:`MIN_FRACTION` are refused when the
point set is built.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jno.domain._sampling import exact_count
    >>> def propose(key, m):
    ...     x = jax.random.uniform(key, (m, 1))
    ...     return x, x[:, 0] < 0.25
    >>> x = exact_count(jax.random.key(0), 100, propose, 0.25)
    >>> x.shape, bool((x < 0.25).all())
    ((100, 1), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

MIN_FRACTION = 1e-3
"""Smallest acceptance fraction a sampler accepts (about 1000 candidates per point)."""

MAX_BATCHES = 100_000
"""Bound on the batches of one draw, so that no draw can hang: with an acceptance
fraction of at least :data:`MIN_FRACTION` and batches sized for it, reaching it has
a probability far below ``1e-300``."""

Propose = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]


def candidate_count(n: int, fraction: float) -> int:
    """Candidates per batch for ``n`` points at acceptance ``fraction``: 10 % margin + 64.

    Example:
        >>> candidate_count(1000, 0.5)
        2264
    """
    return math.ceil(n / fraction * 1.1) + 64


def check_fraction(owner: str, fraction: float, what: str) -> None:
    """Refuse a region whose acceptance ``fraction`` is below :data:`MIN_FRACTION`.

    Example:
        >>> check_fraction("disk", 0.785, "interior")
        >>> check_fraction("sliver", 1e-5, "interior")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: sliver is too thin for the sampler: its interior fills a fraction 1e-05 ...
    """
    if not fraction >= MIN_FRACTION:
        raise ValueError(
            f"{owner} is too thin for the sampler: its {what} fills a fraction {fraction:.3g} "
            f"of its candidates, below the minimum {MIN_FRACTION:g}; sample a smaller shape "
            "around it or use PointSet.from_array"
        )


def pick(u: jax.Array, probabilities: np.ndarray) -> jax.Array:
    """Index drawn with ``probabilities`` for each uniform in ``u`` (inverse CDF).

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> pick(jnp.array([0.1, 0.5, 0.9]), np.array([0.25, 0.5, 0.25])).tolist()
        [0, 1, 2]
    """
    # Inner thresholds of the CDF: index = number of thresholds <= u.
    cdf = np.cumsum(probabilities)[:-1].astype(u.dtype)
    return jnp.sum(u[:, None] >= cdf, axis=1)


def top_up_count(n: int, fraction: float) -> int:
    """Candidates per top-up batch of a draw of ``n`` at acceptance ``fraction``: sized
    for the ``n (1 - fraction)`` rejects of the first batch, 10 % margin + 64.

    Example:
        >>> top_up_count(1000, 0.5)
        1164
    """
    return candidate_count(max(1, math.ceil(n * (1.0 - fraction))), fraction)


def exact_count(key: jax.Array, n: int, propose: Propose, fraction: float) -> jax.Array:
    """Exactly ``n`` accepted candidates, i.i.d. from the accepted region.

    A first batch of ``n`` candidates keeps its accepted ones in place; each rejected
    slot takes, in order, an accepted candidate of the top-up batches (of
    :func:`top_up_count` candidates each), proposed in a ``while_loop`` until no slot is
    left. Every point is an accepted candidate independent of the others, so the ``n``
    points are i.i.d. from the accepted region. Only the small top-up batches are
    compacted; the first batch costs a draw and a test.

    Args:
        key: PRNG key; batch ``i`` is proposed from ``jax.random.fold_in(key, i)``.
        n: number of points.
        propose: ``(key, m) -> (candidates (m, d), accepted (m,) bool)``, pure jax.
        fraction: the expected acceptance fraction (sizes the top-up batches).

    Returns:
        array ``(n, d)`` of accepted candidates.

    Example:
        >>> import jax
        >>> propose = lambda k, m: (jax.random.normal(k, (m, 2)), jax.numpy.ones(m, bool))
        >>> exact_count(jax.random.key(1), 20, propose, 1.0).shape
        (20, 2)
    """
    pool = top_up_count(n, fraction)
    first, accepted = propose(jax.random.fold_in(key, 0), n)
    missing = ~accepted
    # The rejected slot of rank r (in slot order) takes the r-th accepted candidate of
    # the top-up stream: ranks are counted once, the loop carries how many are filled.
    rank = jnp.cumsum(missing, dtype=jnp.int32) - 1
    total = jnp.sum(missing, dtype=jnp.int32)

    def more(state):
        _, filled, batch = state
        return (filled < total) & (batch < MAX_BATCHES)

    def fill(state):
        points, filled, batch = state
        cand, ok = propose(jax.random.fold_in(key, batch), pool)
        found = jnp.sum(ok, dtype=jnp.int32)
        kept = cand[jnp.nonzero(ok, size=pool, fill_value=0)[0]]
        offset = rank - filled
        take = missing & (offset >= 0) & (offset < found)
        points = jnp.where(take[:, None], kept[jnp.clip(offset, 0, pool - 1)], points)
        return points, filled + found, batch + 1

    return jax.lax.while_loop(more, fill, (first, jnp.int32(0), jnp.int32(1)))[0]


def box_candidates(
    key: jax.Array, m: int, lo: tuple[float, ...], hi: tuple[float, ...], dtype: np.dtype
) -> jax.Array:
    """``m`` points uniform in the box ``[lo, hi]``.

    Example:
        >>> import jax, numpy as np
        >>> box_candidates(jax.random.key(0), 3, (0.0,), (2.0,), np.dtype("float32")).shape
        (3, 1)
    """
    lo_a, hi_a = np.asarray(lo, dtype), np.asarray(hi, dtype)
    return lo_a + (hi_a - lo_a) * jax.random.uniform(key, (m, len(lo)), dtype)
