"""Allen-Cahn 1-D: the ETDRK4 reference against exact solutions, the problem's losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno.problems import AllenCahn1D, allen_cahn_reference
from jno.problems._etdrk4 import etdrk4_periodic


def test_etdrk4_solves_the_reaction_ode_and_the_heat_equation_exactly():
    # A constant start: u_t = 5 u - 5 u^3, u(t) = c e^{5t} / sqrt(1 + c^2 (e^{10t} - 1)).
    c, times = 0.3, [0.0, 0.25, 1.0]
    _, u = etdrk4_periodic(lambda x: c + 0 * x, lambda v: 5 * v - 5 * v**3, 1e-4,
                           (-1.0, 1.0), 16, times, 1e-3)  # fmt: skip
    t = np.asarray(times)[:, None]
    exact = c * np.exp(5 * t) / np.sqrt(1 + c**2 * (np.exp(10 * t) - 1))
    # Fourth order in time: 2e-12 at dt = 1e-3.
    np.testing.assert_allclose(u, np.broadcast_to(exact, u.shape), rtol=1e-10)
    # Pure diffusion of cos(pi x) on [-1, 1): exp(-eps pi^2 t) cos(pi x).
    x, u = etdrk4_periodic(lambda x: np.cos(np.pi * x), lambda v: 0 * v, 0.3, (-1.0, 1.0),
                           32, [0.5], 0.01)  # fmt: skip
    np.testing.assert_allclose(u[0], np.exp(-0.3 * np.pi**2 * 0.5) * np.cos(np.pi * x), atol=1e-13)
    with pytest.raises(ValueError, match="multiples of dt"):
        etdrk4_periodic(np.sin, np.sin, 1.0, (0.0, 1.0), 8, [0.0, 0.015], 0.01)


def test_reference_grid_and_interpolation_agree():
    with jax.enable_x64(True):
        trainer = AllenCahn1D.default(hidden=[4], progress=False)
        grid = np.asarray(trainer.evaluation_points())
        ref = trainer.reference_values()
        assert grid.shape == (513 * 201, 2) and ref.shape == (513 * 201,)
        pick = np.random.default_rng(0).choice(grid.shape[0], 200, replace=False)
        np.testing.assert_allclose(trainer.reference(grid[pick]), ref[pick], atol=1e-12)
    x, t, u = allen_cahn_reference()
    # The interfaces form: the solution sits near -1 and 1 at t = 1.
    assert u[-1].min() < -0.99 and u[-1].max() > 0.95


def test_reference_against_an_independent_time_integrator():
    """Classic explicit RK4 (not ETDRK4) on the same Fourier nodes, dt = 1e-3 (stable
    below 2.7e-3 for the stiffest mode): the two agree to 1e-11 at t = 0.5 and 1."""
    x, _, u = allen_cahn_reference()
    k2 = (np.pi * np.fft.fftfreq(x.size, 1.0 / x.size)) ** 2

    def rhs(v):
        return -1e-4 * np.fft.ifft(k2 * np.fft.fft(v)).real + 5 * v - 5 * v**3

    v, dt = x**2 * np.cos(np.pi * x), 1e-3
    for step in range(1, 1001):
        a = rhs(v)
        b = rhs(v + dt / 2 * a)
        c = rhs(v + dt / 2 * b)
        v = v + dt / 6 * (a + 2 * b + 2 * c + rhs(v + dt * c))
        if step % 500 == 0:  # t = 0.5, 1.0: stored rows 100, 200
            np.testing.assert_allclose(v, u[step // 5], rtol=0, atol=1e-10)


def test_losses_vanish_where_they_should():
    net = jno.nn(jno.nnx.MLP(2, [8], 1, rngs=nnx.Rngs(0), periodic={0: 2.0}))
    net.optimizer(jno.optim.soap(1e-3))
    trainer = AllenCahn1D(net, batch_size=16, progress=False)
    batch = {k: p.sample(jax.random.key(0)) for k, p in trainer.points.items()}
    initial = lambda x: x[:, :1] ** 2 * jnp.cos(jnp.pi * x[:, :1])  # noqa: E731
    ones = lambda x: jnp.ones((x.shape[0], 1))  # noqa: E731

    @jax.jit  # one program, as in a training step
    def evaluate(batch):
        return (
            trainer.losses(net, batch),
            trainer.residuals(net, batch)["bc"],
            trainer.losses(initial, batch)["ic"],
            trainer.losses(ones, batch)["pde"],
        )

    losses, bc, initial_ic, ones_pde = evaluate(batch)
    # Periodic by construction: the periodic "bc" loss is left out, and it would vanish.
    assert sorted(losses) == ["ic", "pde"]
    assert float(bc[0].std()) < 1e-6
    assert float(jnp.abs(bc[1]).max()) < 1e-5
    assert float(initial_ic) < 1e-12
    # u = 1 solves the PDE (5 u^3 - 5 u = 0) but breaks the initial condition.
    assert float(ones_pde) == 0.0


def test_bc_is_trained_unless_the_network_is_exactly_periodic():
    def terms(**periodic):
        module = jno.nnx.MLP(2, [8], 1, rngs=nnx.Rngs(0), **periodic)
        net = jno.nn(module)
        net.optimizer(jno.optim.soap(1e-3))
        trainer = AllenCahn1D(net, batch_size=16, progress=False)
        batch = {k: p.sample(jax.random.key(0)) for k, p in trainer.points.items()}
        return trainer.losses(net, batch)

    plain = terms()
    assert sorted(plain) == ["bc", "ic", "pde"] and float(plain["bc"]) > 1e-6
    # A trainable frequency moves the period, and a wrong period is not x's.
    assert "bc" in terms(periodic={0: 2.0}, periodic_trainable=True)
    assert "bc" in terms(periodic={0: 3.0})
    assert "bc" not in terms(periodic={0: 2.0})


def test_the_initial_kink_matches_its_formula_and_removes_the_slope_jump():
    import math

    from jno.problems import initial_kink

    with jax.enable_x64(True):
        # At x = 0, by hand: y = -2 / pi, a = sqrt(4e-4 t).
        for t in (0.0, 0.01, 0.3):
            y, a = -2.0 / math.pi, math.sqrt(4e-4 * t)
            k = (
                abs(y)
                if t == 0
                else y * math.erf(y / a) + a * math.exp(-((y / a) ** 2)) / math.sqrt(math.pi)
            )
            got = float(initial_kink(jnp.array([[0.0, t]]))[0])
            assert got == pytest.approx(2.0 * math.exp(-10.0 * t) * k, rel=1e-14)
        # u0 jumps in slope by 4 across x = +-1; u0 - S(., 0) does not.
        u0 = lambda x: x**2 * jnp.cos(jnp.pi * x)
        smooth = lambda x: u0(x) - initial_kink(jnp.stack([x, 0.0 * x])[None])[0]
        d = 1e-7
        left, right = jax.grad(u0)(1.0 - d), jax.grad(u0)(-1.0 + d)
        assert float(right - left) == pytest.approx(4.0, abs=1e-5)
        jump = jax.grad(smooth)(-1.0 + d) - jax.grad(smooth)(1.0 - d)
        assert abs(float(jump)) < 1e-5
        # At the kink S solves S_t - eps S_xx + 10 S = 0 (the heat kernel and the decay).
        s = lambda x, t: initial_kink(jnp.stack([x, t])[None])[0]
        for t in (0.01, 0.1, 0.5):
            s_t, s_xx = jax.grad(s, 1)(1.0, t), jax.hessian(s, 0)(1.0, t)
            residual = s_t - 1e-4 * s_xx + 10.0 * s(1.0, t)
            assert abs(float(residual)) < 1e-12 * abs(float(s_t))


def test_exact_allen_cahn_adds_the_kink_and_keeps_every_loss():
    with jax.enable_x64(True):
        trainer = AllenCahn1D.default(hidden=[8], exact=True, progress=False)
        plain = AllenCahn1D.default(hidden=[8], progress=False)
        u, n = trainer.nets[0].module, plain.nets[0].module
        x = jnp.array([[1.0, 0.0], [0.3, 0.2], [-0.7, 0.9]])
        from jno.problems import initial_kink

        np.testing.assert_allclose(u(x)[:, 0], n(x)[:, 0] + initial_kink(x), rtol=1e-14)
        batch = {k: v.sample(jax.random.key(0)) for k, v in trainer.points.items()}
        losses = jax.jit(lambda b: trainer.losses(u, b))(batch)
        assert set(losses) == {"pde", "ic"}
        assert all(bool(jnp.isfinite(v)) for v in losses.values())
