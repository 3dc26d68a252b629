"""Domains for PINN training: boxes in any dimension, 2-D and 3-D primitives and their
Boolean combinations (constructive solid geometry), with exact-count point samplers.

A shape hands out :class:`PointSet` s: small immutable descriptions of *how* to draw
``n`` points (interior, boundary parts, initial time slice, or a fixed array). The
points themselves come from ``PointSet.sample(key)``, a pure JAX function of the key,
so a trainer can draw a fixed set once or redraw ``resample=True`` sets every step
inside its compiled step. Points are of the default float dtype: float32, or float64
under ``jax_enable_x64``.

Shapes: :class:`Box` (any dimension, optionally with a time axis), :class:`Interval`,
:class:`Rectangle`, :class:`Disk`, :class:`Polygon` (2-D), :class:`Ball`,
:class:`Cylinder` (3-D), combined with ``|`` (:class:`Union`), ``-``
(:class:`Difference`) and ``&`` (:class:`Intersection`). Every shape has a signed
``distance``, a ``smooth_distance`` for exactly imposed boundary conditions, outward
``normal`` s, named boundary ``parts``, ``grid`` / ``masked_grid`` and ``plot``.

Example:
    >>> import jax
    >>> from jno.domain import Box
    >>> box = Box([0.0, 0.0], [1.0, 2.0])
    >>> pts = box.interior(128)
    >>> x = pts.sample(jax.random.key(0))
    >>> x.shape, str(x.dtype)
    ((128, 2), 'float32')
    >>> bool(((x >= 0) & (x <= jax.numpy.array([1.0, 2.0]))).all())
    True

    A plate with a hole, its boundary and the normals there:

    >>> from jno.domain import Disk, Rectangle
    >>> plate = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.5, 0.5], 0.2, name="hole")
    >>> xb = plate.boundary(64, parts="hole").sample(jax.random.key(1))
    >>> n = plate.normal(xb)   # outward of the plate: into the hole
    >>> bool(jax.numpy.allclose(n, -(xb - 0.5) / 0.2, atol=1e-4))
    True
"""

from jno.domain.ball import Ball, Disk
from jno.domain.box import Box, Interval, Rectangle
from jno.domain.csg import Combination, Difference, Intersection, Union
from jno.domain.cylinder import Cylinder
from jno.domain.point_set import PointSet
from jno.domain.polygon import Polygon
from jno.domain.shape import Shape

__all__ = [
    "Ball",
    "Box",
    "Combination",
    "Cylinder",
    "Difference",
    "Disk",
    "Intersection",
    "Interval",
    "Polygon",
    "PointSet",
    "Rectangle",
    "Shape",
    "Union",
]
