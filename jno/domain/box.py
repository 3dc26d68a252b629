"""Axis-aligned boxes in any dimension: :class:`Box`, :class:`Interval`, :class:`Rectangle`.

Boundary parts are the faces, named ``<name>.<axis><side>``: the axis is ``x``, ``y``,
``z`` for coordinates 0, 1, 2 of a box of dimension <= 3 and ``x<k>_`` for coordinate
``k`` of a higher-dimensional one; the side is ``0`` for the face ``x = lo`` and ``1``
for ``x = hi``. A 2-D rectangle has ``rectangle.x0``, ``rectangle.x1``, ``rectangle.y0``,
``rectangle.y1``; a 4-D box ``box.x0_0``, ``box.x0_1``, ..., ``box.x3_1``.

Example:
    >>> from jno.domain import Box
    >>> Box([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).parts[-2:]
    ('box.z0', 'box.z1')
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import (
    all_columns,
    bounding_grid,
    corners,
    points,
    select_parts,
    shape_name,
    vector,
)
from jno.domain._compiled import compiled
from jno.domain._rfunctions import r_and_all
from jno.domain._sampling import pick
from jno.domain._shared_draws import shared_draw
from jno.domain.point_set import PointSet
from jno.domain.shape import Shape
from jno.nnx._checks import check_bool, check_index, check_int, check_real
from jno.nnx._dtype import default_float

__all__ = ["Box", "Interval", "Rectangle"]


def face_names(name: str, dim: int, axes: Sequence[int]) -> tuple[str, ...]:
    """Part names of the faces ``(axis, lo), (axis, hi)`` over ``axes`` in order.

    Example:
        >>> face_names("r", 2, [0, 1])
        ('r.x0', 'r.x1', 'r.y0', 'r.y1')
    """
    label = (lambda a: "xyz"[a]) if dim <= 3 else (lambda a: f"x{a}_")
    return tuple(f"{name}.{label(a)}{side}" for a in axes for side in (0, 1))


class Box(Shape):
    """Axis-aligned box ``[lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}]``, any dimension.

    With ``time_axis`` set, one coordinate is time: :meth:`boundary` then samples the
    lateral boundary (spatial faces times the full time range), :meth:`initial` the
    slice ``t = lo[time_axis]``, and :meth:`distance`, :meth:`smooth_distance`,
    :meth:`normal` refer to the lateral boundary (the distance to the spatial faces). A
    box with a time axis does not enter combinations.

    Args:
        lo: lower corner, length ``d``.
        hi: upper corner, length ``d``; ``lo < hi`` elementwise.
        time_axis: index of the time coordinate (negative counts from the end), or
            ``None`` for a purely spatial box. Needs ``d >= 2``.
        name: prefix of the face names (see :mod:`jno.domain.box`).

    Raises:
        ValueError: mismatched lengths, non-finite bounds, ``lo >= hi`` on some axis,
            or ``time_axis`` out of range.

    Example:
        >>> import jax
        >>> from jno.domain import Box
        >>> st = Box([0.0, 0.0], [1.0, 5.0], time_axis=-1)   # (x, t)
        >>> x0 = st.initial(6).sample(jax.random.key(0))
        >>> x0[:, 1].tolist()
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        >>> st.parts
        ('box.x0', 'box.x1')
    """

    default_name = "box"

    def __init__(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        time_axis: int | None = None,
        *,
        name: str | None = None,
    ):
        lo_t, hi_t = corners(lo, hi)
        d = len(lo_t)
        if time_axis is not None:
            time_axis = check_int("time_axis", time_axis)
            if d < 2:
                raise ValueError(
                    f"time_axis needs a box of dimension >= 2 (space and time), got dimension "
                    f"{d} with time_axis={time_axis}"
                )
            time_axis = check_index("time_axis", time_axis, d)
        name = shape_name(self.default_name if name is None else name)
        self.time_axis: int | None = time_axis
        self.spatial_axes: tuple[int, ...] = tuple(k for k in range(d) if k != time_axis)
        parts = face_names(name, d, self.spatial_axes)
        super().__init__(dim=d, bounds=(lo_t, hi_t), name=name, parts=parts)

    def __repr__(self) -> str:
        t = "" if self.time_axis is None else f", time_axis={self.time_axis}"
        named = "" if self.name == self.default_name else f", name={self.name!r}"
        return f"{type(self).__name__}(lo={list(self.lo)}, hi={list(self.hi)}{t}{named})"

    # -- sampling helpers (pure jax, called inside PointSet.sample)

    def _scale(self, u: jax.Array) -> jax.Array:
        """Map uniforms in [0, 1) to the box."""
        lo, hi = np.asarray(self.lo, u.dtype), np.asarray(self.hi, u.dtype)
        # The clip guards the float rounding of lo + (hi - lo) * u at the top end.
        return jnp.clip(lo + (hi - lo) * u, lo, hi)

    def _described(self, sampler: str, *settings: Hashable) -> tuple[Hashable, ...]:
        """What determines a draw of this box (:func:`shared_draw`'s description)."""
        return (type(self), sampler, self.lo, self.hi, self.time_axis, *settings)

    def _uniform(self, key: jax.Array, n: int) -> jax.Array:
        return self._scale(jax.random.uniform(key, (n, self.dim), default_float()))

    def _face_areas(self) -> np.ndarray:
        extent = np.subtract(self.hi, self.lo)
        areas = [math.prod(np.delete(extent, a)) for a in self.spatial_axes]
        return np.repeat(np.asarray(areas, np.float64), 2)

    def face_probabilities(self) -> np.ndarray:
        """Probability of each boundary face, in proportion to its ``(d-1)``-dim area.

        Faces are ordered ``(axis a, lo), (axis a, hi)`` over the spatial axes ``a`` in
        order (the order of :attr:`parts`). With a time axis, the area includes the time
        extent.

        Example:
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0], [1.0, 3.0]).face_probabilities().tolist()
            [0.375, 0.375, 0.125, 0.125]
        """
        p = self._face_areas()
        return p / p.sum()

    @property
    def measure(self) -> float:
        """The volume: the product of the extents (including the time extent).

        Example:
            >>> Box([0, 0, 0], [1, 2, 3]).measure
            6.0
        """
        return math.prod(b - a for a, b in zip(self.lo, self.hi))

    @property
    def part_measures(self) -> dict[str, float]:
        """The ``(d-1)``-dim area of each face (including the time extent).

        Example:
            >>> Rectangle([0, 0], [2, 1]).part_measures["rectangle.y0"]
            2.0
        """
        return dict(zip(self.parts, self._face_areas().tolist()))

    # -- geometry: over the spatial axes (the lateral boundary with a time axis)

    def _spatial(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Coordinates, centre and half-extent on the spatial axes."""
        axes = list(self.spatial_axes)
        lo, hi = np.asarray(self.lo)[axes], np.asarray(self.hi)[axes]
        centre, half = ((lo + hi) / 2).astype(x.dtype), ((hi - lo) / 2).astype(x.dtype)
        return x[:, axes], centre, half

    @compiled
    def classify(self, x: jax.Array) -> jax.Array:
        """Inside / on the boundary / outside (``+1 / 0 / -1``): a closed box test on
        every axis, the boundary being the spatial faces.

        Example:
            >>> Box([0, 0], [1, 1]).classify([[0.5, 0.5], [0.0, 0.5], [2.0, 0.5]]).tolist()
            [1, 0, -1]
        """
        x = points(x, self.dim)
        tol = self.tolerance
        lo, hi = np.asarray(self.lo, x.dtype), np.asarray(self.hi, x.dtype)
        closed = all_columns((x >= lo - tol) & (x <= hi + tol))
        xs, centre, half = self._spatial(x)
        strict = all_columns(jnp.abs(xs - centre) < half - tol)
        return jnp.where(strict & closed, 1, jnp.where(closed, 0, -1)).astype(jnp.int8)

    @compiled
    def distance(self, x: jax.Array) -> jax.Array:
        """Exact signed distance to the (lateral) boundary, positive inside.

        Example:
            >>> Box([0, 0], [2, 2]).distance([[1.0, 1.5], [3.0, 1.0]]).tolist()
            [0.5, -1.0]
        """
        xs, centre, half = self._spatial(points(x, self.dim))
        q = jnp.abs(xs - centre) - half
        outside = jnp.linalg.norm(jnp.maximum(q, 0), axis=1)
        return -(outside + jnp.minimum(jnp.max(q, axis=1), 0))

    @compiled
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """R-conjunction of the slabs ``(x_a - lo_a)(hi_a - x_a) / (hi_a - lo_a)`` over
        the spatial axes (each has unit gradient on its faces).

        Example:
            >>> Interval(0.0, 2.0).smooth_distance([[1.0], [2.0]]).tolist()
            [0.5, 0.0]
        """
        xs, centre, half = self._spatial(points(x, self.dim))
        slabs = (half * half - (xs - centre) ** 2) / (2 * half)
        return r_and_all([slabs[:, k] for k in range(slabs.shape[1])])

    def _nearest_face(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xs, centre, half = self._spatial(x)
        slot = jnp.argmax(jnp.abs(xs - centre) - half, axis=1)
        upper = jnp.take_along_axis(xs - centre, slot[:, None], axis=1)[:, 0] > 0
        return slot, upper

    @compiled
    def normal(self, x: jax.Array) -> jax.Array:
        """The outward unit normal of the nearest face.

        Example:
            >>> Box([0, 0], [1, 1]).normal([[0.5, 0.0], [1.0, 0.5]]).tolist()
            [[0.0, -1.0], [1.0, 0.0]]
        """
        x = points(x, self.dim)
        slot, upper = self._nearest_face(x)
        axis = jnp.asarray(self.spatial_axes)[slot]
        sign = jnp.where(upper, 1, -1).astype(x.dtype)
        return jnp.where(jax.nn.one_hot(axis, self.dim, dtype=bool), sign[:, None], 0)

    @compiled
    def part_index(self, x: jax.Array) -> jax.Array:
        """Index of the nearest face in :attr:`parts`.

        Example:
            >>> Box([0, 0], [1, 1]).part_index([[0.5, 0.0], [1.0, 0.5]]).tolist()
            [2, 1]
        """
        slot, upper = self._nearest_face(points(x, self.dim))
        return (2 * slot + upper).astype(jnp.int32)

    # -- public samplers (each draw is a jax.jit shared by equal samplers: sampled
    # eagerly it compiles once instead of op by op; inside an outer trace it is inlined)

    def interior(self, n: int, resample: bool = False) -> PointSet:
        """``n`` points uniform in the box (the closed box; boundary hits have measure 0).

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).interior(8).sample(jax.random.key(0)).shape
            (8, 3)
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        draw = shared_draw(self._described("interior", n), lambda: partial(self._uniform, n=n))
        return PointSet(n, self.dim, resample, "interior", draw)

    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """``n`` points uniform on the boundary (the lateral boundary with a time axis).

        A face is picked per point with :meth:`face_probabilities` (restricted to the
        selected ``parts`` and renormalised), the point is uniform on it, and its normal
        coordinate is set exactly to ``lo`` or ``hi``.

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> x = Box([0.0, 0.0], [1.0, 1.0]).boundary(50).sample(jax.random.key(0))
            >>> bool(((x == 0.0) | (x == 1.0)).any(axis=1).all())
            True
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        chosen = select_parts(repr(self), self.parts, (self.name,), parts)
        faces = np.asarray([self.parts.index(p) for p in chosen])
        probabilities = self.face_probabilities()
        if len(faces) < len(self.parts):
            probabilities = probabilities[faces] / probabilities[faces].sum()
        face_axis = np.repeat(np.asarray(self.spatial_axes, np.int32), 2)[faces]
        face_upper = faces % 2 == 1
        d = self.dim

        def draw(key: jax.Array) -> jax.Array:
            # The dtype is read when the draw is traced, so it follows jax_enable_x64.
            dtype = default_float()
            lo, hi = np.asarray(self.lo, dtype), np.asarray(self.hi, dtype)
            # One random call: column 0 picks the face, the rest place the point.
            u = jax.random.uniform(key, (n, d + 1), dtype)
            face = pick(u[:, 0], probabilities)
            axis = jnp.asarray(face_axis)[face]
            upper = jnp.asarray(face_upper)[face]
            value = jnp.where(upper, jnp.asarray(hi)[axis], jnp.asarray(lo)[axis])
            on_face = jax.nn.one_hot(axis, d, dtype=jnp.bool_)
            return jnp.where(on_face, value[:, None], self._scale(u[:, 1:]))

        shared = shared_draw(self._described("boundary", n, tuple(faces)), lambda: draw)
        return PointSet(n, d, resample, "boundary", shared)

    def initial(self, n: int, resample: bool = False) -> PointSet:
        """``n`` points uniform on the initial slice ``t = lo[time_axis]``.

        Raises:
            ValueError: the box has no ``time_axis``.

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> x = Box([0.0, 2.0], [1.0, 3.0], time_axis=1).initial(3).sample(jax.random.key(0))
            >>> x[:, 1].tolist()
            [2.0, 2.0, 2.0]
        """
        if self.time_axis is None:
            raise ValueError(
                f"initial() needs a time axis, but {self!r} has time_axis=None; build the box "
                "with time_axis=<index of t>, e.g. Box([x0, t0], [x1, t1], time_axis=-1)"
            )
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        t = self.time_axis
        t0 = self.lo[t]
        draw = shared_draw(
            self._described("initial", n),
            lambda: lambda key: self._uniform(key, n).at[:, t].set(t0),
        )
        return PointSet(n, self.dim, resample, "initial", draw)

    def grid(self, n_per_axis: int | Sequence[int]) -> jax.Array:
        """Regular grid over the closed box, corners included, for evaluation and plots.

        Args:
            n_per_axis: points per axis (>= 2), one int for all axes or one per axis.

        Returns:
            array of shape ``(prod(n_per_axis), d)`` of the default float dtype; the last
            axis varies fastest (``"ij"`` indexing), so ``grid.reshape(*n_per_axis, d)`` is
            the mesh. Wrap it with :meth:`PointSet.from_array` to train on it.

        Example:
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0], [1.0, 2.0]).grid(2).tolist()
            [[0.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 2.0]]
        """
        return bounding_grid(self.bounds, n_per_axis)


class Rectangle(Box):
    """The rectangle ``[lo_0, hi_0] x [lo_1, hi_1]``: a two-dimensional :class:`Box`.

    Args:
        lo: lower-left corner ``(x, y)``.
        hi: upper-right corner, ``lo < hi`` elementwise.
        name: prefix of the edge names ``<name>.x0`` (``x = lo_0``), ``<name>.x1``,
            ``<name>.y0``, ``<name>.y1``.

    Example:
        >>> from jno.domain import Rectangle
        >>> r = Rectangle([0.0, 0.0], [1.0, 1.0], name="outer")
        >>> r.parts, round(float(r.distance([[0.1, 0.5]])[0]), 6)
        (('outer.x0', 'outer.x1', 'outer.y0', 'outer.y1'), 0.1)
    """

    default_name = "rectangle"

    def __init__(self, lo: Sequence[float], hi: Sequence[float], *, name: str | None = None):
        vector(lo, "lo", dim=2)
        vector(hi, "hi", dim=2)
        super().__init__(lo, hi, name=name)


class Interval(Box):
    """The interval ``[a, b]``: a one-dimensional :class:`Box`.

    Its boundary is the two end points (parts ``<name>.x0`` and ``<name>.x1``), each
    drawn with probability 1/2.

    Args:
        a: left end (finite).
        b: right end (finite), ``a < b``.
        name: prefix of the part names.

    Example:
        >>> import jax
        >>> from jno.domain import Interval
        >>> I = Interval(-1.0, 1.0)
        >>> I.interior(5).sample(jax.random.key(0)).shape
        (5, 1)
        >>> I.grid(3)[:, 0].tolist()
        [-1.0, 0.0, 1.0]
    """

    default_name = "interval"

    def __init__(self, a: float, b: float, *, name: str | None = None):
        a, b = check_real("a", a), check_real("b", b)
        if not a < b:
            raise ValueError(f"a must be < b, got a={a}, b={b}")
        super().__init__([a], [b], name=name)

    def __repr__(self) -> str:
        named = "" if self.name == self.default_name else f", name={self.name!r}"
        return f"Interval({self.lo[0]}, {self.hi[0]}{named})"
