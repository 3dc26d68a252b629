"""Round primitives: :class:`Ball` (3-D, or any dimension >= 2) and :class:`Disk` (2-D).

The boundary is one part named after the shape (``"ball"``, ``"disk"`` by default).

Example:
    >>> from jno.domain import Ball
    >>> ball = Ball([0.0, 0.0, 0.0], 2.0)
    >>> ball.parts, round(ball.measure, 4)
    (('ball',), 33.5103)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import points, select_parts, shape_name, square_norm, vector
from jno.domain._compiled import compiled
from jno.domain.point_set import PointSet
from jno.domain.shape import Shape
from jno.nnx._checks import check_bool, check_int, check_real
from jno.nnx._dtype import default_float

__all__ = ["Ball", "Disk"]


class Ball(Shape):
    """The closed ball ``|x - center| <= radius``, in 3-D (or any dimension >= 2).

    Distances are exact: :meth:`distance` is ``radius - |x - center|`` and
    :meth:`smooth_distance` ``(radius^2 - |x - center|^2) / (2 radius)``, whose gradient
    is the inward unit normal on the sphere.

    Args:
        center: the centre, ``d >= 2`` coordinates.
        radius: the radius, finite and > 0.
        name: the name of the shape and of its one boundary part.

    Raises:
        ValueError: a non-positive or non-finite radius, a centre with fewer than 2
            coordinates or non-finite ones.

    Example:
        >>> import jax
        >>> from jno.domain import Ball
        >>> ball = Ball([0.0, 0.0, 0.0], 1.0)
        >>> x = ball.boundary(100).sample(jax.random.key(0))
        >>> bool(abs(ball.distance(x)).max() < 1e-5)
        True
    """

    default_name = "ball"

    def __init__(self, center: Sequence[float], radius: float, *, name: str | None = None):
        c = vector(center, "center", dim=self._required_dim(center))
        if len(c) < 2:
            raise ValueError(f"center must have at least 2 coordinates, got {center!r}")
        r = check_real("radius", radius, minimum=0.0, min_open=True)
        name = shape_name(self.default_name if name is None else name)
        self.center: tuple[float, ...] = c
        self.radius: float = r
        bounds = (tuple(v - r for v in c), tuple(v + r for v in c))
        super().__init__(dim=len(c), bounds=bounds, name=name, parts=(name,))

    def _required_dim(self, center: Sequence[float]) -> int | None:
        """The dimension this class requires of ``center`` (None: any)."""
        return None

    def __repr__(self) -> str:
        named = "" if self.name == self.default_name else f", name={self.name!r}"
        return f"{type(self).__name__}(center={list(self.center)}, radius={self.radius}{named})"

    @property
    def measure(self) -> float:
        """``pi r^2`` in 2-D, ``4/3 pi r^3`` in 3-D (``pi^(d/2) r^d / Gamma(d/2 + 1)``).

        Example:
            >>> from jno.domain import Ball, Disk
            >>> round(Ball([0, 0, 0], 1.0).measure, 6), round(Disk([0, 0], 1.0).measure, 6)
            (4.18879, 3.141593)
        """
        d = self.dim
        return math.pi ** (d / 2) * self.radius**d / math.gamma(d / 2 + 1)

    @property
    def part_measures(self) -> dict[str, float]:
        """The length (2-D) or area (3-D) of the sphere: ``d x measure / radius``.

        Example:
            >>> from jno.domain import Ball
            >>> {k: round(v, 6) for k, v in Ball([0, 0, 0], 1.0).part_measures.items()}
            {'ball': 12.566371}
        """
        return {self.name: self.dim * self.measure / self.radius}

    def _offset(self, x: jax.Array) -> jax.Array:
        x = points(x, self.dim)
        return x - np.asarray(self.center, x.dtype)

    @compiled
    def classify(self, x: jax.Array) -> jax.Array:
        """Inside / on the sphere / outside (``+1 / 0 / -1``), from ``|x - center|^2``.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0, 0], 1.0).classify([[0.5, 0.0], [0.0, 1.0], [2.0, 0.0]]).tolist()
            [1, 0, -1]
        """
        s = square_norm(self._offset(x))
        r, tol = self.radius, self.tolerance
        inside = jnp.where(s <= (r + tol) ** 2, 0, -1)
        return jnp.where(s < (r - tol) ** 2, 1, inside).astype(jnp.int8)

    @compiled
    def distance(self, x: jax.Array) -> jax.Array:
        """``radius - |x - center|``.

        Example:
            >>> from jno.domain import Ball
            >>> Ball([0, 0, 0], 1.0).distance([[0.0, 0.0, 0.5], [0.0, 3.0, 0.0]]).tolist()
            [0.5, -2.0]
        """
        return self.radius - jnp.sqrt(square_norm(self._offset(x)))

    @compiled
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """``(radius^2 - |x - center|^2) / (2 radius)``.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0, 0], 2.0).smooth_distance([[0.0, 0.0], [0.0, 2.0]]).tolist()
            [1.0, 0.0]
        """
        r = self.radius
        return (r * r - square_norm(self._offset(x))) / (2 * r)

    @compiled
    def normal(self, x: jax.Array) -> jax.Array:
        """``(x - center) / |x - center|`` (zero at the centre).

        Example:
            >>> from jno.domain import Ball
            >>> Ball([1, 0, 0], 1.0).normal([[1.0, 0.0, 1.0]]).tolist()
            [[0.0, 0.0, 1.0]]
        """
        v = self._offset(x)
        norm = jnp.linalg.norm(v, axis=1, keepdims=True)
        return v / jnp.where(norm > 0, norm, 1)

    @compiled
    def part_index(self, x: jax.Array) -> jax.Array:
        """Zeros: the sphere is the one part.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0, 0], 1.0).part_index([[1.0, 0.0]]).tolist()
            [0]
        """
        return jnp.zeros(points(x, self.dim).shape[0], jnp.int32)

    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """``n`` points uniform on the sphere (normalised Gaussian vectors).

        Example:
            >>> import jax
            >>> from jno.domain import Disk
            >>> x = Disk([1.0, 0.0], 2.0).boundary(4).sample(jax.random.key(0))
            >>> x.shape
            (4, 2)
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        select_parts(repr(self), self.parts, (self.name,), parts)
        d, r = self.dim, self.radius

        def draw(key: jax.Array) -> jax.Array:
            dtype = default_float()
            g = jax.random.normal(key, (n, d), dtype)
            norm = jnp.linalg.norm(g, axis=1, keepdims=True)
            # A zero Gaussian vector has probability 0; the guard keeps NaN out anyway.
            unit = jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1), np.eye(d, 1, 0, dtype).T)
            return np.asarray(self.center, dtype) + r * unit

        return PointSet(n, d, resample, "boundary", jax.jit(draw))


class Disk(Ball):
    """The closed disk ``|x - center| <= radius`` in 2-D: a two-dimensional :class:`Ball`.

    Args:
        center: the centre ``(x, y)``.
        radius: the radius, finite and > 0.
        name: the name of the shape and of its one boundary part (the circle).

    Example:
        >>> from jno.domain import Disk
        >>> disk = Disk([0.0, 0.0], 0.5, name="hole")
        >>> disk.parts, disk.distance([[0.0, 0.0]]).tolist()
        (('hole',), [0.5])
        >>> Disk([0.0, 0.0], -1.0)
        Traceback (most recent call last):
        ...
        ValueError: radius must be finite and > 0, got -1.0
    """

    default_name = "disk"

    def _required_dim(self, center: Sequence[float]) -> int | None:
        """Two coordinates."""
        return 2
