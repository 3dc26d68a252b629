"""Boundary sampler and Monte Carlo measures of combinations (see :mod:`jno.domain.csg`).

Boundary: candidates are drawn on the selected parts of each primitive in proportion to
their length (area in 3-D) and kept when they lie on the combination's boundary: the
tree is evaluated with ``0`` for the primitive the candidate was drawn on and, for
every other primitive, ``+1`` if the candidate is strictly inside it (beyond
:attr:`Shape.tolerance`), else ``-1``; the candidate is kept when the root is ``0``.
Counts are exact (see :mod:`jno.domain._sampling`); selected parts with less than
1e-3 of their length on the boundary are refused.

Measures: :attr:`Combination.measure` is a Monte Carlo estimate from 200 000 seeded
uniform points of the bounding box (relative standard error ``sqrt((1 - f) / (200000
f))`` for a fill fraction ``f``: 0.08 % at ``f = 0.9``), and each value of
:attr:`Combination.part_measures` one from 65 536 seeded boundary points per primitive.

Example:
    >>> from jno.domain import Disk, Rectangle
    >>> from jno.domain._csg_sampling import estimate_measure
    >>> round(estimate_measure(Rectangle([0, 0], [1, 1]) - Disk([0, 0], 0.5)), 2)
    0.8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import select_parts
from jno.domain._sampling import check_fraction, exact_count, pick, top_up_count
from jno.domain.point_set import PointSet
from jno.nnx._checks import check_bool, check_int
from jno.nnx._dtype import default_float

# A jno.domain.csg.Combination; not imported, as csg.py imports this module.
Combination = Any

MEASURE_SAMPLES = 200_000
PART_SAMPLES = 65_536


def estimate_measure(shape: Combination) -> float:
    """Area (volume): the fraction of 200 000 seeded uniform points of the bounding box
    that the shape contains, times the box's volume.

    Example:
        >>> from jno.domain import Disk
        >>> round(estimate_measure(Disk([0, 0], 1.0, name="a") | Disk([0, 0], 0.5)), 2)
        3.14
    """
    lo, hi = (np.asarray(b) for b in shape.bounds)
    u = np.random.default_rng(0).random((MEASURE_SAMPLES, shape.dim))
    inside = np.asarray(shape.contains(jnp.asarray(lo + (hi - lo) * u, default_float())))
    return float(inside.mean() * np.prod(hi - lo))


def estimate_part_measures(shape: Combination) -> dict[str, float]:
    """Length (area) of each primitive part on the combination's boundary: the part's
    exact measure times the fraction of its points (of 65 536 seeded boundary points
    per primitive) that :meth:`Combination.on_boundary` keeps. A part entirely on
    (or off) the boundary comes out exact.

    Example:
        >>> from jno.domain import Disk
        >>> both = Disk([0, 0], 1.0, name="a") | Disk([0, 0], 0.5)
        >>> {k: round(v, 4) for k, v in estimate_part_measures(both).items()}
        {'a': 6.2832, 'disk': 0.0}
    """
    out: dict[str, float] = {}
    for k, p in enumerate(shape.primitives):
        x = p.boundary(PART_SAMPLES).sample(jax.random.key(k))
        kept = np.asarray(shape.on_boundary(x, np.full(PART_SAMPLES, k, np.int32)))
        part = np.asarray(p.part_index(x))
        hits = np.bincount(part[kept], minlength=len(p.parts))
        drawn = np.maximum(np.bincount(part, minlength=len(p.parts)), 1)
        exact = p.part_measures
        out.update({q: float(exact[q] * h / c) for q, h, c in zip(p.parts, hits, drawn)})
    return out


def boundary_points(
    shape: Combination, n: int, resample: bool, parts: str | Sequence[str] | None
) -> PointSet:
    """The point set of :meth:`Combination.boundary`: candidates on the selected parts
    of the primitives, in proportion to their measure, kept by
    :meth:`Combination.on_boundary`, with an exact count.

    Example:
        >>> import jax
        >>> from jno.domain import Disk, Rectangle
        >>> shape = Rectangle([0, 0], [1, 1]) - Disk([1, 1], 0.5)
        >>> boundary_points(shape, 5, False, "disk").sample(jax.random.key(0)).shape
        (5, 2)
    """
    n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
    names = tuple(p.name for p in shape.primitives)
    owner = f"shape {shape.name!r}"
    chosen = select_parts(owner, shape.parts, names, parts)
    sources, weights = [], []
    for k, p in enumerate(shape.primitives):
        own = tuple(q for q in p.parts if q in chosen)
        if own:
            sources.append((k, own))
            weights.append(sum(p.part_measures[q] for q in own))
    fraction = sum(shape.part_measures[q] for q in chosen) / sum(weights)
    check_fraction(owner, fraction, f"boundary {list(chosen)}")
    sizes = (n, top_up_count(n, fraction))
    samplers = {
        m: [shape.primitives[k].boundary(m, parts=own) for k, own in sources] for m in sizes
    }
    source_index = np.asarray([k for k, _ in sources], np.int32)
    probabilities = np.asarray(weights) / sum(weights)

    def propose(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        keys = jax.random.split(key, len(sources) + 1)
        drawn = jnp.stack([ps.sample(kk) for ps, kk in zip(samplers[m], keys[1:])])
        slot = pick(jax.random.uniform(keys[0], (m,), drawn.dtype), probabilities)
        cand = jnp.take_along_axis(drawn, slot[None, :, None], axis=0)[0]
        return cand, shape.on_boundary(cand, jnp.asarray(source_index)[slot])

    draw = lambda key: exact_count(key, n, propose, fraction)  # noqa: E731
    return PointSet(n, shape.dim, resample, "boundary", jax.jit(draw))
