"""The closed, axis-aligned, capped :class:`Cylinder` in 3-D.

Example:
    >>> from jno.domain import Cylinder
    >>> Cylinder([0.0, 0.0, 0.0], 1.0, 2.0).parts
    ('cylinder.side', 'cylinder.bottom', 'cylinder.top')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import points, select_parts, shape_name, vector
from jno.domain._compiled import compiled
from jno.domain._rfunctions import r_and
from jno.domain._sampling import pick
from jno.domain.point_set import PointSet
from jno.domain.shape import Shape
from jno.nnx._checks import check_bool, check_int, check_real
from jno.nnx._dtype import default_float

__all__ = ["Cylinder"]


class Cylinder(Shape):
    """The capped cylinder of ``radius`` and ``height`` around an axis-parallel line.

    Its boundary parts are ``<name>.side``, ``<name>.bottom`` (the cap at the lower end
    of the axis) and ``<name>.top``. :meth:`distance` is the exact signed distance;
    :meth:`smooth_distance` the R-conjunction of the disk term ``(r^2 - rho^2) / (2 r)``
    (``rho`` the distance to the axis) and the slab ``(z - z_0)(z_1 - z) / height``.

    Args:
        center: the centre of the cylinder (the middle of its axis), 3 coordinates.
        radius: finite and > 0.
        height: the length along the axis, finite and > 0.
        axis: the coordinate the axis is parallel to: 0, 1 or 2 (default, ``z``).
        name: the prefix of the part names.

    Example:
        >>> import jax
        >>> from jno.domain import Cylinder
        >>> cyl = Cylinder([0.0, 0.0, 1.0], 0.5, 2.0)
        >>> cyl.bounds
        ((-0.5, -0.5, 0.0), (0.5, 0.5, 2.0))
        >>> cyl.distance([[0.0, 0.0, 1.0], [0.25, 0.0, 1.0]]).tolist()
        [0.5, 0.25]
        >>> x = cyl.boundary(4, parts="cylinder.top").sample(jax.random.key(0))
        >>> x[:, 2].tolist()
        [2.0, 2.0, 2.0, 2.0]
    """

    def __init__(
        self,
        center: Sequence[float],
        radius: float,
        height: float,
        axis: int = 2,
        *,
        name: str | None = None,
    ):
        c = vector(center, "center", dim=3)
        r = check_real("radius", radius, minimum=0.0, min_open=True)
        h = check_real("height", height, minimum=0.0, min_open=True)
        axis = check_int("axis", axis, minimum=0, maximum=2)
        name = shape_name("cylinder" if name is None else name)
        self.center: tuple[float, ...] = c
        self.radius: float = r
        self.height: float = h
        self.axis: int = axis
        self.cross_axes: tuple[int, int] = tuple(k for k in range(3) if k != axis)
        half = [h / 2 if k == axis else r for k in range(3)]
        bounds = (tuple(v - e for v, e in zip(c, half)), tuple(v + e for v, e in zip(c, half)))
        parts = (f"{name}.side", f"{name}.bottom", f"{name}.top")
        super().__init__(dim=3, bounds=bounds, name=name, parts=parts)

    def __repr__(self) -> str:
        named = "" if self.name == "cylinder" else f", name={self.name!r}"
        return (
            f"Cylinder(center={list(self.center)}, radius={self.radius}, height={self.height}, "
            f"axis={self.axis}{named})"
        )

    @property
    def measure(self) -> float:
        """The volume ``pi r^2 h``.

        Example:
            >>> round(Cylinder([0, 0, 0], 1.0, 2.0).measure, 6)
            6.283185
        """
        return math.pi * self.radius**2 * self.height

    @property
    def part_measures(self) -> dict[str, float]:
        """Areas: ``2 pi r h`` for the side, ``pi r^2`` for each cap.

        Example:
            >>> [round(a, 4) for a in Cylinder([0, 0, 0], 1.0, 2.0).part_measures.values()]
            [12.5664, 3.1416, 3.1416]
        """
        cap = math.pi * self.radius**2
        return dict(zip(self.parts, (2 * math.pi * self.radius * self.height, cap, cap)))

    def _local(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Offset across the axis ``(n, 2)``, its length ``rho`` and the offset ``z``
        along the axis, from the centre."""
        x = points(x, 3)
        v = x - np.asarray(self.center, x.dtype)
        across = v[:, list(self.cross_axes)]
        return across, jnp.linalg.norm(across, axis=1), v[:, self.axis]

    def _excess(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Signed distances past the side (``rho - r``) and past the caps."""
        _, rho, z = self._local(x)
        return rho - self.radius, jnp.abs(z) - self.height / 2

    @compiled
    def distance(self, x: jax.Array) -> jax.Array:
        """Exact signed distance, positive inside.

        Example:
            >>> Cylinder([0, 0, 0], 1.0, 2.0).distance([[0.0, 0.0, 0.75], [2.0, 0.0, 0.0]]).tolist()
            [0.25, -1.0]
        """
        side, cap = self._excess(x)
        outside = jnp.hypot(jnp.maximum(side, 0), jnp.maximum(cap, 0))
        return -(outside + jnp.minimum(jnp.maximum(side, cap), 0))

    @compiled
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """R-conjunction of the disk term and the slab along the axis.

        Example:
            >>> cyl = Cylinder([0, 0, 0], 1.0, 2.0)
            >>> cyl.smooth_distance([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).tolist()
            [0.0, 0.0]
        """
        _, rho, z = self._local(x)
        r, h = self.radius, self.height
        return r_and((r * r - rho * rho) / (2 * r), (h * h / 4 - z * z) / h)

    @compiled
    def part_index(self, x: jax.Array) -> jax.Array:
        """0 (side), 1 (bottom) or 2 (top): the nearest part.

        Example:
            >>> cyl = Cylinder([0, 0, 0], 1.0, 2.0)
            >>> cyl.part_index([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]).tolist()
            [0, 1, 2]
        """
        side, cap = self._excess(x)
        _, _, z = self._local(x)
        return jnp.where(side > cap, 0, jnp.where(z < 0, 1, 2)).astype(jnp.int32)

    @compiled
    def normal(self, x: jax.Array) -> jax.Array:
        """Radial on the side, ``-e_axis`` on the bottom, ``+e_axis`` on the top.

        Example:
            >>> Cylinder([0, 0, 0], 1.0, 2.0).normal([[0.0, 1.0, 0.5], [0.0, 0.0, -1.0]]).tolist()
            [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]
        """
        across, rho, z = self._local(x)
        radial = across / jnp.where(rho > 0, rho, 1)[:, None]
        part = self.part_index(x)
        zeros = jnp.zeros_like(z)
        cols = [zeros, zeros, zeros]
        for col, k in enumerate(self.cross_axes):
            cols[k] = jnp.where(part == 0, radial[:, col], 0)
        cols[self.axis] = jnp.where(part == 0, 0, jnp.where(part == 1, -1, 1)).astype(z.dtype)
        return jnp.stack(cols, axis=1)

    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """``n`` points uniform in area on the selected parts.

        Example:
            >>> import jax
            >>> from jno.domain import Cylinder
            >>> cyl = Cylinder([0.0, 0.0, 0.0], 1.0, 1.0, axis=0)
            >>> x = cyl.boundary(3, parts="cylinder.bottom").sample(jax.random.key(0))
            >>> x[:, 0].tolist()
            [-0.5, -0.5, -0.5]
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        chosen = select_parts(repr(self), self.parts, (self.name,), parts)
        which = np.asarray([self.parts.index(p) for p in chosen])
        areas = np.asarray(list(self.part_measures.values()))[which]
        probabilities = areas / areas.sum()
        r, h, cross = self.radius, self.height, self.cross_axes

        def draw(key: jax.Array) -> jax.Array:
            dtype = default_float()
            u = jax.random.uniform(key, (n, 3), dtype)
            part = jnp.asarray(which)[pick(u[:, 0], probabilities)]
            angle = 2 * np.pi * u[:, 1]
            # Side: full radius, height uniform; caps: radius r sqrt(u) is uniform in area.
            rho = jnp.where(part == 0, r, r * jnp.sqrt(u[:, 2]))
            z = jnp.where(part == 0, (u[:, 2] - 0.5) * h, jnp.where(part == 1, -h / 2, h / 2))
            cols = [z, z, z]
            cols[cross[0]], cols[cross[1]] = rho * jnp.cos(angle), rho * jnp.sin(angle)
            return jnp.stack(cols, axis=1) + np.asarray(self.center, dtype)

        return PointSet(n, 3, resample, "boundary", jax.jit(draw))
