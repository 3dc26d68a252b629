"""jno.domain: samplers land where they should, with the right frequencies, reproducibly."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jno.domain import Box, Interval, PointSet

KEY = jax.random.key(0)


def draw(ps, key=KEY):
    return np.asarray(ps.sample(key))


def test_interior_inside_box_shape_dtype():
    box = Box([-1.0, 2.0, 0.5], [0.0, 5.0, 0.75])
    ps = box.interior(2000)
    assert (ps.n, ps.dim, ps.resample, ps.kind) == (2000, 3, False, "interior")
    x = jax.jit(ps.sample)(KEY)
    assert x.shape == (2000, 3) and x.dtype == jnp.float32
    x = np.asarray(x)
    lo, hi = np.float32([-1.0, 2.0, 0.5]), np.float32([0.0, 5.0, 0.75])
    assert ((x >= lo) & (x <= hi)).all()
    # uniform: mean near the centre, spread near the full range
    np.testing.assert_allclose(x.mean(0), (lo + hi) / 2, atol=0.05 * (hi - lo).max())
    np.testing.assert_allclose(x.min(0), lo, atol=0.01 * (hi - lo).max())
    np.testing.assert_allclose(x.max(0), hi, atol=0.01 * (hi - lo).max())


def _faces(x, box):
    """Face index (2*axis + side) of each boundary point; -1 if on no face."""
    lo, hi = np.float32(box.lo), np.float32(box.hi)
    face = np.full(x.shape[0], -1)
    for slot, a in enumerate(box.spatial_axes):
        face = np.where(x[:, a] == lo[a], 2 * slot, face)
        face = np.where(x[:, a] == hi[a], 2 * slot + 1, face)
    return face


def test_boundary_on_faces_with_area_frequencies():
    box = Box([0.0, 0.0, -1.0], [1.0, 2.0, 2.0])
    n = 40000
    x = draw(box.boundary(n, resample=True))
    assert x.shape == (n, 3) and x.dtype == np.float32
    lo, hi = np.float32(box.lo), np.float32(box.hi)
    assert ((x >= lo) & (x <= hi)).all()
    face = _faces(x, box)
    assert (face >= 0).all()  # every sample lies exactly on a face
    # areas: axis 0 faces 2*3=6, axis 1 faces 1*3=3, axis 2 faces 1*2=2
    expected = np.array([6, 6, 3, 3, 2, 2]) / 22
    np.testing.assert_allclose(box.face_probabilities(), expected, rtol=1e-12)
    freq = np.bincount(face, minlength=6) / n
    np.testing.assert_allclose(freq, expected, atol=0.01)
    # uniform on a face: free coordinates of the x0 = 0 face centred
    on = x[face == 0]
    np.testing.assert_allclose(on[:, 1:].mean(0), [1.0, 0.5], atol=0.05)


def test_interval_boundary_end_points_half_each():
    iv = Interval(-2.0, 3.0)
    x = draw(iv.boundary(4000))
    assert x.shape == (4000, 1)
    assert set(np.unique(x).tolist()) == {-2.0, 3.0}
    assert abs((x == 3.0).mean() - 0.5) < 0.03
    np.testing.assert_allclose(iv.face_probabilities(), [0.5, 0.5])


@pytest.mark.parametrize("time_axis", [-1, 2])
def test_space_time_lateral_boundary(time_axis):
    box = Box([0.0, 0.0, 0.0], [1.0, 2.0, 5.0], time_axis=time_axis)
    assert box.time_axis == 2 and box.spatial_axes == (0, 1)
    n = 20000
    x = draw(box.boundary(n))
    face = _faces(x, box)
    assert (face >= 0).all()
    # areas include the time extent: axis 0 faces 2*5, axis 1 faces 1*5
    freq = np.bincount(face, minlength=4) / n
    np.testing.assert_allclose(freq, np.array([10, 10, 5, 5]) / 30, atol=0.015)
    t = x[:, 2]
    assert t.min() >= 0.0 and t.max() <= 5.0
    assert abs(t.mean() - 2.5) < 0.1  # full time range, no time face
    assert (t == 0.0).sum() == 0 and (t == 5.0).sum() == 0


@pytest.mark.parametrize(
    ("lo", "hi", "axis"), [([0.0, 1.5], [2.0, 4.0], 1), ([1.5, 0.0], [4.0, 2.0], 0)]
)
def test_initial_slice(lo, hi, axis):
    box = Box(lo, hi, time_axis=axis)
    ps = box.initial(3000)
    assert ps.kind == "initial" and ps.dim == 2
    x = draw(ps)
    assert (x[:, axis] == np.float32(lo[axis])).all()
    space = 1 - axis
    xs = x[:, space]
    assert xs.min() >= lo[space] and xs.max() <= hi[space]
    assert abs(xs.mean() - (lo[space] + hi[space]) / 2) < 0.05 * (hi[space] - lo[space])


def test_initial_without_time_axis_raises():
    with pytest.raises(ValueError, match="time_axis"):
        Box([0.0, 0.0], [1.0, 1.0]).initial(10)
    with pytest.raises(ValueError, match="time_axis"):
        Interval(0.0, 1.0).initial(10)


@pytest.mark.parametrize("method", ["interior", "boundary"])
def test_keys_determine_points(method):
    ps = getattr(Box([0.0, 0.0], [1.0, 1.0]), method)(64)
    a, b = draw(ps, jax.random.key(7)), draw(ps, jax.random.key(7))
    np.testing.assert_array_equal(a, b)
    c = draw(ps, jax.random.key(8))
    assert not np.array_equal(a, c)
    # legacy uint32 keys work too, and an outer jit gives the same points
    legacy = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(jax.jit(ps.sample)(legacy), draw(ps, legacy))


def test_sample_inside_compiled_step_with_vmap_over_keys():
    ps = Box([0.0], [1.0]).interior(5, resample=True)
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.jit(jax.vmap(ps.sample))(keys)
    assert x.shape == (3, 5, 1)
    assert not np.array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[2], ps.sample(keys[2]))


def test_from_array_fixed():
    arr = np.arange(12, dtype=np.float64).reshape(6, 2)
    ps = PointSet.from_array(arr)
    assert (ps.n, ps.dim, ps.resample, ps.kind) == (6, 2, False, "fixed")
    x = jax.jit(ps.sample)(jax.random.key(1))
    assert x.dtype == jnp.float32
    np.testing.assert_array_equal(x, arr.astype(np.float32))
    np.testing.assert_array_equal(ps.sample(jax.random.key(2)), x)
    with pytest.raises(ValueError, match=r"shape \(n, d\).*\(3,\)"):
        PointSet.from_array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        PointSet.from_array([[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        PointSet.from_array(np.zeros((0, 2)))


def test_pointset_is_frozen_and_hashes_by_identity():
    ps = Box([0.0], [1.0]).interior(4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ps.n = 5
    assert hash(ps) == hash(ps) and ps == ps
    assert ps != Box([0.0], [1.0]).interior(4)
    assert "interior" in repr(ps) and "n=4" in repr(ps)


def test_grid_matches_meshgrid():
    box = Box([0.0, -1.0], [2.0, 1.0])
    g = np.asarray(box.grid([3, 5]))
    gx, gy = np.meshgrid(np.linspace(0, 2, 3), np.linspace(-1, 1, 5), indexing="ij")
    np.testing.assert_array_equal(g, np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    assert g.dtype == np.float32
    assert box.grid(4).shape == (16, 2)
    np.testing.assert_array_equal(Interval(0.0, 1.0).grid(5)[:, 0], [0.0, 0.25, 0.5, 0.75, 1.0])


def test_validation_errors():
    with pytest.raises(ValueError, match=r"lo\[1\]=1.0 >= hi\[1\]=1.0"):
        Box([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        Box([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="hi must be finite"):
        Box([0.0], [np.inf])
    with pytest.raises(ValueError, match="lo must be a non-empty"):
        Box([], [])
    with pytest.raises(TypeError, match="lo must be a sequence"):
        Box(["a"], [1.0])
    with pytest.raises(ValueError, match="time_axis must be in \\[-2, 2\\), got 2"):
        Box([0.0, 0.0], [1.0, 1.0], time_axis=2)
    with pytest.raises(ValueError, match="dimension >= 2"):
        Box([0.0], [1.0], time_axis=0)
    with pytest.raises(TypeError, match="time_axis must be an int"):
        Box([0.0, 0.0], [1.0, 1.0], time_axis=1.0)
    with pytest.raises(ValueError, match="a must be < b, got a=1.0, b=0.0"):
        Interval(1.0, 0.0)
    with pytest.raises(ValueError, match="b must be finite"):
        Interval(0.0, np.nan)
    with pytest.raises(TypeError, match="a must be a real number"):
        Interval("0", 1.0)
    box = Box([0.0], [1.0])
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        box.interior(0)
    with pytest.raises(TypeError, match="n must be an int, got 2.5"):
        box.boundary(2.5)
    with pytest.raises(TypeError, match="n must be an int, got True"):
        box.interior(True)
    with pytest.raises(TypeError, match="resample must be a bool"):
        box.interior(4, resample=1)
    with pytest.raises(ValueError, match=r"n_per_axis must be >= 2, got 1"):
        box.grid(1)
    with pytest.raises(ValueError, match=r"one entry per axis \(1\)"):
        box.grid([2, 2])


def test_numpy_ints_and_arrays_accepted():
    box = Box(np.array([0, 0]), np.array([1, 2]))
    assert box.lo == (0.0, 0.0) and box.hi == (1.0, 2.0)
    assert box.interior(np.int64(3)).n == 3
    assert Interval(jnp.float32(0.0), 1).hi == (1.0,)
