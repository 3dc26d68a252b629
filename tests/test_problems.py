"""jno.problems: exact / reference solutions solve their PDEs, losses, defaults, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno import ops
from jno.problems import Burgers1D, Helmholtz2D, KleinGordon1D, Poisson2D, Problem, cole_hopf

NU = 0.01 / np.pi


def batch_of(trainer, n=64, seed=0):
    """Points of every set of the problem, drawn with numpy (the samplers are tested
    in test_domain.py; compiling them for each trainer would dominate this file)."""
    rng = np.random.default_rng(seed)
    box = trainer.domain
    lo, hi = np.array(box.lo), np.array(box.hi)
    out = {}
    for name in trainer.point_sets:
        x = lo + (hi - lo) * rng.uniform(size=(n, box.dim))
        if name == "boundary":
            axis = rng.choice(box.spatial_axes, size=n)
            side = rng.integers(0, 2, size=n)
            x[np.arange(n), axis] = np.where(side == 1, hi[axis], lo[axis])
        elif name == "initial":
            x[:, box.time_axis] = lo[box.time_axis]
        out[name] = jnp.asarray(x, jnp.float32)
    return out


def traced_losses(problem, net, batch):
    """``problem.losses`` compiled (eagerly each op compiles alone), and its names in order."""
    names = []

    def run(batch):
        out = problem.losses(net, batch)
        names.append(tuple(out))
        return out

    return jax.jit(run)(batch), names[0]


def small(cls, **kwargs):
    return cls.default(hidden=[8], progress=False, **kwargs)


# ------------------------------------------------------------ exact solutions


@pytest.mark.parametrize(
    "cls, params",
    [
        (Poisson2D, {}),
        (Helmholtz2D, {}),
        (Helmholtz2D, {"a1": 2.0, "a2": 3.0, "k": 5.0}),
        (KleinGordon1D, {}),
        (KleinGordon1D, {"alpha": -2.0, "beta": 0.5, "gamma": 0.3, "power": 2}),
    ],
)
def test_exact_solution_has_zero_residuals(cls, params):
    trainer = small(cls, **params)
    batch = batch_of(trainer, n=256)
    res = jax.jit(lambda b: trainer.residuals(trainer.reference, b))(batch)
    assert set(res) == ({"pde", "bc", "ic"} if cls is KleinGordon1D else {"pde", "bc"})
    # float32: a wrong sign or coefficient leaves residuals of the order of the source
    scale = float(jnp.max(jnp.abs(trainer.source(batch["interior"]))))
    assert scale > 1.0
    np.testing.assert_allclose(res["pde"], 0.0, atol=1e-6 * scale)
    if cls is not KleinGordon1D:  # u = 0 on the boundary: a property of the formula
        np.testing.assert_allclose(res["bc"], 0.0, atol=1e-6)


def test_klein_gordon_boundary_and_initial_data_against_the_formula():
    """The bc / ic targets, read through the residuals of u = 0, against numpy."""
    trainer = small(KleinGordon1D)
    batch = batch_of(trainer, n=64)
    zero = lambda x: jnp.zeros((x.shape[0], 1))  # noqa: E731
    res = jax.jit(lambda b: trainer.residuals(zero, b))(batch)
    xb = np.asarray(batch["boundary"], np.float64)
    x0 = np.asarray(batch["initial"], np.float64)
    assert set(xb[:, 0].round(6)) == {0.0, 1.0} and np.all(x0[:, 1] == 0)
    u_b = xb[:, 0] * np.cos(5 * np.pi * xb[:, 1]) + (xb[:, 0] * xb[:, 1]) ** 3
    np.testing.assert_allclose(res["bc"], -u_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["ic"][0], -x0[:, 0], atol=1e-6)  # u(x, 0) = x
    np.testing.assert_allclose(res["ic"][1], 0.0, atol=1e-6)  # u_t(x, 0) = 0
    # reference_t is the time derivative of reference (autodiff of the formula).
    xi = batch["interior"]
    grad_t = jax.vmap(jax.grad(lambda p: trainer.reference(p[None])[0]))(xi)[:, 1]
    np.testing.assert_allclose(trainer.reference_t(xi), grad_t, rtol=1e-4, atol=1e-4)


def test_reference_formulas_against_numpy():
    x = np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]], np.float32)
    xx, yy = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    pi = np.pi
    poisson = small(Poisson2D)
    np.testing.assert_allclose(poisson.reference(x), np.sin(pi * xx) * np.sin(pi * yy), atol=1e-6)
    np.testing.assert_allclose(
        poisson.source(x), 2 * pi**2 * np.sin(pi * xx) * np.sin(pi * yy), rtol=1e-5
    )
    h = small(Helmholtz2D, a1=2.0, a2=3.0, k=5.0)
    u = np.sin(2 * pi * xx) * np.sin(3 * pi * yy)
    np.testing.assert_allclose(h.reference(x), u, atol=1e-6)
    np.testing.assert_allclose(h.source(x), (25 - 13 * pi**2) * u, rtol=1e-5, atol=1e-5)
    kg = small(KleinGordon1D)
    u = xx * np.cos(5 * pi * yy) + (xx * yy) ** 3
    np.testing.assert_allclose(kg.reference(x), u, atol=1e-6)
    f = -25 * pi**2 * xx * np.cos(5 * pi * yy) + 6 * xx**3 * yy - 6 * xx * yy**3 + u**3
    np.testing.assert_allclose(kg.source(x), f, rtol=1e-5, atol=1e-4)


def test_exact_boundary_and_initial_values():
    for cls in (Poisson2D, Helmholtz2D):  # integer frequencies: zero on the boundary
        t = small(cls)
        xb = batch_of(t, n=200)["boundary"]
        lo, hi = np.float32(cls.domain.lo), np.float32(cls.domain.hi)
        assert bool(((xb == lo) | (xb == hi)).any(axis=1).all())
        np.testing.assert_allclose(t.reference(xb), 0.0, atol=1e-6)
    kg = small(KleinGordon1D)
    b = batch_of(kg, n=200)
    xb, x0 = np.asarray(b["boundary"]), b["initial"]
    side = xb[:, 0]
    assert set(np.unique(side)) == {0.0, 1.0}
    t = xb[:, 1].astype(np.float64)
    np.testing.assert_allclose(kg.reference(xb), side * (np.cos(5 * np.pi * t) + t**3), atol=1e-5)
    np.testing.assert_allclose(kg.reference(x0), x0[:, 0], atol=1e-7)  # u(x, 0) = x
    np.testing.assert_allclose(kg.reference_t(x0), 0.0, atol=1e-7)  # u_t(x, 0) = 0
    xi = b["interior"]  # reference_t is the t-derivative of reference
    np.testing.assert_allclose(
        kg.reference_t(xi), ops.partial(kg.reference, xi, 1), rtol=1e-4, atol=1e-4
    )


# ------------------------------------------------------------ Burgers reference


def test_cole_hopf_initial_boundary_and_symmetry():
    x = np.linspace(-1.0, 1.0, 41)
    np.testing.assert_array_equal(cole_hopf(x, 0.0), -np.sin(np.pi * x))
    np.testing.assert_allclose(cole_hopf(x, 1e-8), -np.sin(np.pi * x), atol=1e-8)
    t = np.linspace(0.01, 1.0, 25)
    np.testing.assert_allclose(cole_hopf(-1.0, t), 0.0, atol=1e-12)
    np.testing.assert_allclose(cole_hopf(1.0, t), 0.0, atol=1e-12)
    xs, ts = np.meshgrid(np.linspace(0.05, 1.0, 20), t, indexing="ij")
    np.testing.assert_allclose(cole_hopf(-xs, ts), -cole_hopf(xs, ts), atol=1e-12)
    assert np.abs(cole_hopf(xs, ts)).max() > 0.5  # not trivially zero


def test_cole_hopf_stable_for_tiny_viscosity():
    # exp(-cos(pi y) / (2 pi nu)) alone overflows float64 for nu = 1e-4 (exponent ~1600)
    xs, ts = np.meshgrid(np.linspace(-1, 1, 33), np.linspace(0.1, 1, 4), indexing="ij")
    u = cole_hopf(xs, ts, nu=1e-4)
    assert np.isfinite(u).all() and np.abs(u).max() <= 1.0
    np.testing.assert_allclose(u[16], 0.0, atol=1e-12)  # x = 0 by symmetry


def test_cole_hopf_converged_in_quadrature_order():
    xs, ts = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(0.01, 1, 21), indexing="ij")
    u200 = cole_hopf(xs, ts, NU, 200)
    np.testing.assert_allclose(cole_hopf(xs, ts, NU, 100), u200, atol=1e-6)
    np.testing.assert_allclose(cole_hopf(xs, ts, NU, 150), u200, atol=1e-12)
    assert np.abs(cole_hopf(xs, ts, NU, 20) - u200).max() > 1e-3  # orders do differ


def test_cole_hopf_solves_burgers_and_matches_published_slope():
    xs, ts = np.meshgrid(np.linspace(0.3, 0.9, 7), np.linspace(0.1, 0.9, 5), indexing="ij")
    xs = np.concatenate([xs, -xs])
    ts = np.concatenate([ts, ts])
    h = 1e-3
    u = cole_hopf(xs, ts)
    ux = (cole_hopf(xs + h, ts) - cole_hopf(xs - h, ts)) / (2 * h)
    uxx = (cole_hopf(xs + h, ts) - 2 * u + cole_hopf(xs - h, ts)) / h**2
    ut = (cole_hopf(xs, ts + h) - cole_hopf(xs, ts - h)) / (2 * h)
    np.testing.assert_allclose(ut + u * ux - NU * uxx, 0.0, atol=1e-4)
    # Basdevant et al. (1986): max |u_x| at x = 0 is 152.00516, at t = 1.6037 / pi
    t_star = 1.6037 / np.pi
    h = 1e-6
    slope = (cole_hopf(h, t_star) - cole_hopf(-h, t_star)) / (2 * h)
    assert abs(slope + 152.00516) < 1e-3


def test_burgers_problem_reference_cached_on_grid():
    t = small(Burgers1D)
    grid = np.asarray(t.evaluation_points(), np.float64)
    assert grid.shape == (256 * 101, 2)
    ref = t.reference_values()
    assert t.reference_values() is ref and not ref.flags.writeable
    sub = slice(0, None, 997)
    np.testing.assert_allclose(ref[sub], cole_hopf(grid[sub, 0], grid[sub, 1]), atol=1e-14)
    np.testing.assert_allclose(t.reference(grid[sub]), ref[sub], atol=1e-14)
    at_t0 = grid[:, 1] == 0.0
    np.testing.assert_allclose(ref[at_t0], -np.sin(np.pi * grid[at_t0, 0]), atol=1e-15)


# ------------------------------------------------------------ losses


def test_losses_are_mean_squares_of_the_residuals():
    kg = small(KleinGordon1D)
    net = kg.nets[0].module
    b = batch_of(kg, n=32, seed=3)
    losses, names = traced_losses(kg, net, b)
    assert names == ("pde", "bc", "ic") and all(v.shape == () for v in losses.values())

    def u1(p):  # the network at one point, for derivatives by jax.grad / jax.hessian
        return net(p[None])[0, 0]

    grad, hessian = jax.jit(jax.vmap(jax.grad(u1))), jax.jit(jax.vmap(jax.hessian(u1)))
    x0, xb, xi = b["initial"], b["boundary"], b["interior"]
    u0, ut0 = net(x0)[:, 0], grad(x0)[:, 1]
    ic = np.mean((u0 - x0[:, 0]) ** 2) + np.mean(ut0**2)
    np.testing.assert_allclose(losses["ic"], ic, rtol=1e-5)
    ref_b = xb[:, 0] * (jnp.cos(5 * jnp.pi * xb[:, 1]) + xb[:, 1] ** 3)
    np.testing.assert_allclose(losses["bc"], np.mean((net(xb)[:, 0] - ref_b) ** 2), rtol=1e-5)
    hess = hessian(xi)
    ui = net(xi)[:, 0]
    pde = hess[:, 1, 1] - hess[:, 0, 0] + ui**3 - kg.source(xi)
    np.testing.assert_allclose(losses["pde"], np.mean(pde**2), rtol=1e-4)

    bu = small(Burgers1D)
    net = bu.nets[0].module
    b = batch_of(bu, n=16)
    losses, names = traced_losses(bu, net, b)
    assert names == ("pde", "bc", "ic") and all(v.shape == () for v in losses.values())
    xi = b["interior"]

    def u1(p):
        return net(p[None])[0, 0]

    g = jax.jit(jax.vmap(jax.grad(u1)))(xi)
    hess = jax.jit(jax.vmap(jax.hessian(u1)))(xi)
    ui = net(xi)[:, 0]
    pde = g[:, 1] + ui * g[:, 0] - NU * hess[:, 0, 0]
    np.testing.assert_allclose(losses["pde"], np.mean(pde**2), rtol=1e-4)
    np.testing.assert_allclose(losses["bc"], np.mean(net(b["boundary"])[:, 0] ** 2), rtol=1e-5)
    x0 = b["initial"]
    ic = np.mean((net(x0)[:, 0] + jnp.sin(jnp.pi * x0[:, 0])) ** 2)
    np.testing.assert_allclose(losses["ic"], ic, rtol=1e-5)


# ------------------------------------------------------------ construction


def test_default_builds_the_accuracy_setup():
    t = Helmholtz2D.default(seed=3, progress=False, log_every=7, balancer=jno.nnx.ReLoBRaLo(2))
    assert isinstance(t, Problem) and isinstance(t, jno.Trainer)
    assert (t.seed, t.log_every, t.progress) == (3, 7, False)
    assert isinstance(t.balancer, jno.nnx.ReLoBRaLo)
    module = t.nets[0].module
    assert [layer.kernel.shape for layer in module.layers] == [(2, 50), (50, 50), (50, 50), (50, 1)]
    np.testing.assert_array_equal(module.input_lo[...], [-1.0, -1.0])
    np.testing.assert_array_equal(module.input_hi[...], [1.0, 1.0])
    for name in ("interior", "boundary"):
        ps = t.points[name]
        assert (ps.n, ps.resample, ps.kind) == (128, True, name)
    schedule = t.nets[0].optimizer_spec.schedule
    np.testing.assert_allclose(
        [schedule(0), schedule(1000), schedule(2500)], [1e-3, 9e-4, 1e-3 * 0.9**2.5], rtol=1e-6
    )
    assert t.config()["problem"] == {"a1": 1.0, "a2": 4.0, "k": 1.0}

    b = Burgers1D.default(batch_size={"initial": 7}, resample=False, hidden=[4], progress=False)
    assert {k: (ps.n, ps.resample) for k, ps in b.points.items()} == {
        "interior": (1024, False),
        "boundary": (128, False),
        "initial": (7, False),
    }
    assert b.nets[0].module.in_features == 2 and b.config()["problem"]["nu"] == NU


def test_seeded_defaults_are_deterministic():
    a, b, c = (small(KleinGordon1D, seed=s) for s in (0, 0, 1))
    assert a.relative_l2() == b.relative_l2() != c.relative_l2()


def test_relative_l2_formula():
    t = small(Poisson2D)
    grid = t.evaluation_points()
    assert grid.shape == (101 * 101, 2)
    pred = np.asarray(t.nets[0].module(grid)[:, 0], np.float64)
    ref = np.sin(np.pi * np.asarray(grid, np.float64)).prod(axis=1)
    expected = np.linalg.norm(pred - ref) / np.linalg.norm(ref)
    np.testing.assert_allclose(t.relative_l2(), expected, rtol=1e-5)
    pts = jnp.array([[0.5, 0.5], [0.25, 0.75]])
    pred = np.asarray(t.predict(pts), np.float64)
    ref = np.array([1.0, 0.5])
    np.testing.assert_allclose(
        t.relative_l2(pts), np.linalg.norm(pred - ref) / np.linalg.norm(ref), rtol=1e-5
    )
    last = t.nets[0].module.layers[-1]  # a zero network has relative error exactly 1
    last.kernel[...] = jnp.zeros_like(last.kernel[...])
    assert t.relative_l2() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        t.relative_l2(jnp.zeros((3, 3)))


def test_custom_points_and_bad_arguments():
    net = jno.nn(jno.nnx.MLP(2, [4], 1, rngs=nnx.Rngs(0)))
    pts = {"interior": jnp.full((4, 2), 0.5), "boundary": jnp.zeros((2, 2))}
    t = Poisson2D(net, points=pts, progress=False)
    np.testing.assert_array_equal(t.points["interior"], pts["interior"])
    with pytest.raises(ValueError, match="missing"):
        Poisson2D(net, points={"interior": pts["interior"]})
    with pytest.raises(ValueError, match="not both"):
        Poisson2D(net, points=pts, batch_size=8)
    with pytest.raises(TypeError, match="Problem has no domain"):
        Problem(net)
    with pytest.raises(TypeError, match="net must be one network"):
        Poisson2D(net.module)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Poisson2D(net, batch_size=0)
    with pytest.raises(ValueError, match=r"batch_size\['initial'\] must be >= 1, got -1"):
        Burgers1D(net, batch_size={"initial": -1})
    with pytest.raises(ValueError, match=r"unknown point sets \['initial'\]"):
        Poisson2D(net, batch_size={"initial": 3})
    with pytest.raises(ValueError, match="nu must be a finite number > 0, got 0"):
        Burgers1D(net, nu=0)
    with pytest.raises(ValueError, match=r"nodes must be in \[2, 300\], got 400"):
        Burgers1D(net, nodes=400)
    with pytest.raises(ValueError, match="a1 must be a finite number, got nan"):
        Helmholtz2D(net, a1=float("nan"))
    with pytest.raises(ValueError, match="power must be >= 1, got 0"):
        KleinGordon1D(net, power=0)
    with pytest.raises(TypeError, match="k must be a real number"):
        Helmholtz2D(net, k="1")
    with pytest.raises(ValueError, match="t must be finite and >= 0"):
        cole_hopf(0.0, -0.1)


# ------------------------------------------------------------ training


def test_short_training_lowers_relative_l2():
    t = Poisson2D.default(seed=0, hidden=[16, 16], lr=1e-2, batch_size=64, progress=False)
    before = t.relative_l2()
    history = t.fit(150)
    after = t.relative_l2()
    assert t.step == 150 and history["loss/pde"][-1] < history["loss/pde"][0]
    assert after < 0.5 * before
