"""Levenberg-Marquardt and ENGD (``jno.optim``) against numpy transcriptions, on
Rosenbrock, with every solver, and their guards."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jno.optim import LeastSquaresState, engd, levenberg_marquardt

T = np.linspace(0.0, 2.0, 7)
Y = np.array([2.0, 1.6, 1.35, 1.1, 0.95, 0.8, 0.7])


def _residual(p):
    """An exponential fit: r_i = a exp(-b t_i) + c - y_i (params as a pytree)."""
    return p["a"] * jnp.exp(-p["bc"][0] * T) + p["bc"][1] - Y


def _numpy_system(x):
    a, b, c = x
    r = a * np.exp(-b * T) + c - Y
    jac = np.stack([np.exp(-b * T), -a * T * np.exp(-b * T), np.ones_like(T)], axis=1)
    return r, jac


def _params(x):
    return {"a": jnp.asarray(x[0]), "bc": jnp.asarray(x[1:])}


def _flat(tree):
    return np.concatenate([np.ravel(tree["a"]), np.ravel(tree["bc"])])


@pytest.mark.parametrize("solver", ["parameters", "samples", "svd", "cg"])
def test_levenberg_marquardt_steps_match_a_numpy_transcription(solver):
    with jax.enable_x64(True):
        tx = levenberg_marquardt(0.5, solver=solver, cg_steps=20)
        x = np.array([1.0, 0.3, 0.2])
        state = tx.init(_params(x))
        lam, nu = 0.5, 2.0
        for _ in range(4):
            updates, state = jax.jit(lambda p, s: tx.update(None, s, p, residual_fn=_residual))(
                _params(x), state
            )
            # By hand: damped normal equations, then Nielsen's rule on rho.
            r, jac = _numpy_system(x)
            while True:
                d = np.linalg.solve(jac.T @ jac + lam * np.eye(3), -jac.T @ r)
                r_new, _ = _numpy_system(x + d)
                predicted = r @ r - np.sum((r + jac @ d) ** 2)
                rho = (r @ r - r_new @ r_new) / predicted
                if rho > 0:
                    lam, nu = lam * max(1 / 3, 1 - (2 * rho - 1) ** 3), 2.0
                    break
                lam, nu = lam * nu, 2 * nu
            np.testing.assert_allclose(_flat(updates), d, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(float(state.damping), lam, rtol=1e-9)
            np.testing.assert_allclose(float(state.value), r_new @ r_new, rtol=1e-9)
            x = x + d
        assert int(state.count) == 4 and int(state.rejections) == 0


def test_levenberg_marquardt_raises_the_damping_on_a_rejected_step():
    with jax.enable_x64(True):
        # A tiny damping from far away overshoots: the update must retry with a larger one.
        tx = levenberg_marquardt(1e-8)
        x = np.array([5.0, 3.0, -2.0])
        _, state = tx.update(None, tx.init(_params(x)), _params(x), residual_fn=_residual)
        assert int(state.evaluations) >= 1 and int(state.count) == 1
        r, _ = _numpy_system(x)
        assert float(state.value) < r @ r


def test_levenberg_marquardt_keeps_the_parameters_when_no_try_decreases():
    with jax.enable_x64(True):
        tx = levenberg_marquardt(1.0, max_tries=3)

        # At the minimum of a sum of squares nothing decreases it.
        def residual(p):
            return jnp.stack([p[0] - 1.0, p[1] + 2.0])

        x = jnp.array([1.0, -2.0])
        updates, state = tx.update(None, tx.init(x), x, residual_fn=residual)
        assert updates.tolist() == [0.0, 0.0]
        assert int(state.rejections) == 1 and int(state.count) == 0
        assert int(state.evaluations) == 3 and float(state.damping) == 1.0 * 2 * 4 * 8


@pytest.mark.parametrize("solver", ["svd", "parameters", "samples"])
def test_engd_step_matches_a_numpy_transcription(solver):
    with jax.enable_x64(True):
        tx = engd(grid=12, solver=solver)
        x = np.array([1.0, 0.3, 0.2])
        state = tx.init(_params(x))
        updates, state = tx.update(None, state, _params(x), residual_fn=_residual)
        r, jac = _numpy_system(x)
        d = -np.linalg.lstsq(jac, r, rcond=None)[0]
        steps = 0.5 ** np.arange(12)
        values = [np.sum(_numpy_system(x + s * d)[0] ** 2) for s in steps]
        best = int(np.argmin(values))
        np.testing.assert_allclose(_flat(updates), steps[best] * d, rtol=1e-8, atol=1e-12)
        assert float(state.learning_rate) == steps[best]
        np.testing.assert_allclose(float(state.value), values[best], rtol=1e-10)


@pytest.mark.parametrize(
    "make", [lambda: levenberg_marquardt(), lambda: levenberg_marquardt(solver="cg", cg_steps=4)]
)
def test_rosenbrock_as_residuals_converges_to_1e_10_in_float64(make):
    with jax.enable_x64(True):

        def residual(p):
            return jnp.stack([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

        tx = make()
        x = jnp.array([-1.2, 1.0])
        state = tx.init(x)
        step = jax.jit(lambda x, s: tx.update(None, s, x, residual_fn=residual))
        for _ in range(60):
            updates, state = step(x, state)
            x = optax.apply_updates(x, updates)
        assert x.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], rtol=0, atol=1e-10)
        assert float(state.value) < 1e-20


def test_engd_reaches_rosenbrock_minimum():
    with jax.enable_x64(True):

        def residual(p):
            return jnp.stack([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

        tx = engd()
        x, state = jnp.array([-1.2, 1.0]), tx.init(jnp.zeros(2))
        for _ in range(60):
            updates, state = tx.update(None, state, x, residual_fn=residual)
            x = optax.apply_updates(x, updates)
        np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], rtol=0, atol=1e-10)


def test_a_given_jacobian_is_used_and_agrees_with_forward_mode():
    with jax.enable_x64(True):
        calls = []

        def jacobian(p):
            calls.append(1)
            return jax.jacrev(_residual)(p)

        x = _params(np.array([1.0, 0.3, 0.2]))
        tx = levenberg_marquardt(0.1)
        given, _ = tx.update(None, tx.init(x), x, residual_fn=_residual, jacobian_fn=jacobian)
        built, _ = tx.update(None, tx.init(x), x, residual_fn=_residual)
        assert calls and jax.tree.map(lambda a: a.shape, given) == {"a": (), "bc": (2,)}
        np.testing.assert_allclose(_flat(given), _flat(built), rtol=1e-12)


def test_float32_stays_float32():
    tx = levenberg_marquardt()
    x = jnp.array([0.5, 0.5], jnp.float32)
    updates, state = tx.update(None, tx.init(x), x, residual_fn=lambda p: p**2 - 1.0)
    assert updates.dtype == jnp.float32 and isinstance(state, LeastSquaresState)


def test_memory_guard_names_the_sizes_and_the_way_out():
    tx = levenberg_marquardt(solver="parameters", max_bytes=10_000)
    x = jnp.zeros(40)
    with pytest.raises(ValueError, match=r"keeps a 100 x 40 Jacobian and a 40 x 40 matrix") as err:
        tx.update(None, tx.init(x), x, residual_fn=lambda p: jnp.tile(p, 3)[:100] - 1.0)
    assert "max_bytes=10000" in str(err.value) and "solver='cg'" in str(err.value)
    # The matrix-free solver has no such matrix.
    cg = levenberg_marquardt(solver="cg", max_bytes=10_000)
    cg.update(None, cg.init(x), x, residual_fn=lambda p: jnp.tile(p, 3)[:100] - 1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: levenberg_marquardt(0.0), "damping must be a positive finite number, got 0.0"),
        (lambda: levenberg_marquardt(solver="qr"), "solver must be one of"),
        (lambda: levenberg_marquardt(max_tries=0), "max_tries must be an int >= 1, got 0"),
        (lambda: engd(grid=0), "grid must be an int >= 1, got 0"),
        (lambda: engd(solver="cg"), "solver='cg' needs damping > 0"),
        (lambda: engd(damping=-1.0), "damping must be a finite number >= 0, got -1.0"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
