"""jno.domain argument errors: each names the argument and its value; immutable shapes."""

import pytest

from jno.domain import (
    Ball,
    Box,
    Cylinder,
    Difference,
    Disk,
    Intersection,
    Polygon,
    Rectangle,
    Union,
)

HOLES = [(0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)]


def plate():
    """The unit square minus four disks of radius 0.1."""
    shape = Rectangle([0.0, 0.0], [1.0, 1.0])
    for k, c in enumerate(HOLES):
        shape = shape - Disk(c, 0.1, name=f"hole{k}")
    return shape


PLATE = plate()


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"radius must be finite and > 0, got -1.0"):
        Disk([0, 0], -1.0)
    with pytest.raises(ValueError, match="center must have 2 coordinates"):
        Disk([0, 0, 0], 1.0)
    with pytest.raises(ValueError, match="height must be finite and > 0, got 0"):
        Cylinder([0, 0, 0], 1.0, 0)
    with pytest.raises(ValueError, match="axis must be in \\[0, 2\\], got 3"):
        Cylinder([0, 0, 0], 1.0, 1.0, axis=3)
    with pytest.raises(ValueError, match="vertices must hold at least 3 points, got 2"):
        Polygon([(0, 0), (1, 0)])
    with pytest.raises(ValueError, match="edges 0 and 2 intersect"):
        Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])  # a bow tie
    with pytest.raises(ValueError, match=r"vertices\[0\] == vertices\[3\]"):
        Polygon([(0, 0), (1, 0), (0, 1), (0, 0)])
    with pytest.raises(ValueError, match="edges 0 and 1 fold back on each other"):
        Polygon([(0, 0), (2, 0), (1, 0)])
    with pytest.raises(ValueError, match="simple polygon"):
        Polygon([(0, 0), (2, 0), (1, 0), (1, 1)])  # a spike
    with pytest.raises(ValueError, match="lo must have 2 coordinates"):
        Rectangle([0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="name must be a non-empty string without '.'"):
        Disk([0, 0], 1.0, name="a.b")
    with pytest.raises(TypeError, match="name must be a str"):
        Disk([0, 0], 1.0, name=3)


def test_combination_errors():
    disk = Disk([0, 0], 1.0)
    with pytest.raises(ValueError, match="dimensions must match.*'disk' of dim 2.*'ball' of dim 3"):
        disk | Ball([0, 0, 0], 1.0)
    with pytest.raises(ValueError, match="'disk' twice.*name="):
        disk - Disk([0.5, 0], 0.2)
    with pytest.raises(ValueError, match="'disk' twice"):
        disk | disk
    with pytest.raises(TypeError, match="unsupported operand"):
        disk | 1.0
    with pytest.raises(TypeError, match="right must be a Shape"):
        Union(disk, "disk")
    with pytest.raises(ValueError, match="right must be a purely spatial shape"):
        Difference(Rectangle([0, 0], [1, 1]), Box([0, 0], [1, 1], time_axis=1, name="b"))
    with pytest.raises(ValueError, match="intersection of 'disk' and 'far' is empty"):
        Intersection(disk, Disk([5, 5], 1.0, name="far"))
    with pytest.raises(ValueError, match="unknown 'hole9'.*'hole0'"):
        PLATE.boundary(10, parts="hole9")
    with pytest.raises(ValueError, match="unknown 'rectangle.z0'"):
        Rectangle([0, 0], [1, 1]).boundary(10, parts=["rectangle.x0", "rectangle.z0"])
    with pytest.raises(TypeError, match="parts must hold strings"):
        disk.boundary(10, parts=[1])


def test_too_thin_shapes_are_refused():
    sliver = Rectangle([0, 0], [1, 1]) - Rectangle([1e-5, -1], [2, 2], name="cut")
    with pytest.raises(ValueError, match=r"shape 'rectangle - cut' is too thin for the sampler"):
        sliver.interior(10)
    needle = Polygon([(0, 0), (1, 1), (1, 1 + 1e-5)])
    with pytest.raises(ValueError, match=r"'polygon' is too thin.*fraction 5e-06"):
        needle.interior(10)
    # A hole inside another shape's interior has no length on the boundary.
    inner = Rectangle([0, 0], [1, 1]) | Disk([0.5, 0.5], 0.2)
    with pytest.raises(ValueError, match=r"too thin.*boundary \['disk'\]"):
        inner.boundary(10, parts="disk")


def test_shapes_are_immutable_and_hash_by_identity():
    disk = Disk([0, 0], 1.0)
    with pytest.raises(AttributeError, match="immutable"):
        disk.radius = 2.0
    with pytest.raises(AttributeError, match="immutable"):
        Box([0], [1]).lo = (2.0,)
    assert disk == disk and disk != Disk([0, 0], 1.0) and hash(disk) == hash(disk)
    shape = PLATE
    assert shape.name == "rectangle - hole0 - hole1 - hole2 - hole3"
    assert shape.orientations == (1, -1, -1, -1, -1)
    nested = Rectangle([0, 0], [1, 1]) - (Disk([0, 0], 0.5, name="a") - Disk([0, 0], 0.2))
    assert nested.orientations == (1, -1, 1) and nested.name == "rectangle - (a - disk)"
    assert repr(Disk([0, 0], 1.0, name="d")) == "Disk(center=[0.0, 0.0], radius=1.0, name='d')"
