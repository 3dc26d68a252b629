"""Figures of shapes, points and normals (matplotlib, Agg backend, no pyplot state).

Example:
    >>> import os, tempfile
    >>> from jno.domain import Rectangle
    >>> from jno.domain._plot import plot_shape
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     plot_shape(Rectangle([0, 0], [1, 1]), os.path.join(tmp, "r.png")).stat().st_size > 0
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jno.domain.point_set import PointSet

# A jno.domain.shape.Shape; not imported, as shape.py imports this module.
Shape = Any

GRID_2D = 400  # fill resolution per axis
BOUNDARY_SAMPLES = {2: 4000, 3: 3000}


def _as_points(shape: Shape, points: Any) -> np.ndarray | None:
    if points is None:
        return None
    if isinstance(points, PointSet):
        points = points.sample(jax.random.key(0))
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != shape.dim:
        raise ValueError(f"points must have shape (n, {shape.dim}), got shape {x.shape}")
    return x


def _as_normals(shape: Shape, x: np.ndarray | None, normals: Any) -> np.ndarray | None:
    if normals is None or normals is False:
        return None
    if x is None:
        raise ValueError("normals need points to be drawn at, got points=None")
    if normals is True:
        return np.asarray(shape.normal(x))
    v = np.asarray(normals, dtype=np.float64)
    if v.shape != x.shape:
        raise ValueError(f"normals must have the shape of points {x.shape}, got {v.shape}")
    return v


def plot_shape(
    shape: Shape,
    path: str | Path,
    points: Any = None,
    normals: Any = None,
    title: str | None = None,
) -> Path:
    """Write a figure of ``shape`` (see :meth:`Shape.plot`) and return its path.

    Example:
        >>> import os, tempfile
        >>> from jno.domain import Ball
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     plot_shape(Ball([0, 0, 0], 1), os.path.join(tmp, "b.png")).exists()
        True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if shape.dim not in (2, 3):
        raise ValueError(f"plot draws 2-D and 3-D shapes, got {shape.name!r} of dim {shape.dim}")
    x = _as_points(shape, points)
    v = _as_normals(shape, x, normals)
    edge = np.asarray(shape.boundary(BOUNDARY_SAMPLES[shape.dim]).sample(jax.random.key(0)))
    (lo, hi), span = shape.bounds, np.subtract(shape.bounds[1], shape.bounds[0])
    aspect = 1.0 if shape.dim == 3 else min(3.0, max(span[1] / span[0], 1 / 3))
    fig = Figure(figsize=(6, 6 * aspect))
    FigureCanvasAgg(fig)
    if shape.dim == 2:
        ax = fig.add_subplot()
        grid, mask = shape.masked_grid(GRID_2D)
        ax.imshow(
            mask.reshape(GRID_2D, GRID_2D).T,
            origin="lower",
            extent=(lo[0], hi[0], lo[1], hi[1]),
            cmap="Blues",
            vmin=0,
            vmax=2,
            interpolation="nearest",
        )
        ax.scatter(edge[:, 0], edge[:, 1], s=0.5, c="k", label="boundary")
        if x is not None:
            ax.scatter(x[:, 0], x[:, 1], s=6, c="tab:red", label="points")
        if v is not None:
            ax.quiver(x[:, 0], x[:, 1], v[:, 0], v[:, 1], color="tab:orange", width=0.003)
        ax.set_aspect("equal")
    else:
        ax = fig.add_subplot(projection="3d")
        # A cut-away: the boundary behind the middle plane of y, coloured by part, so
        # that inner parts (a cavity) show through the outer ones.
        part = np.asarray(shape.part_index(edge))
        back = edge[:, 1] >= (lo[1] + hi[1]) / 2
        ax.scatter(*edge[back].T, s=3, c=part[back], cmap="tab10", vmin=0, vmax=9, alpha=0.6)
        if x is not None:
            ax.scatter(*x.T, s=6, c="tab:red", label="points")
        if v is not None:
            ax.quiver(*x.T, *v.T, length=0.1 * float(span.max()), color="tab:orange")
        ax.set_box_aspect(tuple(span))
    ax.set_title(shape.name if title is None else title)
    path = Path(path)
    if jax.process_index() == 0:  # one file for a run of several processes
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
