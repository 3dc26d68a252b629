"""Dense BFGS (jno.optim.bfgs): the update formula, convergence, jit, a trainer phase."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.optim import bfgs, bfgs_update, self_scaled_update, ssbfgs, ssbroyden

# The updates run compiled, as in the optimizers: one compilation instead of one per op.
compiled_bfgs_update = jax.jit(bfgs_update)
compiled_self_scaled_update = jax.jit(self_scaled_update, static_argnames="method")


def numpy_bfgs(h, s, y):
    """The product form (I - rho s y^T) H (I - rho y s^T) + rho s s^T, in float64."""
    rho = 1.0 / (y @ s)
    i = np.eye(len(s))
    return (i - rho * np.outer(s, y)) @ h @ (i - rho * np.outer(y, s)) + rho * np.outer(s, s)


def test_update_matches_the_product_form_on_scripted_pairs():
    rng = np.random.default_rng(0)
    p = 6
    a = rng.normal(size=(p, p))
    hess = a @ a.T + p * np.eye(p)  # y = A s for a convex quadratic
    h_ref = np.eye(p)
    h = jnp.eye(p)
    for _ in range(5):
        s = rng.normal(size=p)
        y = hess @ s
        h_ref = numpy_bfgs(h_ref, s, y)
        h = compiled_bfgs_update(h, jnp.asarray(s, jnp.float32), jnp.asarray(y, jnp.float32))
        np.testing.assert_allclose(h, h_ref, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(np.asarray(h) @ y, s, rtol=1e-3, atol=1e-3)  # secant
    # A pair with negative curvature is skipped: H is unchanged.
    s = rng.normal(size=p)
    np.testing.assert_array_equal(compiled_bfgs_update(h, jnp.asarray(s), -jnp.asarray(s)), h)


def numpy_self_scaled(h, s, y, g, d, method, first):
    """The self-scaled updates of Urbán, Stefanou & Pons (2024), in float64 numpy."""
    n = len(s)
    rho = 1.0 / (y @ s)
    alpha = (s @ d) / (d @ d)
    b = -alpha * rho * (s @ g)
    if method == "ssbfgs":
        tau = rho * (y @ y) if first else min(1.0, 1.0 / b)
        return numpy_bfgs(h / tau, s, y)
    hy = h @ y
    yhy = y @ hy
    hk = yhy * rho
    a = b * hk - 1.0
    rho_minus = min(1.0, hk * (1.0 - np.sqrt(abs(a) / (1.0 + a))))
    theta = max((rho_minus - 1.0) / a, min(1.0 / rho_minus, (1.0 - b) / b))
    if first:
        tau = hk / (1.0 + a * theta)
    else:
        sigma = 1.0 + theta * a
        sigma_root = abs(sigma) ** (1.0 / (1.0 - n))
        rho_b = min(1.0, 1.0 / b)
        tau = min(rho_b * sigma_root, sigma) if theta <= 0 else rho_b * min(sigma_root, 1 / theta)
    v = rho * s - hy / yhy
    phi = (1.0 - theta) / (1.0 + a * theta)
    return (h - np.outer(hy, hy) / yhy + phi * yhy * np.outer(v, v)) / tau + rho * np.outer(s, s)


@pytest.mark.parametrize("method", ["ssbfgs", "ssbroyden"])
def test_self_scaled_updates_match_numpy_on_scripted_pairs(method):
    rng = np.random.default_rng(2)
    p = 5
    a = rng.normal(size=(p, p))
    hess = a @ a.T + p * np.eye(p)
    h_ref, h = np.eye(p), np.eye(p)
    with jax.enable_x64(True):
        for k in range(4):
            g = rng.normal(size=p)  # the gradient before the step
            d = -h_ref @ g  # the direction, and a step of length alpha along it
            s = 0.7 * d
            y = hess @ s
            h_ref = numpy_self_scaled(h_ref, s, y, g, d, method, k == 0)
            h = compiled_self_scaled_update(
                jnp.asarray(h), *map(jnp.asarray, (s, y, g, d)), method=method, first=k == 0
            )
            np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)
            h = np.asarray(h)
            assert np.all(np.linalg.eigvalsh((h + h.T) / 2) > 0)  # positive definite


def run(f, x0, steps, jit=True, tx=None):
    tx = bfgs() if tx is None else tx
    params = {"x": x0}
    state = tx.init(params)
    vg = optax.value_and_grad_from_state(f)

    def step(carry):
        params, state = carry
        value, grad = vg(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step) if jit else step
    carry = (params, state)
    for _ in range(steps):
        carry = step(carry)
    return carry[0]["x"]


def rosenbrock(p):
    x = p["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("make", [bfgs, ssbfgs, ssbroyden])
def test_converges_on_rosenbrock_and_a_quadratic_in_float64(make):
    with jax.enable_x64(True):
        x = run(rosenbrock, jnp.array([-1.2, 1.0]), 45, tx=make())
        assert x.dtype == jnp.float64
        np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-10)
        rng = np.random.default_rng(1)
        a = rng.normal(size=(8, 8))
        q = jnp.asarray(a @ a.T + np.eye(8))  # condition number about 30
        b = jnp.asarray(rng.normal(size=8))
        quad = lambda p: 0.5 * p["x"] @ q @ p["x"] - b @ p["x"]
        # Superlinear: 4e-4 after 20 steps, 1e-12 after 30 (the line search is inexact).
        x = run(quad, jnp.zeros(8), 35, tx=make())
        np.testing.assert_allclose(x, np.linalg.solve(np.asarray(q), np.asarray(b)), atol=1e-10)


def test_jit_and_eager_iterates_are_equal():
    # In float64, so that the rounding differences of XLA's fusions stay at 1e-15
    # instead of being amplified by the line search to float32's 1e-5.
    with jax.enable_x64(True):
        jitted = run(rosenbrock, jnp.array([-1.2, 1.0]), 8)
        eager = run(rosenbrock, jnp.array([-1.2, 1.0]), 8, jit=False)
    np.testing.assert_allclose(jitted, eager, rtol=1e-10, atol=1e-12)


class Poisson1D(jno.Trainer):
    def losses(self, net, batch):
        x = batch["x"]
        r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        ends = jnp.array([[0.0], [1.0]], x.dtype)
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(ends) ** 2)}


def phase(tx, steps=60):
    net = jno.nn(jno.nnx.MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    x = jnp.linspace(0, 1, 32)[:, None]
    # Each fit is one chunk: the initial state of optax.lbfgs is weakly typed, so a second
    # chunk would compile its step again.
    trainer = Poisson1D(net, points={"x": x}, progress=False, log_every=1000)
    trainer.fit(100)
    net.optimizer(tx)
    trainer.fit(steps)  # the step count continues
    assert trainer.step == 100 + steps
    return float(total_loss(trainer, net.module, x))


@nnx.jit(static_argnums=0)
def total_loss(trainer, module, x):
    return sum(trainer.losses(module, {"x": x}).values())


def test_a_trainer_phase_beats_the_same_number_of_lbfgs_iterations():
    # float64, 150 iterations after 100 Adam steps; measured final losses: ssbroyden
    # 8.9e-8, optax.lbfgs 5.7e-5 (after 100: 1.6e-6 and 7.0e-5).
    with jax.enable_x64(True):
        dense, limited = phase(ssbroyden(), 150), phase(optax.lbfgs(), 150)
    assert dense < limited / 30, (dense, limited)
