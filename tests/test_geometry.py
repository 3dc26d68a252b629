"""jno.domain geometry: measures, distances, normals, smooth distances, grids and plots of
the primitives and their combinations (sampling: test_geometry_sampling; argument errors:
test_geometry_errors)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jno.domain import Ball, Box, Cylinder, Disk, Interval, PointSet, Polygon, Rectangle

KEY = jax.random.key(0)
L_VERTICES = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
HOLES = [(0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)]


def plate():
    """The unit square minus four disks of radius 0.1: area 1 - 4 pi 0.01."""
    shape = Rectangle([0.0, 0.0], [1.0, 1.0])
    for k, c in enumerate(HOLES):
        shape = shape - Disk(c, 0.1, name=f"hole{k}")
    return shape


def _shapes():
    """One of each primitive and combinations of them, in 2-D and 3-D."""
    return {
        "disk": Disk([0.5, -0.25], 0.75),
        "rectangle": Rectangle([-1.0, 0.0], [1.0, 0.5]),
        "lshape": Polygon(L_VERTICES),
        "ball": Ball([0.0, 1.0, 0.0], 0.5),
        "cylinder": Cylinder([0.0, 0.0, 0.0], 0.5, 2.0, axis=1),
        "box3": Box([0.0, 0.0, 0.0], [1.0, 2.0, 0.5]),
        "plate": plate(),
        "lens": Disk([0.0, 0.0], 1.0, name="a") & Disk([1.0, 0.0], 1.0, name="b"),
        "union": Disk([0.0, 0.0], 1.0, name="a") | Rectangle([0.0, -0.5], [2.0, 0.5]),
        "cube_minus_ball": Box([0, 0, 0], [1, 1, 1]) - Ball([0.5, 0.5, 0.5], 0.3),
        "corner_cut": Rectangle([0, 0], [1, 1]) - Disk([1.0, 1.0], 0.5),
    }


# Shapes are immutable: the tests share one instance of each (and its cached measures).
SHAPES = _shapes()
PLATE = SHAPES["plate"]


@functools.cache
def boundary_sample(name):
    """2000 points of ``SHAPES[name].boundary`` (key 0), drawn once for the tests that share
    them: each new sampler compiles its own program."""
    return SHAPES[name].boundary(2000).sample(KEY)


@functools.cache
def interior_sample(name):
    """2000 points of ``SHAPES[name].interior`` (key 0), drawn once, like boundary_sample."""
    return SHAPES[name].interior(2000).sample(KEY)


def bbox_points(shape, n=200_000, seed=0, pad=0.0):
    lo, hi = (np.asarray(b) for b in shape.bounds)
    lo, hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
    u = np.random.default_rng(seed).random((n, shape.dim))
    return lo + (hi - lo) * u, float(np.prod(hi - lo))


# ------------------------------------------------------------------ measures


def test_primitive_measures_exact():
    assert Disk([1.0, 2.0], 0.5).measure == pytest.approx(math.pi * 0.25, rel=1e-12)
    assert Ball([0, 0, 0], 2.0).measure == pytest.approx(4 / 3 * math.pi * 8, rel=1e-12)
    assert Cylinder([0, 0, 0], 0.5, 3.0).measure == pytest.approx(math.pi * 0.75, rel=1e-12)
    assert Polygon(L_VERTICES).measure == 3.0
    assert Polygon(L_VERTICES[::-1]).measure == 3.0  # clockwise input
    assert Rectangle([0, 1], [2, 4]).measure == 6.0
    assert Box([0, 0, 0], [1, 2, 3]).measure == 6.0
    assert Interval(-1.0, 2.0).measure == 3.0
    assert Disk([0, 0], 2.0).part_measures == {"disk": pytest.approx(4 * math.pi)}
    cyl = Cylinder([0, 0, 0], 1.0, 2.0).part_measures
    assert cyl == pytest.approx(
        {"cylinder.side": 4 * math.pi, "cylinder.bottom": math.pi, "cylinder.top": math.pi}
    )
    lengths = Polygon(L_VERTICES).part_measures
    assert list(lengths.values()) == [2.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    assert Rectangle([0, 0], [2, 1]).part_measures == {
        "rectangle.x0": 1.0,
        "rectangle.x1": 1.0,
        "rectangle.y0": 2.0,
        "rectangle.y1": 2.0,
    }


@pytest.mark.parametrize(
    ("name", "exact"),
    [
        ("plate", 1 - 4 * math.pi * 0.01),
        ("lshape", 3.0),
        ("cube_minus_ball", 1 - 4 / 3 * math.pi * 0.027),
        ("cylinder", math.pi * 0.25 * 2.0),
        ("ball", 4 / 3 * math.pi * 0.125),
        ("lens", 2 * math.pi / 3 - math.sqrt(3) / 2),
        ("corner_cut", 1 - math.pi * 0.25 / 4),
    ],
)
def test_measure_by_sampling(name, exact):
    shape = SHAPES[name]
    x, volume = bbox_points(shape, seed=1)
    fraction = float(np.mean(np.asarray(shape.contains(jnp.asarray(x, jnp.float32)))))
    p = exact / volume
    assert abs(fraction - p) < 5 * math.sqrt(p * (1 - p) / len(x))
    assert shape.measure == pytest.approx(exact, rel=0.01)


def test_part_measures_of_combinations():
    measures = PLATE.part_measures
    for k in range(4):
        assert measures[f"rectangle.x{k % 2}"] == 1.0  # whole edges, exact
        assert measures[f"hole{k}"] == pytest.approx(0.2 * math.pi, rel=1e-12)
    cut = SHAPES["corner_cut"].part_measures
    assert cut["rectangle.x0"] == 1.0 and cut["rectangle.y0"] == 1.0
    assert cut["rectangle.x1"] == pytest.approx(0.5, rel=0.02)
    assert cut["rectangle.y1"] == pytest.approx(0.5, rel=0.02)
    assert cut["disk"] == pytest.approx(math.pi * 0.5 / 2, rel=0.02)  # a quarter circle


# ------------------------------------------------------------------ distances


def test_distance_exact_values():
    d = lambda shape, x: np.asarray(shape.distance(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(d(Disk([1.0, 1.0], 0.5), [[1, 1], [2, 1]]), [0.5, -0.5])
    r = Rectangle([0, 0], [1, 1])
    np.testing.assert_allclose(
        d(r, [[0.1, 0.5], [0.5, 0.5], [2.0, 0.5], [2.0, 2.0]]),
        [0.1, 0.5, -1.0, -math.sqrt(2)],
        rtol=1e-6,
    )
    lshape = Polygon(L_VERTICES)
    np.testing.assert_allclose(
        d(lshape, [[1.5, 0.5], [0.5, 1.5], [1.5, 1.5], [3.0, 0.5], [0.25, 0.5], [3.0, 3.0]]),
        [0.5, 0.5, -0.5, -1.0, 0.25, -math.sqrt(5)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(d(Ball([0, 0, 0], 2.0), [[0, 0, 0], [0, 3, 0]]), [2.0, -1.0])
    cyl = Cylinder([0, 0, 0], 0.5, 2.0)  # axis z, caps at z = -1, 1
    np.testing.assert_allclose(
        d(cyl, [[0, 0, 0], [0, 0, 0.8], [0, 0, 2], [1.5, 0, 0], [1.5, 0, 2]]),
        [0.5, 0.2, -1.0, -1.0, -math.sqrt(2)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(d(Box([0, 0, 0], [1, 2, 3]), [[0.5, 1, 2.9]]), [0.1], rtol=1e-5)


@pytest.mark.parametrize("name", list(SHAPES))
def test_distance_sign_and_zero_on_boundary(name):
    shape = SHAPES[name]
    xb = boundary_sample(name)
    assert float(jnp.abs(shape.distance(xb)).max()) < 1e-5
    assert float(jnp.abs(shape.smooth_distance(xb)).max()) < 1e-5
    xi = interior_sample(name)
    x, _ = bbox_points(shape, n=4000, seed=2, pad=0.2)
    x = jnp.asarray(x, jnp.float32)
    cls = np.asarray(shape.classify(x))
    for dist in (shape.distance, shape.smooth_distance):
        value = np.asarray(dist(x))
        assert (value[cls == 1] > 0).all() and (value[cls == -1] < 0).all()
        assert (np.asarray(dist(xi)) >= -1e-6).all()


@pytest.mark.parametrize("name", list(SHAPES))
def test_smooth_distance_has_finite_hessian_inside(name):
    shape = SHAPES[name]
    x = np.asarray(interior_sample(name))
    x = x[np.asarray(shape.distance(x)) > 1e-3][:16]
    phi = lambda p: shape.smooth_distance(p[None])[0]
    both = jax.jit(jax.vmap(lambda p: (jax.hessian(phi)(p), jax.grad(phi)(p))))
    hess, grad = both(x)
    assert len(x) == 16 and hess.shape == (16, shape.dim, shape.dim)
    assert np.isfinite(hess).all() and np.isfinite(grad).all()


@pytest.mark.parametrize(
    ("shape", "parts"),
    [
        (Disk([0.2, 0.1], 0.7), None),
        (Rectangle([0, 0], [2, 1]), None),
        (Polygon(L_VERTICES), None),
        (Ball([0, 0, 0], 1.5), None),
        (Cylinder([0, 0, 0], 0.5, 1.0), None),
        (PLATE, "hole1"),
    ],
)
def test_smooth_distance_unit_gradient_on_boundary(shape, parts):
    x = np.asarray(shape.boundary(400, parts=parts).sample(KEY))
    # Away from corners and vertices, where pieces of the boundary meet.
    far = np.ones(len(x), bool)
    if isinstance(shape, (Rectangle, Cylinder)):
        far = _corner_gap(shape, x) > 0.05
    if isinstance(shape, Polygon):
        vertices = np.asarray(shape.vertices)
        gap = np.linalg.norm(x[:, None] - vertices[None], axis=2).min(1)
        far = gap > 0.05
    assert far.sum() > 100
    grad = jax.jit(jax.vmap(jax.grad(lambda p: shape.smooth_distance(p[None])[0])))(x[far])
    np.testing.assert_allclose(np.linalg.norm(grad, axis=1), 1.0, atol=1e-3)
    # ... and the gradient points inward: along minus the outward normal.
    np.testing.assert_allclose(grad, -np.asarray(shape.normal(x[far])), atol=1e-3)


def _corner_gap(shape, x):
    """Distance of boundary points to the nearest edge (2-D) or rim (3-D) of the shape."""
    x = np.asarray(x)
    if isinstance(shape, Rectangle):
        lo, hi = np.asarray(shape.lo), np.asarray(shape.hi)
        gaps = np.minimum(np.abs(x - lo), np.abs(x - hi))
        return np.sort(gaps, axis=1)[:, 1]  # the second-nearest face
    rho = np.linalg.norm(x[:, :2], axis=1)
    return np.maximum(np.abs(rho - shape.radius), np.abs(np.abs(x[:, 2]) - shape.height / 2))


# ------------------------------------------------------------------ normals


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_normals_disk_ball_and_plate_holes():
    disk = SHAPES["disk"]  # Disk([0.5, -0.25], 0.75)
    x = np.asarray(boundary_sample("disk"))
    np.testing.assert_allclose(disk.normal(x), _unit(x - [0.5, -0.25]), atol=1e-5)
    ball = SHAPES["ball"]  # Ball([0.0, 1.0, 0.0], 0.5)
    x = np.asarray(boundary_sample("ball"))
    np.testing.assert_allclose(ball.normal(x), (x - [0.0, 1.0, 0.0]) / 0.5, atol=1e-5)
    x = np.asarray(boundary_sample("plate"))
    n = np.asarray(PLATE.normal(x))
    for c in HOLES:
        on_hole = np.abs(np.linalg.norm(x - c, axis=1) - 0.1) < 1e-5
        assert on_hole.sum() > 150  # of about 190
        # Outward of the plate is into the hole, towards its centre.
        np.testing.assert_allclose(n[on_hole], -_unit(x[on_hole] - c), atol=1e-5)


def test_normals_rectangle_and_polygon_edges():
    rect = SHAPES["rectangle"]  # Rectangle([-1.0, 0.0], [1.0, 0.5])
    x = np.asarray(boundary_sample("rectangle"))
    n = np.asarray(rect.normal(x))
    # The sampler puts a point on a face with its normal coordinate exactly lo or hi.
    for axis, value, normal in (
        (0, -1.0, [-1, 0]),
        (0, 1.0, [1, 0]),
        (1, 0.0, [0, -1]),
        (1, 0.5, [0, 1]),
    ):
        on_face = x[:, axis] == value
        assert on_face.sum() > 100
        np.testing.assert_array_equal(n[on_face], np.tile(normal, (on_face.sum(), 1)))
    lshape = SHAPES["lshape"]  # Polygon(L_VERTICES)
    edge_normals = [[0, -1], [1, 0], [0, 1], [1, 0], [0, 1], [-1, 0]]
    x = boundary_sample("lshape")
    part = np.asarray(lshape.part_index(x))
    np.testing.assert_allclose(lshape.normal(x), np.asarray(edge_normals)[part], atol=1e-6)
    # Clockwise input: stored counter-clockwise, normals still outward.
    cw = Polygon(L_VERTICES[::-1])
    np.testing.assert_allclose(cw.normal([[1.5, 0.0], [0.0, 1.0]]), [[0, -1], [-1, 0]])


def test_normals_cylinder_caps_and_side():
    cyl = Cylinder([1.0, 0.0, 0.0], 0.5, 2.0, axis=0)
    for part, normal in (("bottom", [-1, 0, 0]), ("top", [1, 0, 0])):
        x = cyl.boundary(100, parts=f"cylinder.{part}").sample(KEY)
        np.testing.assert_array_equal(cyl.normal(x), np.tile(normal, (100, 1)))
    x = np.asarray(cyl.boundary(300, parts="cylinder.side").sample(KEY))
    radial = np.concatenate([np.zeros((300, 1)), x[:, 1:] / 0.5], axis=1)
    np.testing.assert_allclose(cyl.normal(x), radial, atol=1e-5)


@pytest.mark.parametrize("name", list(SHAPES))
def test_normals_unit_length_and_outward(name):
    shape = SHAPES[name]
    x = boundary_sample(name)
    n = shape.normal(x)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    # A small step along the normal leaves the shape (away from corners, almost all).
    outside = np.asarray(shape.distance(x + 1e-3 * n)) < 0
    assert outside.mean() > 0.97


def test_normals_of_overlapping_difference_flip_only_the_hole():
    shape = SHAPES["corner_cut"]
    x = np.asarray(boundary_sample("corner_cut"))
    n = np.asarray(shape.normal(x))
    arc = np.abs(np.linalg.norm(x - 1.0, axis=1) - 0.5) < 1e-5
    np.testing.assert_allclose(n[arc], -_unit(x[arc] - 1.0), atol=1e-5)
    left = (np.abs(x[:, 0]) < 1e-6) & (x[:, 1] > 0.01) & (x[:, 1] < 0.99)
    np.testing.assert_array_equal(n[left], np.tile([-1, 0], (left.sum(), 1)))


# ------------------------------------------------------------------ grids


def test_masked_grid_and_grid():
    lshape = Polygon(L_VERTICES)
    grid, mask = lshape.masked_grid(101)
    assert grid.shape == (101 * 101, 2) and mask.dtype == bool and grid.dtype == jnp.float32
    np.testing.assert_array_equal(grid, Box([0, 0], [2, 2]).grid(101))
    assert abs(mask.mean() - 3 / 4) < 0.02  # area fraction of the bounding box
    inside = lshape.grid(101)
    assert inside.shape == (int(mask.sum()), 2)
    assert bool(lshape.contains(inside).all())
    assert float(inside[:, 0].max()) == 2.0
    assert not bool((inside > 1.0 + 1e-6).all(axis=1).any())  # nothing of the cut corner
    p = PLATE
    _, m = p.masked_grid([201, 101])
    assert abs(m.mean() - p.measure) < 0.02
    box = Box([0.0, -1.0], [2.0, 1.0])
    g, m = box.masked_grid([3, 5])
    assert m.all() and np.array_equal(g, box.grid([3, 5]))


# ------------------------------------------------------------------ plots


def test_plot_writes_png(tmp_path, capsys):
    shape = PLATE
    points = PointSet.from_array(boundary_sample("plate")[:40])
    path = shape.plot(tmp_path / "sub" / "plate.png", points, normals=True)
    data = path.read_bytes()
    assert path == tmp_path / "sub" / "plate.png" and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000
    cube = SHAPES["cube_minus_ball"]
    x = np.asarray(boundary_sample("cube_minus_ball"))
    x = x[np.abs(np.linalg.norm(x - 0.5, axis=1) - 0.3) < 1e-5][:30]  # on the cavity
    assert len(x) == 30
    path3 = cube.plot(tmp_path / "cube.png", x, normals=True, title="cube minus ball")
    assert path3.read_bytes()[:4] == b"\x89PNG" and path3.stat().st_size > 5000
    assert capsys.readouterr().out == ""
