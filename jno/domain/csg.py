"""Constructive solid geometry: :class:`Union`, :class:`Difference`, :class:`Intersection`.

Built by the operators of :class:`~jno.domain.shape.Shape`: ``a | b``, ``a - b``,
``a & b``. A combination is a closed region: ``a - b`` is the closure of ``a`` minus
``b``, so the boundary of ``b`` inside ``a`` belongs to it.

Distances. :meth:`Combination.distance` and :meth:`Combination.smooth_distance`
combine the children's with Rvachev's R0 functions: union ``a + b + sqrt(a^2 + b^2)``,
intersection ``a + b - sqrt(a^2 + b^2)``, difference ``A - B = A & (-B)``. They are
zero exactly on the combination's boundary, positive inside, negative outside, and
normalised to first order (unit gradient) on the boundary away from the corners, where
the pieces of different primitives meet; away from the boundary they are not the
Euclidean distance.

Sampling: the interior by rejection from the bounding box (:meth:`Shape.interior`);
the boundary by drawing on the primitives' parts and keeping the candidates on the
combination's boundary (:meth:`Combination.on_boundary`); measures by seeded Monte Carlo.
Details in :mod:`jno.domain._csg_sampling`.

Example:
    >>> import jax
    >>> from jno.domain import Disk, Rectangle
    >>> plate = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.5, 0.5], 0.25, name="hole")
    >>> x = plate.boundary(100, parts="hole").sample(jax.random.key(0))
    >>> bool(abs(plate.distance(x)).max() < 1e-5)
    True
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import points, positive_zero
from jno.domain._compiled import compiled
from jno.domain._csg_sampling import boundary_points, estimate_measure, estimate_part_measures
from jno.domain._rfunctions import r_and, r_or
from jno.domain.point_set import PointSet
from jno.domain.shape import Shape

__all__ = ["Combination", "Difference", "Intersection", "Union"]


class Combination(Shape):
    """A Boolean combination of two shapes of the same dimension (abstract).

    Args:
        left: a :class:`Shape`.
        right: a :class:`Shape` of the same dimension.
        name: the combination's name (default: built from the children's).

    Raises:
        TypeError: an operand is not a Shape.
        ValueError: the dimensions differ, a box has a time axis, or two primitives
            share a name.

    Example:
        >>> from jno.domain import Disk, Union
        >>> u = Union(Disk([0, 0], 1, name="a"), Disk([1, 0], 1, name="b"))
        >>> u.name, u.parts
        ('a | b', ('a', 'b'))
    """

    symbol = "?"
    complements_right = False

    def __init__(self, left: Shape, right: Shape, *, name: str | None = None):
        for arg, value in (("left", left), ("right", right)):
            if not isinstance(value, Shape):
                raise TypeError(f"{arg} must be a Shape, got {value!r}")
            if getattr(value, "time_axis", None) is not None:
                raise ValueError(
                    f"{arg} must be a purely spatial shape, got {value!r}; combine boxes "
                    "without time_axis"
                )
        if left.dim != right.dim:
            raise ValueError(
                f"dimensions must match, got {left.name!r} of dim {left.dim} and "
                f"{right.name!r} of dim {right.dim}"
            )
        seen: set[str] = set()
        for p in left.primitives + right.primitives:
            if p.name in seen:
                raise ValueError(
                    f"primitive names must be unique within a combination, got {p.name!r} "
                    f"twice; name them apart, e.g. {type(p).__name__}(..., name='{p.name}2')"
                )
            seen.add(p.name)
        if name is None:  # chains read "a - b - c", other nestings get parentheses
            bare = not isinstance(left, Combination) or left.symbol == self.symbol
            lhs = left.name if bare else f"({left.name})"
            rhs = f"({right.name})" if isinstance(right, Combination) else right.name
            name = f"{lhs} {self.symbol} {rhs}"
        elif not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        self.left: Shape = left
        self.right: Shape = right
        bounds, parts = self.combined_bounds(), left.parts + right.parts
        super().__init__(dim=left.dim, bounds=bounds, name=name, parts=parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.left!r}, {self.right!r})"

    @abc.abstractmethod
    def combined_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The bounding box of the combination from those of the children.

        Example:
            >>> from jno.domain import Disk
            >>> (Disk([0, 0], 1) | Disk([3, 0], 1, name="b")).combined_bounds()
            ((-1.0, -1.0), (4.0, 1.0))
        """

    @abc.abstractmethod
    def merge(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """The operator on the children's values in ``{-1, 0, +1}``: the maximum for a
        union, the minimum for an intersection, ``min(a, -b)`` for a difference.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.domain import Disk
            >>> a, b = Disk([0, 0], 1.0, name="a"), Disk([1, 0], 1.0, name="b")
            >>> v, w = jnp.array([1, 0, -1]), jnp.array([-1, -1, 1])
            >>> (a | b).merge(v, w).tolist(), (a - b).merge(v, w).tolist()
            ([1, 0, 1], [1, 0, -1])
        """

    @abc.abstractmethod
    def rfunction(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """The operator on the children's distances: an R0 function (see the module).

        Example:
            >>> from jno.domain import Disk
            >>> a, b = Disk([0, 0], 1.0, name="a"), Disk([1, 0], 1.0, name="b")
            >>> float((a | b).rfunction(0.0, -1.0)), float((a & b).rfunction(0.0, 1.0))
            (0.0, 0.0)
        """

    @property
    def primitives(self) -> tuple[Shape, ...]:
        """The primitives of both children, left first.

        Example:
            >>> from jno.domain import Disk
            >>> [p.name for p in (Disk([0, 0], 1.0, name="a") | Disk([1, 0], 1.0)).primitives]
            ['a', 'disk']
        """
        return self.left.primitives + self.right.primitives

    @property
    def orientations(self) -> tuple[int, ...]:
        """``-1`` for primitives on the right of an odd number of differences.

        Example:
            >>> from jno.domain import Disk
            >>> a, b, c = (Disk([0, 0], 1.0, name=k) for k in "abc")
            >>> (a - (b - c)).orientations
            (1, -1, 1)
        """
        flip = -1 if self.complements_right else 1
        return self.left.orientations + tuple(flip * s for s in self.right.orientations)

    def combine(self, values: Sequence[jax.Array]) -> jax.Array:
        """Evaluate the tree on one value per primitive (see :meth:`Shape.combine`).

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.domain import Disk
            >>> a, b, c = (Disk([0, 0], 1.0, name=k) for k in "abc")
            >>> int((a - (b - c)).combine([jnp.int8(1), jnp.int8(1), jnp.int8(1)]))
            1
        """
        if len(values) != len(self.primitives):
            raise ValueError(
                f"values must hold {len(self.primitives)} arrays (one per primitive), "
                f"got {len(values)}"
            )
        k = len(self.left.primitives)
        return self.merge(self.left.combine(values[:k]), self.right.combine(values[k:]))

    @compiled
    def classify(self, x: jax.Array) -> jax.Array:
        """``+1 / 0 / -1`` from the primitives' classification through the tree.

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> plate = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.25)
            >>> plate.classify([[0.1, 0.1], [0.5, 0.25], [0.5, 0.5]]).tolist()
            [1, 0, -1]
        """
        x = points(x, self.dim)
        return self.combine([p.classify(x) for p in self.primitives])

    @compiled
    def distance(self, x: jax.Array) -> jax.Array:
        """R0 combination of the children's exact distances (see the module).

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> plate = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.25)
            >>> [round(v, 6) for v in plate.distance([[0.5, 0.0], [0.5, 0.25]]).tolist()]
            [0.0, 0.0]
        """
        x = points(x, self.dim)
        return self.rfunction(self.left.distance(x), self.right.distance(x))

    @compiled
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """R0 combination of the children's smooth distances.

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> plate = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.25)
            >>> bool(plate.smooth_distance([[0.1, 0.1]])[0] > 0)
            True
        """
        x = points(x, self.dim)
        return self.rfunction(self.left.smooth_distance(x), self.right.smooth_distance(x))

    def _nearest(self, x: jax.Array) -> jax.Array:
        """Index of the primitive whose boundary is nearest each point."""
        gaps = jnp.stack([jnp.abs(p.distance(x)) for p in self.primitives], axis=1)
        return jnp.argmin(gaps, axis=1)

    @compiled
    def normal(self, x: jax.Array) -> jax.Array:
        """The nearest primitive's outward normal, flipped if it is subtracted.

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> plate = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.25)
            >>> plate.normal([[0.5, 0.25], [0.0, 0.1]]).tolist()
            [[0.0, 1.0], [-1.0, 0.0]]
        """
        x = points(x, self.dim)
        signs = np.asarray(self.orientations, x.dtype)[:, None, None]
        # Flipped zero components are -0.0: made 0.0.
        normals = positive_zero(jnp.stack([p.normal(x) for p in self.primitives]) * signs)
        nearest = self._nearest(x)
        return jnp.take_along_axis(normals, nearest[None, :, None], axis=0)[0]

    @compiled
    def part_index(self, x: jax.Array) -> jax.Array:
        """Index in :attr:`parts` of the nearest part of the nearest primitive.

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> plate = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.25)
            >>> plate.part_index([[0.5, 0.25], [0.0, 0.1]]).tolist()
            [4, 0]
        """
        x = points(x, self.dim)
        offsets = np.cumsum([0] + [len(p.parts) for p in self.primitives[:-1]])
        index = jnp.stack([p.part_index(x) + o for p, o in zip(self.primitives, offsets)])
        return jnp.take_along_axis(index, self._nearest(x)[None], axis=0)[0]

    @compiled
    def on_boundary(self, x: jax.Array, source: jax.Array) -> jax.Array:
        """``(n,)`` bool: points drawn on the boundary of primitive ``source[i]`` (an
        index into :attr:`primitives`) that lie on the combination's boundary: the tree
        evaluated with ``0`` for that primitive and, for every other, ``+1`` where the
        point is strictly inside it, else ``-1``, is ``0``.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.domain import Disk
            >>> u = Disk([0, 0], 1.0, name="a") | Disk([1, 0], 1.0, name="b")
            >>> u.on_boundary(jnp.array([[1.0, 0.0], [-1.0, 0.0]]), jnp.array([0, 0])).tolist()
            [False, True]
        """
        x = points(x, self.dim)
        values = [
            jnp.where(source == k, 0, jnp.where(p.classify(x) == 1, 1, -1)).astype(jnp.int8)
            for k, p in enumerate(self.primitives)
        ]
        return self.combine(values) == 0

    @cached_property
    def measure(self) -> float:
        """Monte Carlo estimate from 200 000 seeded points of the bounding box.

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> round((Rectangle([0, 0], [1, 1]) - Disk([0, 0], 0.5)).measure, 2)
            0.8
        """
        return estimate_measure(self)

    @cached_property
    def part_measures(self) -> dict[str, float]:
        """Monte Carlo estimates: each part's length (area) times the fraction of its
        points on the combination's boundary (65 536 seeded points per primitive).

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> import math
            >>> cut = Rectangle([0, 0], [1, 1]) - Disk([0, 0], 0.5)  # a quarter circle cut
            >>> measures = cut.part_measures
            >>> round(measures["rectangle.x0"], 2), abs(measures["disk"] - math.pi / 4) < 0.02
            (0.5, True)
        """
        return estimate_part_measures(self)

    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """``n`` points uniform on the boundary (see the module for the sampler).

        Raises:
            ValueError: an unknown part, or selected parts with less than 1e-3 of their
                length (area) on the combination's boundary.

        Example:
            >>> import jax
            >>> from jno.domain import Disk
            >>> lens = Disk([0.0, 0.0], 1.0, name="a") & Disk([1.0, 0.0], 1.0, name="b")
            >>> x = lens.boundary(64, parts="a").sample(jax.random.key(0))
            >>> bool((x[:, 0] >= 0.5 - 1e-6).all())
            True
        """
        return boundary_points(self, n, resample, parts)


class Union(Combination):
    """The union ``left | right``: points in either.

    Example:
        >>> from jno.domain import Disk
        >>> u = Disk([0.0, 0.0], 1.0, name="a") | Disk([1.5, 0.0], 1.0, name="b")
        >>> u.contains([[2.0, 0.0], [0.75, 0.9]]).tolist()
        [True, False]
    """

    symbol = "|"

    def combined_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        (la, ha), (lb, hb) = self.left.bounds, self.right.bounds
        return tuple(map(min, la, lb)), tuple(map(max, ha, hb))

    def merge(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.maximum(a, b)

    def rfunction(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return r_or(a, b)


class Intersection(Combination):
    """The intersection ``left & right``: points in both.

    Raises:
        ValueError: the bounding boxes of the two shapes do not overlap.

    Example:
        >>> from jno.domain import Disk, Rectangle
        >>> half = Disk([0.0, 0.0], 1.0) & Rectangle([0.0, -1.0], [1.0, 1.0])
        >>> half.bounds, round(half.measure, 2)
        (((0.0, -1.0), (1.0, 1.0)), 1.57)
    """

    symbol = "&"

    def combined_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        (la, ha), (lb, hb) = self.left.bounds, self.right.bounds
        lo, hi = tuple(map(max, la, lb)), tuple(map(min, ha, hb))
        if any(a >= b for a, b in zip(lo, hi)):
            raise ValueError(
                f"the intersection of {self.left.name!r} and {self.right.name!r} is empty "
                f"(their bounding boxes do not overlap: {self.left.bounds}, {self.right.bounds})"
            )
        return lo, hi

    def merge(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.minimum(a, b)

    def rfunction(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return r_and(a, b)


class Difference(Combination):
    """The difference ``left - right``: the closure of the points of ``left`` not in
    ``right`` (``left & complement(right)``).

    Example:
        >>> from jno.domain import Disk, Rectangle
        >>> plate = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.5, 0.5], 0.25)
        >>> plate.contains([[0.5, 0.5], [0.5, 0.25], [0.1, 0.1]]).tolist()
        [False, True, True]
        >>> plate.orientations
        (1, -1)
    """

    symbol = "-"
    complements_right = True

    def combined_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.left.bounds

    def merge(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.minimum(a, -b)

    def rfunction(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return r_and(a, -b)
