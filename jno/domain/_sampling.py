"""Exact-count rejection sampling: pure, jit-able, ``vmap``-able functions of a key.

A draw proposes a fixed-size batch of ``m`` candidates, keeps the accepted ones, and
inside a ``jax.lax.while_loop`` proposes further batches until ``n`` are accepted, so
it always returns exactly ``n`` points and the first ``n`` accepted candidates of an
i.i.d. stream are i.i.d. from the accepted region. ``m`` is sized from the estimated
acceptance fraction with a 10 % margin, so the loop rarely runs: at worst (small
fractions) a first batch falls short with probability about ``Phi(-0.1 n / sqrt(1.1
n))``, 1e-3 for ``n = 1000`` and far less for more points or larger fractions.
Regions whose acceptance fraction is below :data:`MIN_FRACTION` are refused when the
point set is built.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jno.domain._sampling import exact_count
    >>> def propose(key):
    ...     x = jax.random.uniform(key, (64, 1))
    ...     return x, x[:, 0] < 0.25
    >>> x = exact_count(jax.random.key(0), 100, propose)
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

Propose = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


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


def exact_count(key: jax.Array, n: int, propose: Propose) -> jax.Array:
    """Exactly ``n`` accepted candidates: the first ``n`` of the stream of batches.

    Args:
        key: PRNG key; batch ``i`` is proposed from ``jax.random.fold_in(key, i)``.
        n: number of points.
        propose: ``key -> (candidates (m, d), accepted (m,) bool)``, pure jax.

    Returns:
        array ``(n, d)`` of accepted candidates, in the order they were proposed.

    Example:
        >>> import jax
        >>> propose = lambda k: (jax.random.normal(k, (8, 2)), jax.numpy.ones(8, bool))
        >>> exact_count(jax.random.key(1), 20, propose).shape
        (20, 2)
    """
    cand, ok = propose(jax.random.fold_in(key, 0))
    first = jnp.nonzero(ok, size=n, fill_value=0)[0]
    accepted = jnp.minimum(jnp.sum(ok, dtype=jnp.int32), n)
    slots = jnp.arange(n, dtype=jnp.int32)

    def more(state):
        points, count, batch = state
        return (count < n) & (batch < MAX_BATCHES)

    def fill(state):
        points, count, batch = state
        cand, ok = propose(jax.random.fold_in(key, batch))
        found = jnp.sum(ok, dtype=jnp.int32)
        index = jnp.nonzero(ok, size=n, fill_value=0)[0]
        # Slot s takes this batch's (s - count)-th accepted candidate, if there is one.
        offset = slots - count
        fresh = (offset >= 0) & (offset < found)
        take = cand[index[jnp.clip(offset, 0, n - 1)]]
        points = jnp.where(fresh[:, None], take, points)
        return points, jnp.minimum(count + found, n), batch + 1

    state = (cand[first], accepted, jnp.int32(1))
    return jax.lax.while_loop(more, fill, state)[0]


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
