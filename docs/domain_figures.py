"""Draws the pictures of docs/domains.md: each primitive, a combination with its
sampled interior and boundary points, and outward normals on its boundary parts.

Usage:
    .venv/bin/python docs/domain_figures.py   # writes docs/images/domain_*.png
"""

from __future__ import annotations

from pathlib import Path

import jax

from jno.domain import Ball, Box, Cylinder, Disk, Polygon, Rectangle

OUT = Path(__file__).resolve().parent / "images"
KEY = jax.random.key(0)

L_SHAPE = Polygon(
    [(-1.0, -1.0), (0.0, -1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0)], name="lshape"
)
PLATE = Rectangle([-1.0, -1.0], [1.0, 1.0], name="outer") - (
    Disk([-0.5, -0.5], 0.2, name="hole0")
    | Disk([0.5, -0.5], 0.2, name="hole1")
    | Disk([-0.5, 0.5], 0.2, name="hole2")
    | Disk([0.5, 0.5], 0.2, name="hole3")
)


def main() -> None:
    primitives = {
        "disk": Disk([0.0, 0.0], 1.0),
        "rectangle": Rectangle([0.0, 0.0], [2.0, 1.0]),
        "polygon": L_SHAPE,
        "ball": Ball([0.0, 0.0, 0.0], 1.0),
        "cylinder": Cylinder([0.0, 0.0, 0.0], 0.5, 2.0),
        "box_minus_ball": Box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]) - Ball([0, 0, 0], 0.5),
    }
    for name, shape in primitives.items():
        shape.plot(OUT / f"domain_{name}.png", title=repr(shape))
    PLATE.plot(OUT / "domain_plate_interior.png", PLATE.interior(1500), title="interior(1500)")
    boundary = PLATE.boundary(120, parts=("outer", "hole0", "hole3"))
    PLATE.plot(
        OUT / "domain_plate_normals.png",
        boundary,
        normals=True,
        title="boundary(120, parts=('outer', 'hole0', 'hole3')) and normal(x)",
    )
    corner = L_SHAPE.boundary(80)
    L_SHAPE.plot(OUT / "domain_lshape_normals.png", corner, normals=True, title="L-shape normals")


if __name__ == "__main__":
    main()
