"""The abstract :class:`Shape`: CSG operators, classification and the generic samplers.

Example:
    >>> from jno.domain import Disk, Rectangle
    >>> plate = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.5, 0.5], 0.25)
    >>> plate.dim, plate.parts
    (2, ('rectangle.x0', 'rectangle.x1', 'rectangle.y0', 'rectangle.y1', 'disk'))
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import Bounds, bounding_grid
from jno.domain._compiled import compiled
from jno.domain._plot import plot_shape
from jno.domain._sampling import box_candidates, check_fraction, exact_count
from jno.domain.point_set import PointSet
from jno.nnx._checks import check_bool, check_int
from jno.nnx._dtype import default_float

__all__ = ["Shape"]


RELATIVE_TOLERANCE = 1e-6
"""Points within ``1e-6 x`` the shape's size of its boundary count as on the boundary."""


class Shape(abc.ABC):
    """A closed region of ``R^d``: a primitive or a combination of primitives.

    Shapes are immutable and compare and hash by identity, so they (and the point
    sets they hand out) can be static arguments of ``jax.jit``. The geometry methods
    (:meth:`classify`, :meth:`distance`, ...) are pure JAX functions of the points:
    called eagerly, each runs as one compiled program (see
    :mod:`jno.domain._compiled`); under ``jax.jit``, ``vmap`` or ``grad`` of user code
    they are traced inline. Shapes combine with ``a | b`` (union), ``a - b``
    (difference) and ``a & b`` (intersection), nested freely.

    Attributes:
        dim: dimension ``d`` of the points.
        bounds: ``(lo, hi)``, tuples of floats: the bounding box.
        name: the shape's name; a primitive's name prefixes its part names.
        parts: names of the boundary parts, e.g. ``("rectangle.x0", ..., "disk")``.
        tolerance: points whose distance to the boundary is at most this count as on
            it (``1e-6 x`` the size of the bounding box and its distance to 0).
        lo, hi: the corners of the bounding box (``bounds``).
        time_axis: the time coordinate: None but for a space-time :class:`Box`.

    Example:
        >>> import jax
        >>> from jno.domain import Disk, Rectangle
        >>> shape = Rectangle([0.0, 0.0], [2.0, 1.0]) | Disk([2.0, 0.5], 0.5)
        >>> shape.bounds
        ((0.0, 0.0), (2.5, 1.0))
        >>> shape.interior(100).sample(jax.random.key(0)).shape
        (100, 2)
    """

    time_axis: int | None = None

    @property
    def lo(self) -> tuple[float, ...]:
        """The lower corner of the bounding box."""
        return self.bounds[0]

    @property
    def hi(self) -> tuple[float, ...]:
        """The upper corner of the bounding box."""
        return self.bounds[1]

    def __init__(self, *, dim: int, bounds: Bounds, name: str, parts: tuple[str, ...]):
        lo, hi = (tuple(float(v) for v in b) for b in bounds)
        self.dim: int = dim
        self.bounds: Bounds = (lo, hi)
        self.name: str = name
        self.parts: tuple[str, ...] = tuple(parts)
        size = max(max(b - a for a, b in zip(lo, hi)), *map(abs, lo + hi))
        self.tolerance: float = RELATIVE_TOLERANCE * size
        self._frozen = True

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable, cannot set {key!r}")
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable, cannot delete {key!r}")

    # -- constructive solid geometry

    def __or__(self, other: Shape) -> Shape:
        from jno.domain.csg import Union

        return Union(self, other) if isinstance(other, Shape) else NotImplemented

    def __sub__(self, other: Shape) -> Shape:
        from jno.domain.csg import Difference

        return Difference(self, other) if isinstance(other, Shape) else NotImplemented

    def __and__(self, other: Shape) -> Shape:
        from jno.domain.csg import Intersection

        return Intersection(self, other) if isinstance(other, Shape) else NotImplemented

    @property
    def primitives(self) -> tuple[Shape, ...]:
        """The primitives of the shape, left to right (a primitive: itself).

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> r, d = Rectangle([0, 0], [1, 1]), Disk([1, 1], 0.5)
            >>> (r - d).primitives == (r, d)
            True
        """
        return (self,)

    @property
    def orientations(self) -> tuple[int, ...]:
        """Per primitive, ``+1``, or ``-1`` where the shape's outward normal is the
        primitive's inward one (the primitive is on the right of an odd number of
        differences).

        Example:
            >>> from jno.domain import Disk, Rectangle
            >>> (Rectangle([0, 0], [1, 1]) - Disk([1, 1], 0.5)).orientations
            (1, -1)
        """
        return (1,)

    def combine(self, values: Sequence[jax.Array]) -> jax.Array:
        """Evaluate the shape's tree on one value per primitive (in :attr:`primitives`
        order): union is the maximum, intersection the minimum, the right side of a
        difference is negated. On values in ``{-1, 0, +1}`` (outside, on the boundary,
        inside) this classifies points against the combination.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.domain import Disk, Rectangle
            >>> shape = Rectangle([0, 0], [1, 1]) - Disk([1, 1], 0.5)
            >>> shape.combine([jnp.array([1, 1]), jnp.array([1, -1])]).tolist()
            [-1, 1]
        """
        if len(values) != 1:
            raise ValueError(f"values must hold 1 array for a primitive, got {len(values)}")
        return values[0]

    # -- geometry (pure jax on points of shape (n, d))

    @compiled
    def classify(self, x: jax.Array) -> jax.Array:
        """``(n,)`` int8: ``+1`` inside, ``0`` on the boundary (within
        :attr:`tolerance`), ``-1`` outside.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 1.0).classify([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]).tolist()
            [1, 0, -1]
        """
        d = self.distance(x)
        tol = self.tolerance
        return jnp.where(d > tol, 1, jnp.where(d >= -tol, 0, -1)).astype(jnp.int8)

    @compiled
    def contains(self, x: jax.Array) -> jax.Array:
        """``(n,)`` bool: the point lies in the closed shape (boundary within
        :attr:`tolerance` included).

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 1.0).contains([[0.5, 0.5], [1.0, 0.0], [1.0, 1.0]]).tolist()
            [True, True, False]
        """
        return self.classify(x) >= 0

    @abc.abstractmethod
    def distance(self, x: jax.Array) -> jax.Array:
        """``(n,)`` signed distance to the boundary: positive inside, zero on the
        boundary, negative outside. Exact for primitives; an R-function approximation
        for combinations (see :mod:`jno.domain.csg`).

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 2.0).distance([[0.0, 0.0], [3.0, 0.0]]).tolist()
            [2.0, -1.0]
        """

    @abc.abstractmethod
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """``(n,)`` smooth approximate distance for exactly imposed boundary conditions
        ``u = g + phi * N``: zero on the boundary, positive inside, infinitely
        differentiable away from corners and vertices, with unit gradient on the
        boundary away from them.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 2.0).smooth_distance([[0.0, 0.0], [2.0, 0.0]]).tolist()
            [1.0, 0.0]
        """

    @abc.abstractmethod
    def normal(self, x: jax.Array) -> jax.Array:
        """``(n, d)`` outward unit normals at boundary points (that of the nearest
        boundary piece for other points).

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 2.0).normal([[0.0, -2.0]]).tolist()
            [[0.0, -1.0]]
        """

    @abc.abstractmethod
    def part_index(self, x: jax.Array) -> jax.Array:
        """``(n,)`` int32: index in :attr:`parts` of the boundary part nearest each
        point (the part a boundary point lies on).

        Example:
            >>> from jno.domain import Rectangle
            >>> r = Rectangle([0.0, 0.0], [1.0, 1.0])
            >>> [r.parts[i] for i in r.part_index([[0.0, 0.5], [0.5, 1.0]]).tolist()]
            ['rectangle.x0', 'rectangle.y1']
        """

    # -- measures

    @property
    @abc.abstractmethod
    def measure(self) -> float:
        """Area (2-D) or volume (3-D): exact for primitives, a seeded Monte Carlo
        estimate for combinations.

        Example:
            >>> from jno.domain import Disk
            >>> round(Disk([0.0, 0.0], 1.0).measure, 6)
            3.141593
        """

    @property
    @abc.abstractmethod
    def part_measures(self) -> dict[str, float]:
        """Length (2-D) or area (3-D) of each boundary part on the shape's boundary:
        exact for primitives, a seeded Monte Carlo estimate for combinations.

        Example:
            >>> from jno.domain import Rectangle
            >>> Rectangle([0.0, 0.0], [2.0, 1.0]).part_measures["rectangle.x0"]
            1.0
        """

    @property
    def fill_fraction(self) -> float:
        """Fraction of the bounding box the shape fills: the acceptance rate of the
        interior sampler.

        Example:
            >>> from jno.domain import Disk
            >>> round(Disk([0.0, 0.0], 1.0).fill_fraction, 4)
            0.7854
        """
        lo, hi = self.bounds
        return self.measure / math.prod(b - a for a, b in zip(lo, hi))

    # -- samplers

    def interior(self, n: int, resample: bool = False) -> PointSet:
        """Exactly ``n`` points uniform in the shape (kind ``"interior"``).

        Candidates uniform in the bounding box are kept when :meth:`contains` accepts
        them: ``n`` of them, then top-up batches sized from :attr:`fill_fraction` for
        the rejected slots (see :mod:`jno.domain._sampling`). The draw is a pure
        function of the key that runs under ``jax.jit`` and ``jax.vmap``.

        Raises:
            ValueError: the shape fills less than 1e-3 of its bounding box ("too thin
                for the sampler").

        Example:
            >>> import jax
            >>> from jno.domain import Disk
            >>> disk = Disk([0.0, 0.0], 1.0)
            >>> x = disk.interior(500).sample(jax.random.key(0))
            >>> x.shape, bool(disk.contains(x).all())
            ((500, 2), True)
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        fraction = self.fill_fraction
        check_fraction(f"shape {self.name!r}", fraction, "interior")
        lo, hi = self.bounds

        def draw(key: jax.Array) -> jax.Array:
            # The dtype is read when the draw is traced, so it follows jax_enable_x64.
            dtype = default_float()

            def propose(k: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
                x = box_candidates(k, m, lo, hi, dtype)
                return x, self.contains(x)

            return exact_count(key, n, propose, fraction)

        return PointSet(n, self.dim, resample, "interior", jax.jit(draw))

    @abc.abstractmethod
    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """Exactly ``n`` points uniform in length (2-D) or area (3-D) on the boundary
        (kind ``"boundary"``).

        Args:
            n: number of points.
            resample: redraw every training step.
            parts: the boundary parts to sample (a part name, a primitive's name for all
                its parts, or a sequence of those); None for the whole boundary.

        Raises:
            ValueError: an unknown part name.

        Example:
            >>> import jax
            >>> from jno.domain import Rectangle
            >>> r = Rectangle([0.0, 0.0], [1.0, 1.0])
            >>> x = r.boundary(10, parts="rectangle.y1").sample(jax.random.key(0))
            >>> x[:, 1].tolist() == [1.0] * 10
            True
        """

    # -- grids and plots

    def masked_grid(self, n_per_axis: int | Sequence[int]) -> tuple[jax.Array, np.ndarray]:
        """The regular grid of the bounding box and a mask of its points in the shape.

        Args:
            n_per_axis: points per axis (>= 2), one int for all axes or one per axis.

        Returns:
            ``(grid, mask)``: ``grid`` of shape ``(prod(n_per_axis), d)`` in the default
            float dtype with the last axis varying fastest (``grid.reshape(*n_per_axis,
            d)`` is the mesh), and ``mask``, a numpy bool array ``(prod(n_per_axis),)``.

        Example:
            >>> from jno.domain import Disk
            >>> grid, mask = Disk([0.0, 0.0], 1.0).masked_grid(3)
            >>> grid.shape, mask.reshape(3, 3).astype(int).tolist()
            ((9, 2), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
        """
        grid = bounding_grid(self.bounds, n_per_axis)
        return grid, np.asarray(self.contains(grid))

    def grid(self, n_per_axis: int | Sequence[int]) -> jax.Array:
        """The points of the bounding box's regular grid in the closed shape, ``(k, d)``.

        Example:
            >>> from jno.domain import Disk
            >>> Disk([0.0, 0.0], 1.0).grid(3).tolist()
            [[-1.0, 0.0], [0.0, -1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
        """
        grid, mask = self.masked_grid(n_per_axis)
        # A numpy selection: an eager gather would compile for every count of points.
        return jnp.asarray(np.asarray(grid)[mask])

    def plot(
        self,
        path: str | Path,
        points: Any = None,
        normals: Any = None,
        title: str | None = None,
    ) -> Path:
        """Draw the shape (and optionally points and normals) to an image file.

        In 2-D: the shape filled on a fine grid and its boundary from dense samples; in
        3-D: boundary samples in a 3-D scatter. Parent folders are created.

        Args:
            path: the file to write (its suffix picks the format, e.g. ``.png``).
            points: an ``(n, d)`` array or a :class:`PointSet` (sampled with key 0).
            normals: True to draw :meth:`normal` at ``points``, or an ``(n, d)`` array.
            title: the figure's title; defaults to :attr:`name`.

        Returns:
            the path written.

        Example:
            >>> import tempfile, os
            >>> from jno.domain import Disk
            >>> disk = Disk([0.0, 0.0], 1.0)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     out = disk.plot(os.path.join(tmp, "disk.png"), disk.boundary(8), True)
            ...     out.stat().st_size > 0
            True
        """
        return plot_shape(self, path, points=points, normals=normals, title=title)
