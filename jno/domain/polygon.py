"""Simple polygons: :class:`Polygon`, with exact and smooth distances.

Example:
    >>> from jno.domain import Polygon
    >>> tri = Polygon([(0, 0), (1, 0), (0, 1)])
    >>> tri.parts, tri.measure
    (('polygon.edge0', 'polygon.edge1', 'polygon.edge2'), 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.domain._args import points, positive_zero, select_parts, shape_name
from jno.domain._compiled import compiled
from jno.domain._sampling import pick
from jno.domain.point_set import PointSet
from jno.domain.shape import Shape
from jno.nnx._checks import check_bool, check_int
from jno.nnx._dtype import default_float

__all__ = ["Polygon"]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _parse_vertices(vertices: Any) -> np.ndarray:
    try:
        v = np.asarray(vertices, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"vertices must be a sequence of (x, y) pairs, got {vertices!r}") from None
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"vertices must have shape (k, 2), got shape {v.shape}")
    if v.shape[0] < 3:
        raise ValueError(f"vertices must hold at least 3 points, got {v.shape[0]}")
    if not np.isfinite(v).all():
        raise ValueError(f"vertices must be finite, got {vertices!r}")
    same = np.all(v[:, None] == v[None], axis=2) & ~np.eye(len(v), dtype=bool)
    if same.any():
        i, j = np.argwhere(same)[0]
        raise ValueError(
            f"vertices must be distinct, got vertices[{i}] == vertices[{j}] == {v[i].tolist()} "
            "(do not repeat the first vertex at the end)"
        )
    return v


def _check_simple(v: np.ndarray) -> None:
    """Raise unless the closed polyline through ``v`` is simple (no two edges meet
    except consecutive ones at their shared vertex)."""
    k = len(v)
    p, e = v, np.roll(v, -1, axis=0) - v
    q = p + e
    # Orientations of each edge's end points against every other edge's line.
    d1 = _cross(e[None], p[:, None] - p[None])  # [i, j]: p_i against edge j
    d2 = _cross(e[None], q[:, None] - p[None])  # q_i against edge j

    def on_segment(x: np.ndarray, j_axis: int) -> np.ndarray:
        # x[i, j] (a point of edge i) within the bounding box of edge j.
        lo, hi = np.minimum(p, q), np.maximum(p, q)
        lo, hi = (lo[None], hi[None]) if j_axis else (lo[:, None], hi[:, None])
        return np.all((x >= lo) & (x <= hi), axis=-1)

    pi, qi = np.broadcast_to(p[:, None], (k, k, 2)), np.broadcast_to(q[:, None], (k, k, 2))
    proper = (d1 * d2 < 0) & (d1.T * d2.T < 0)
    touch = ((d1 == 0) & on_segment(pi, 1)) | ((d2 == 0) & on_segment(qi, 1))
    meet = proper | touch | touch.T
    idx = np.arange(k)
    near = (idx[:, None] == idx[None]) | ((idx[:, None] - idx[None]) % k == 1)
    near |= near.T
    bad = meet & ~near
    # Consecutive edges meet only at their shared vertex unless they fold back.
    fold = (_cross(e, np.roll(e, -1, axis=0)) == 0) & (np.sum(e * np.roll(e, -1, 0), 1) < 0)
    if bad.any() or fold.any() or abs(_cross(p, q).sum()) == 0:
        if bad.any():
            i, j = sorted(np.argwhere(bad)[0].tolist())
            why = f"edges {i} and {j} intersect"
        elif fold.any():
            i = int(np.argmax(fold))
            why = f"edges {i} and {(i + 1) % k} fold back on each other"
        else:
            why = "its area is zero"
        raise ValueError(f"vertices must form a simple polygon, but {why}: {v.tolist()}")


class Polygon(Shape):
    """A simple polygon (no self-intersections), given by its vertices in order.

    The vertices are stored counter-clockwise in :attr:`vertices` (a clockwise list is
    reversed); edge ``k`` goes from ``vertices[k]`` to ``vertices[k + 1]`` (the last
    back to the first) and is the boundary part ``<name>.edge<k>``.

    :meth:`distance` is exact (the distance to the nearest edge, positive inside);
    :meth:`smooth_distance` is the approximate distance of Sukumar and Srivastava
    (2022): per edge, with ``f`` the signed distance to the edge's line, ``t = ((L/2)^2
    - |x - c|^2) / L`` (``L`` the edge's length, ``c`` its midpoint), ``phi_i =
    sqrt(f^2 + ((sqrt(t^2 + f^4) - t) / 2)^2)``, which vanishes exactly on the edge;
    combined as ``1 / sum_i(1 / phi_i)`` (R-equivalence, ``m = 1``), signed by the
    inside test. It is infinitely differentiable inside and outside the polygon, and
    on an edge (away from the vertices) its gradient is the inward unit normal.

    Args:
        vertices: ``k >= 3`` distinct points ``(x, y)``, clockwise or counter-clockwise.
        name: the prefix of the edge names.

    Raises:
        ValueError: fewer than 3 vertices, a repeated vertex, self-intersecting edges or
            a zero area.

    Example:
        >>> from jno.domain import Polygon
        >>> L = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
        >>> L.measure, L.distance([[1.5, 0.5]]).tolist()
        (3.0, [0.5])
        >>> Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: vertices must form a simple polygon, but edges 0 and 2 intersect: ...
    """

    def __init__(self, vertices: Sequence[Sequence[float]], *, name: str | None = None):
        v = _parse_vertices(vertices)
        _check_simple(v)
        area = 0.5 * float(_cross(v, np.roll(v, -1, axis=0)).sum())
        if area < 0:
            v, area = v[::-1].copy(), -area
        name = shape_name("polygon" if name is None else name)
        self.vertices: tuple[tuple[float, float], ...] = tuple(map(tuple, v.tolist()))
        self.area: float = area
        edges = np.roll(v, -1, axis=0) - v
        self.lengths: tuple[float, ...] = tuple(np.linalg.norm(edges, axis=1).tolist())
        parts = tuple(f"{name}.edge{k}" for k in range(len(v)))
        bounds = (tuple(v.min(0).tolist()), tuple(v.max(0).tolist()))
        super().__init__(dim=2, bounds=bounds, name=name, parts=parts)

    def __repr__(self) -> str:
        named = "" if self.name == "polygon" else f", name={self.name!r}"
        return f"Polygon(vertices={[list(p) for p in self.vertices]}{named})"

    @property
    def measure(self) -> float:
        """The area (shoelace formula).

        Example:
            >>> Polygon([(0, 0), (2, 0), (0, 2)]).measure
            2.0
        """
        return self.area

    @property
    def part_measures(self) -> dict[str, float]:
        """The length of each edge.

        Example:
            >>> [round(v, 4) for v in Polygon([(0, 0), (2, 0), (0, 2)]).part_measures.values()]
            [2.0, 2.8284, 2.0]
        """
        return dict(zip(self.parts, self.lengths))

    def _edges(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Per point and edge: the offset from the edge's start, the edge vector and
        its length, in the dtype of ``x``."""
        v = np.asarray(self.vertices)
        start = v.astype(x.dtype)
        edge = (np.roll(v, -1, axis=0) - v).astype(x.dtype)
        return x[:, None, :] - start, edge, np.asarray(self.lengths, x.dtype)

    def _inside(self, x: jax.Array) -> jax.Array:
        """Crossing-number test (a horizontal ray to +x), ``(n,)`` bool."""
        v = np.asarray(self.vertices)
        a, b = v.astype(x.dtype), np.roll(v, -1, axis=0).astype(x.dtype)
        dy = np.where(b[:, 1] == a[:, 1], 1, b[:, 1] - a[:, 1])
        y = x[:, 1:2]
        straddles = (a[:, 1] > y) != (b[:, 1] > y)
        crossing = x[:, :1] < a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
        return jnp.sum(straddles & crossing, axis=1) % 2 == 1

    def _edge_distances(self, x: jax.Array) -> jax.Array:
        """``(n, k)`` distance of each point to each edge (segment)."""
        w, edge, length = self._edges(x)
        s = jnp.clip(jnp.sum(w * edge, axis=2) / length**2, 0, 1)
        return jnp.linalg.norm(w - s[..., None] * edge, axis=2)

    @compiled
    def distance(self, x: jax.Array) -> jax.Array:
        """Distance to the nearest edge, positive inside.

        Example:
            >>> Polygon([(0, 0), (2, 0), (0, 2)]).distance([[0.5, 0.25], [1.0, -1.0]]).tolist()
            [0.25, -1.0]
        """
        x = points(x, 2)
        d = jnp.min(self._edge_distances(x), axis=1)
        return jnp.where(self._inside(x), d, -d)

    @compiled
    def smooth_distance(self, x: jax.Array) -> jax.Array:
        """Sukumar and Srivastava's approximate distance (see the class).

        Example:
            >>> tri = Polygon([(0, 0), (2, 0), (0, 2)])
            >>> phi = tri.smooth_distance([[1.0, 0.0], [0.5, 0.5], [3.0, 3.0]])
            >>> [float(phi[0]), bool(phi[1] > 0), bool(phi[2] < 0)]
            [0.0, True, True]
        """
        x = points(x, 2)
        w, edge, length = self._edges(x)
        f = (w[..., 0] * edge[:, 1] - w[..., 1] * edge[:, 0]) / length  # > 0 outside
        r = w - edge / 2  # offset from the edge's midpoint
        t = ((length / 2) ** 2 - jnp.sum(r * r, axis=2)) / length
        # Double where: square roots and divisions get a safe argument everywhere, so
        # that gradients stay finite where the other branch is taken.
        b = t * t + f**4
        varphi = jnp.where(b > 0, jnp.sqrt(jnp.where(b > 0, b, 1)), 0)
        a = f * f + ((varphi - t) / 2) ** 2
        far = jnp.where(a > 0, jnp.sqrt(jnp.where(a > 0, a, 1)), 0)
        # Beside the segment (t > 0), phi_i = |f| g with g smooth, since varphi - t =
        # f^4 / (varphi + t); -f g is then phi_i signed, smooth across the edge.
        beside = t > 0
        g = jnp.sqrt(1 + (f**3 / (2 * jnp.where(beside, varphi + t, 1))) ** 2)
        phi_i = jnp.where(beside, jnp.abs(f) * g, far)
        # 1 / sum_i(1 / phi_i) = phi_j / (1 + phi_j * sum_{i != j} 1 / phi_i), j the
        # nearest edge; signing phi_j alone keeps the gradient on the edge (-grad f).
        j = jnp.argmin(phi_i, axis=1)[:, None]
        phi_j = jnp.take_along_axis(phi_i, j, axis=1)[:, 0]
        others = jnp.arange(phi_i.shape[1]) != j
        vertex = jnp.any(others & (phi_i == 0), axis=1)
        inverse = jnp.where(others & (phi_i > 0), 1 / jnp.where(phi_i > 0, phi_i, 1), 0)
        inside = self._inside(x)
        f_j, g_j = (jnp.take_along_axis(v, j, axis=1)[:, 0] for v in (f, g))
        agree = jnp.take_along_axis(beside, j, axis=1)[:, 0] & ((f_j <= 0) == inside)
        signed = jnp.where(agree, -f_j * g_j, jnp.where(inside, phi_j, -phi_j))
        phi = jnp.where(vertex, 0, signed / (1 + phi_j * jnp.sum(inverse, axis=1)))
        return positive_zero(phi)  # -0.0 on the edges becomes 0.0

    @compiled
    def part_index(self, x: jax.Array) -> jax.Array:
        """Index of the nearest edge.

        Example:
            >>> tri = Polygon([(0, 0), (2, 0), (0, 2)])
            >>> tri.part_index([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]).tolist()
            [0, 1, 2]
        """
        return jnp.argmin(self._edge_distances(points(x, 2)), axis=1).astype(jnp.int32)

    @compiled
    def normal(self, x: jax.Array) -> jax.Array:
        """The outward unit normal of the nearest edge.

        Example:
            >>> Polygon([(0, 0), (2, 0), (0, 2)]).normal([[1.0, 0.0], [0.0, 1.0]]).tolist()
            [[0.0, -1.0], [-1.0, 0.0]]
        """
        x = points(x, 2)
        v = np.asarray(self.vertices)
        edge = np.roll(v, -1, axis=0) - v
        outward = np.stack([edge[:, 1], -edge[:, 0]], 1) / np.asarray(self.lengths)[:, None]
        # + 0.0 turns the -0.0 of axis-parallel edges into 0.0.
        return jnp.asarray((outward + 0.0).astype(x.dtype))[self.part_index(x)]

    def boundary(
        self, n: int, resample: bool = False, parts: str | Sequence[str] | None = None
    ) -> PointSet:
        """``n`` points uniform in length on the selected edges.

        Example:
            >>> import jax
            >>> from jno.domain import Polygon
            >>> tri = Polygon([(0, 0), (1, 0), (0, 1)])
            >>> x = tri.boundary(5, parts="polygon.edge0").sample(jax.random.key(0))
            >>> x[:, 1].tolist()
            [0.0, 0.0, 0.0, 0.0, 0.0]
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        chosen = select_parts(repr(self), self.parts, (self.name,), parts)
        edges = np.asarray([self.parts.index(p) for p in chosen])
        lengths = np.asarray(self.lengths)[edges]
        probabilities = lengths / lengths.sum()
        v = np.asarray(self.vertices)
        start, vector = v[edges], (np.roll(v, -1, axis=0) - v)[edges]

        def draw(key: jax.Array) -> jax.Array:
            dtype = default_float()
            u = jax.random.uniform(key, (n, 2), dtype)
            k = pick(u[:, 0], probabilities)
            a, e = jnp.asarray(start.astype(dtype))[k], jnp.asarray(vector.astype(dtype))[k]
            return a + u[:, 1:] * e

        return PointSet(n, 2, resample, "boundary", jax.jit(draw))
