"""Exact-count rejection sampling: pure, jit-able, ``vmap``-able functions of a key.

A draw proposes ``n`` candidates and keeps the accepted ones in place; inside a
``jax.lax.while_loop`` it proposes top-up batches, whose accepted candidates fill the
rejected slots, until none is left (:func:`exact_count`). It always returns exactly
``n`` points, i.i.d. from the accepted region. Beyond the first batch's draw and test,
the work is one cheap pass over it and work in the size of the top-up batches. A
top-up batch is sized for the expected rejects of the first with a 10 % margin, so one
usually suffices.
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


WORD = 32
"""Flags per word when the rejected slots of a draw are counted (bit ``j`` of word ``g``
is slot ``32 g + j``)."""

_SHIFTS = np.arange(WORD, dtype=np.uint32)


def _low_bits(j: jax.Array) -> jax.Array:
    """Words with bits ``0 .. j`` set (``j <= 31``: ``2 << 31`` wraps to 0), computed, so
    that XLA's fused loops need no gather."""
    return (jnp.uint32(2) << j.astype(jnp.uint32)) - jnp.uint32(1)


def pack_flags(flags: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Flags packed into 32-bit words, and each word's count of set flags.

    Example:
        >>> import jax.numpy as jnp
        >>> words, counts = pack_flags(jnp.array([True, False, True] + [False] * 30 + [True]))
        >>> words.tolist(), counts.tolist()
        ([5, 2], [2, 1])
    """
    m = flags.shape[0]
    groups = -(-m // WORD)
    bits = jnp.pad(flags, (0, groups * WORD - m)).reshape(groups, WORD).astype(jnp.uint32)
    # The bits are disjoint, so their sum is their OR.
    words = jnp.sum(bits << _SHIFTS, axis=1, dtype=jnp.uint32)
    return words, jax.lax.population_count(words).astype(jnp.int32)


def flag_ranks(flags: jax.Array) -> jax.Array:
    """Number of set flags before each flag (an exclusive running count), from packed
    words and popcounts: elementwise work only, where a ``cumsum`` on XLA's CPU backend
    is a windowed reduction that recomputes its fused input per window element.

    Example:
        >>> import jax.numpy as jnp
        >>> flag_ranks(jnp.array([True, False, True, True])).tolist()
        [0, 1, 1, 2]
    """
    m = flags.shape[0]
    words, counts = pack_flags(flags)
    before = jnp.cumsum(counts) - counts
    below = jax.lax.population_count(words[:, None] & (_low_bits(jnp.asarray(_SHIFTS)) >> 1))
    return (before[:, None] + below.astype(jnp.int32)).reshape(-1)[:m]


def set_bit_position(words: jax.Array, k: jax.Array) -> jax.Array:
    """Position of the ``k``-th (from 0) set bit of each word: a binary search on
    popcounts of the low bits (31 when the word has ``k`` or fewer set bits).

    Example:
        >>> import jax.numpy as jnp
        >>> set_bit_position(jnp.array([0b10110, 0b10110, 0b10110], jnp.uint32),
        ...                  jnp.array([0, 1, 2])).tolist()
        [1, 2, 4]
    """
    pos = jnp.zeros_like(k)
    for step in (16, 8, 4, 2, 1):
        # Bits 0 .. pos + step - 1 hold at most k set bits: the k-th lies further up.
        count = jax.lax.population_count(words & _low_bits(pos + step - 1)).astype(k.dtype)
        pos = jnp.where(count <= k, pos + step, pos)
    return pos


def exact_count(key: jax.Array, n: int, propose: Propose, fraction: float) -> jax.Array:
    """Exactly ``n`` accepted candidates, i.i.d. from the accepted region.

    A first batch of ``n`` candidates keeps its accepted ones in place; each rejected
    slot takes, in order, an accepted candidate of the top-up batches (of
    :func:`top_up_count` candidates each), proposed in a ``while_loop`` until no slot is
    left. Every point is an accepted candidate independent of the others, so the ``n``
    points are i.i.d. from the accepted region.

    Cost: besides the first batch's draw and test, one pass packs its rejected flags
    into 32-bit words; each top-up batch then costs work in its own size only. It
    locates the rejected slots it fills from the words (a scatter of word starts, a
    running maximum and a popcount search) and scatters its accepted candidates into
    them.

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
    words, counts = pack_flags(~accepted)
    before = jnp.cumsum(counts) - counts  # rejected slots in the words before each word
    total = jnp.sum(counts)
    word_index = jnp.arange(words.shape[0], dtype=jnp.int32)
    window = jnp.arange(pool, dtype=jnp.int32)

    def more(state):
        _, filled, batch = state
        return (filled < total) & (batch < MAX_BATCHES)

    def fill(state):
        points, filled, batch = state
        cand, ok = propose(jax.random.fold_in(key, batch), pool)
        # This batch fills the rejected slots of ranks filled + (0 .. pool - 1). The
        # word holding rank r is the last word starting at or before it: scatter each
        # word's start into the window, then carry the maximum forward.
        overlaps = before + counts > filled
        start = jnp.where(overlaps, jnp.maximum(before - filled, 0), pool)
        owner = jnp.full(pool, -1, jnp.int32).at[start].max(word_index, mode="drop")
        owner = jnp.maximum(jax.lax.cummax(owner), 0)
        bit = set_bit_position(words[owner], filled + window - before[owner])
        slot = owner * WORD + bit
        rank = flag_ranks(ok)  # among this batch's accepted
        fills = ok & (filled + rank < total)
        # Candidates that fill nothing get distinct indices past the end (dropped).
        target = jnp.where(fills, slot[jnp.clip(rank, 0, pool - 1)], n + window)
        points = points.at[target].set(cand, mode="drop", unique_indices=True)
        return points, filled + jnp.sum(ok, dtype=jnp.int32), batch + 1

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
    # A flat draw holds the same numbers as one of shape (m, d), and XLA's CPU kernel
    # for it is several times faster when m is odd.
    u = jax.random.uniform(key, (m * len(lo),), dtype).reshape(m, len(lo))
    return lo_a + (hi_a - lo_a) * u
