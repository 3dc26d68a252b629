"""jno.domain samplers on primitives and combinations: exact counts, uniformity (moments and
seeded chi-square tests), boundary pieces, part selections, jit / vmap, float64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jno.domain import Ball, Box, Cylinder, Disk, Polygon, Rectangle

KEY = jax.random.key(0)
L_VERTICES = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
HOLES = [(0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)]
P_MIN = 1e-3  # seeded draws: a chi-square p-value below this flags a wrong distribution


def plate():
    shape = Rectangle([0.0, 0.0], [1.0, 1.0])
    for k, c in enumerate(HOLES):
        shape = shape - Disk(c, 0.1, name=f"hole{k}")
    return shape


SHAPES = {
    "disk": lambda: Disk([0.5, -0.25], 0.75),
    "lshape": lambda: Polygon(L_VERTICES),
    "plate": plate,
    "ball": lambda: Ball([0.0, 1.0, 0.0], 0.5),
    "cylinder": lambda: Cylinder([0.0, 0.0, 0.0], 0.5, 2.0, axis=1),
    "cube_minus_ball": lambda: Box([0, 0, 0], [1, 1, 1]) - Ball([0.5, 0.5, 0.5], 0.3),
    "union": lambda: Disk([0, 0], 1.0, name="a") | Disk([1.0, 0], 1.0, name="b"),
}


def draw(ps, key=KEY):
    return np.asarray(ps.sample(key))


@pytest.mark.parametrize("name", list(SHAPES))
def test_interior_exact_count_inside(name):
    shape = SHAPES[name]()
    draws = []
    for n in (1, 7, 3000):
        ps = shape.interior(n)
        assert (ps.n, ps.dim, ps.kind, ps.resample) == (n, shape.dim, "interior", False)
        x = ps.sample(KEY)
        assert x.shape == (n, shape.dim) and x.dtype == jnp.float32
        draws.append(x)
    # The geometry of all three draws at once: one compiled program per check.
    x = np.concatenate(draws)
    assert bool(shape.contains(x).all())
    assert bool((shape.distance(x) >= -1e-6).all())


@pytest.mark.parametrize("name", list(SHAPES))
def test_boundary_exact_count_on_boundary(name):
    shape = SHAPES[name]()
    draws = []
    for n in (1, 5, 3000):
        ps = shape.boundary(n, resample=True)
        assert (ps.n, ps.kind, ps.resample) == (n, "boundary", True)
        x = ps.sample(KEY)
        assert x.shape == (n, shape.dim) and x.dtype == jnp.float32
        draws.append(x)
    x = np.concatenate(draws)
    assert float(jnp.abs(shape.distance(x)).max()) < 1e-5
    assert bool((shape.classify(x) == 0).all())


@pytest.mark.parametrize("method", ["interior", "boundary"])
def test_jit_vmap_and_keys(method):
    ps = getattr(plate(), method)(257, resample=True)
    keys = jax.random.split(jax.random.key(5), 3)
    x = jax.jit(jax.vmap(ps.sample))(keys)
    assert x.shape == (3, 257, 2)
    assert not np.array_equal(x[0], x[1])
    np.testing.assert_allclose(x[2], ps.sample(keys[2]), atol=1e-7)
    np.testing.assert_array_equal(draw(ps, jax.random.key(7)), draw(ps, jax.random.key(7)))
    assert not np.array_equal(draw(ps, jax.random.key(7)), draw(ps, jax.random.key(8)))
    legacy = jax.random.PRNGKey(3)
    np.testing.assert_allclose(jax.jit(ps.sample)(legacy), draw(ps, legacy), atol=1e-7)


def test_interior_needing_several_batches_is_exact():
    # Many small draws: some first batches fall short and the loop completes them.
    shape = Disk([0.0, 0.0], 1.0)
    ps = shape.interior(3, resample=True)
    x = jax.jit(jax.vmap(ps.sample))(jax.random.split(KEY, 2000))
    assert x.shape == (2000, 3, 2) and bool(shape.contains(x.reshape(-1, 2)).all())
    assert len(np.unique(np.asarray(x).reshape(-1, 2), axis=0)) == 6000


def test_interior_uniform_disk_and_ball_moments():
    n = 40_000
    x = draw(Disk([0.5, -0.25], 0.75).interior(n)) - [0.5, -0.25]
    r2 = (x**2).sum(1)
    # |x - c|^2 / r^2 is uniform on [0, 1] for a uniform disk: mean 1/2, sd 1/sqrt(12).
    assert abs(r2.mean() / 0.5625 - 0.5) < 5 / math.sqrt(12 * n)
    np.testing.assert_allclose(x.mean(0), 0.0, atol=5 * 0.75 / 2 / math.sqrt(n))
    angle = np.arctan2(x[:, 1], x[:, 0])
    counts = np.histogram(angle, 16, (-np.pi, np.pi))[0]
    assert stats.chisquare(counts).pvalue > P_MIN
    y = draw(Ball([0.0, 1.0, 0.0], 0.5).interior(n)) - [0.0, 1.0, 0.0]
    # (|x - c| / r)^3 is uniform on [0, 1] for a uniform ball.
    u = (np.linalg.norm(y, axis=1) / 0.5) ** 3
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_interior_uniform_lshape_moments():
    n = 60_000
    x = draw(Polygon(L_VERTICES).interior(n))
    # [0, 2] x [0, 1] (area 2) and [0, 1] x [1, 2] (area 1).
    mean, second = [2.5 / 3, 2.5 / 3], [1.0, 1.0]
    np.testing.assert_allclose(x.mean(0), mean, atol=0.01)
    np.testing.assert_allclose((x**2).mean(0), second, atol=0.015)
    assert abs((x[:, 0] * x[:, 1]).mean() - 1.75 / 3) < 0.01
    cells = np.histogram2d(x[:, 0], x[:, 1], bins=4, range=[[0, 2], [0, 2]])[0].ravel()
    full = cells[cells > 0]  # the 12 cells of the L, each of area 1/4
    assert len(full) == 12 and stats.chisquare(full).pvalue > P_MIN


def test_interior_uniform_plate_against_exact_fractions():
    n = 50_000
    x = draw(plate().interior(n))
    area = 1 - 4 * math.pi * 0.01
    # Bands 0 <= x < 0.2 (no hole) and 0.2 <= x <= 0.4 (two half... whole holes).
    band = np.histogram(x[:, 0], 5, (0, 1))[0]
    widths = np.array([0.2, 0.2 - 2 * math.pi * 0.01, 0.2, 0.2 - 2 * math.pi * 0.01, 0.2])
    assert stats.chisquare(band, n * widths / area).pvalue > P_MIN


def test_boundary_uniform_in_length_lshape_edges():
    shape = Polygon(L_VERTICES)
    n = 8000
    x = shape.boundary(n).sample(KEY)
    counts = np.bincount(np.asarray(shape.part_index(x)), minlength=6)
    lengths = np.array(shape.lengths)
    assert stats.chisquare(counts, n * lengths / lengths.sum()).pvalue > P_MIN
    # Uniform along an edge: the position on edge 0 (from (0, 0) to (2, 0)).
    along = np.asarray(x)[np.asarray(shape.part_index(x)) == 0, 0] / 2
    assert stats.kstest(along, "uniform").pvalue > P_MIN


def test_boundary_uniform_on_circle_and_sphere():
    n = 16_000
    x = draw(Disk([0.5, -0.25], 0.75).boundary(n)) - [0.5, -0.25]
    counts = np.histogram(np.arctan2(x[:, 1], x[:, 0]), 16, (-np.pi, np.pi))[0]
    assert stats.chisquare(counts).pvalue > P_MIN
    y = draw(Ball([0, 0, 0], 2.0).boundary(n)) / 2.0
    # Archimedes: each coordinate of a uniform point on the sphere is uniform on [-1, 1].
    assert stats.kstest((y[:, 2] + 1) / 2, "uniform").pvalue > P_MIN


def test_boundary_uniform_on_plate_parts():
    shape = plate()
    n = 12_000
    x = shape.boundary(n).sample(KEY)
    part = np.asarray(shape.part_index(x))
    lengths = np.array([1.0] * 4 + [0.2 * math.pi] * 4)
    assert stats.chisquare(np.bincount(part, minlength=8), n * lengths / lengths.sum()).pvalue > (
        P_MIN
    )
    x = np.asarray(x)
    # No point of the outer square inside a hole, no point of a hole outside the square.
    for c in HOLES:
        r = np.linalg.norm(x - c, axis=1)
        assert (r[part < 4] > 0.1 - 1e-6).all()
    assert ((x >= 0) & (x <= 1)).all()


def test_boundary_of_overlapping_shapes_keeps_only_outer_pieces():
    # Union of two unit disks whose centres are 1 apart: each keeps the arc of its
    # circle outside the other, 240 degrees of it, uniformly.
    union = SHAPES["union"]()
    n = 12_000
    x = draw(union.boundary(n))
    on_a = np.abs(np.linalg.norm(x, axis=1) - 1) < 1e-5
    assert abs(on_a.mean() - 0.5) < 4 * 0.5 / math.sqrt(n)
    angle = np.degrees(np.arctan2(x[on_a, 1], x[on_a, 0])) % 360
    assert angle.min() >= 60 - 1e-3 and angle.max() <= 300 + 1e-3
    counts = np.histogram(angle, 12, (60, 300))[0]
    assert stats.chisquare(counts).pvalue > P_MIN
    # A square with its corner cut by a disk centred on the corner: the arc lies inside
    # the square, the cut edges stop at the arc.
    cut = Rectangle([0, 0], [1, 1]) - Disk([1.0, 1.0], 0.5)
    y = draw(cut.boundary(n))
    arc = np.asarray(cut.part_index(y)) == 4
    assert ((y[arc] >= -1e-6) & (y[arc] <= 1 + 1e-6)).all()
    assert (np.linalg.norm(y[~arc] - 1.0, axis=1) >= 0.5 - 1e-5).all()
    expected = np.array([1.0, 0.5, 1.0, 0.5, math.pi * 0.5 / 2])
    counts = np.bincount(np.asarray(cut.part_index(y)), minlength=5)
    assert stats.chisquare(counts, n * expected / expected.sum()).pvalue > P_MIN


def test_boundary_parts_selection():
    shape = plate()
    x = shape.boundary(500, parts=["hole0", "rectangle.y1"]).sample(KEY)
    chosen = {shape.parts.index("hole0"), shape.parts.index("rectangle.y1")}
    assert set(np.unique(shape.part_index(x)).tolist()) == chosen
    x = shape.boundary(500, parts="rectangle").sample(KEY)  # a primitive's name: all its parts
    assert set(np.unique(shape.part_index(x)).tolist()) == {0, 1, 2, 3}
    cyl = Cylinder([0, 0, 0], 1.0, 1.0)
    x = cyl.boundary(4000, parts=("cylinder.side", "cylinder.top")).sample(KEY)
    counts = np.bincount(np.asarray(cyl.part_index(x)), minlength=3)
    assert counts[1] == 0
    assert stats.chisquare(counts[[0, 2]], 4000 * np.array([2, 1]) / 3).pvalue > P_MIN
    box = Box([0.0, 0.0, -1.0], [1.0, 2.0, 2.0])
    x = draw(box.boundary(6000, parts=["box.x1", "box.z0"]))
    on_x1, on_z0 = x[:, 0] == 1.0, x[:, 2] == -1.0
    assert (on_x1 | on_z0).all()
    # areas: x faces 2 * 3 = 6, z faces 1 * 2 = 2
    assert stats.chisquare([on_x1.sum(), (~on_x1).sum()], [4500, 1500]).pvalue > P_MIN


def test_box_boundary_draw_unchanged_and_parts_named():
    box = Box([0.0, 0.0], [1.0, 3.0])
    assert box.parts == ("box.x0", "box.x1", "box.y0", "box.y1")
    a = draw(box.boundary(100))
    b = draw(box.boundary(100, parts=list(box.parts)))
    np.testing.assert_array_equal(a, b)
    assert Box([0] * 4, [1] * 4).parts[-2:] == ("box.x3_0", "box.x3_1")
    assert Box([0, 0, 0], [1, 1, 1], time_axis=1).parts == ("box.x0", "box.x1", "box.z0", "box.z1")


def test_float64_sampling():
    from jno.domain import Box, Disk, Polygon, Rectangle

    with jax.enable_x64(True):  # the shapes, their draws and their geometry in float64
        shape = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.5, 0.5], 0.25, name="hole")
        lshape = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
        xi = shape.interior(1000).sample(jax.random.key(0))
        xb = shape.boundary(1000).sample(jax.random.key(0))
        yb = lshape.boundary(100).sample(jax.random.key(0))
        arrays = (xi, xb, yb, shape.distance(xb), shape.normal(xb))
        assert [str(a.dtype) for a in arrays] == ["float64"] * 5
        assert shape.grid(5).dtype == np.float64
        assert Box([0.0], [1.0]).boundary(3).sample(jax.random.key(0)).dtype == np.float64
        assert xi.shape == xb.shape == (1000, 2) and bool(shape.contains(xi).all())
        assert float(jnp.abs(shape.distance(xb)).max()) < 1e-12
        assert float(jnp.abs(lshape.smooth_distance(yb)).max()) < 1e-12


@pytest.mark.parametrize(
    "n, accept, fraction",
    # as estimated; an over-estimate (many top-up batches, ranks across words); a
    # count that is not a whole number of 32-slot words with few rejects
    [(50, 0.25, 0.25), (1000, 0.3, 0.9), (77, 0.9, 0.9)],
)
def test_exact_count_fills_rejected_slots_in_order_from_the_top_up_batches(n, accept, fraction):
    from jno.domain._sampling import exact_count, top_up_count

    def propose(key, m):
        u = jax.random.uniform(key, (m,))
        return u[:, None], u < accept

    # Jitted as in the samplers (eagerly, each of its small operations would compile).
    draw_one = jax.jit(lambda k: exact_count(k, n, propose, fraction))
    key = jax.random.key(11)
    x = np.asarray(draw_one(key))[:, 0]
    # By hand: batch 0 has n candidates, accepted ones stay in their slots; the
    # rejected slots, in order, take the accepted candidates of batches 1, 2, ...
    first = np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (n,)))
    stream = []
    for i in range(1, 1000):
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (top_up_count(n, fraction),)))
        stream.extend(u[u < accept].tolist())
        if len(stream) >= n:
            break
    expected = first.copy()
    missing = np.flatnonzero(first >= np.float32(accept))
    expected[missing] = stream[: missing.size]
    np.testing.assert_array_equal(x, np.float32(expected))
    lanes = jax.jit(jax.vmap(draw_one))(jax.random.split(key, 4))
    assert lanes.shape == (4, n, 1) and bool((lanes < np.float32(accept)).all())
    # float32 values in [0, 0.3) collide by chance: compare whole lanes instead.
    assert len({np.asarray(lane).tobytes() for lane in lanes}) == 4
    for lane, k in zip(np.asarray(lanes), jax.random.split(key, 4)):
        np.testing.assert_array_equal(lane, np.asarray(draw_one(k)))


def test_set_bit_position_and_packed_flags_against_numpy():
    from jno.domain._sampling import flag_ranks, pack_flags, set_bit_position

    rng = np.random.default_rng(0)
    flags = rng.random(1000) < 0.4
    # Jitted as in the samplers (eagerly, each of their small operations would compile).
    ranks = np.asarray(jax.jit(flag_ranks)(jnp.asarray(flags)))
    np.testing.assert_array_equal(ranks, np.cumsum(flags) - flags)
    words, counts = jax.jit(pack_flags)(jnp.asarray(flags))
    padded = np.concatenate([flags, np.zeros(24, bool)]).reshape(32, 32)
    np.testing.assert_array_equal(np.asarray(counts), padded.sum(1))
    k = rng.integers(0, 33, size=32)
    bits = np.asarray(jax.jit(set_bit_position)(words, jnp.asarray(k, jnp.int32)))
    for g in range(32):
        where = np.flatnonzero(padded[g])
        assert bits[g] == (where[k[g]] if k[g] < where.size else 31)


def test_equal_box_samplers_share_one_compiled_draw():
    compiles = []

    def listener(event, duration, **_):
        # A trace, not only a compilation: the persistent cache skips the latter.
        if event.startswith("/jax/core/compile/"):
            compiles.append(event)

    key = jax.random.key(3)
    box = Box([0.0, -1.0], [2.0, 1.0], time_axis=1)
    first = [box.interior(37).sample(key), box.boundary(37).sample(key)]
    first.append(box.initial(37).sample(key))
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        same = Box([0.0, -1.0], [2.0, 1.0], time_axis=1)  # another box, equal to the first
        again = [same.interior(37).sample(key), same.boundary(37).sample(key)]
        again.append(same.initial(37).sample(key))
        assert compiles == []  # every draw's program was compiled for the first box
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
        other = Box([0.0, -1.0], [3.0, 1.0], time_axis=1).interior(37).sample(key)
        assert compiles  # other bounds: another program, other points
        assert not np.array_equal(other, first[0])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
