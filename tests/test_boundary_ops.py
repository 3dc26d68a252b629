"""jno.ops.normal_derivative, neumann and robin against hand computations, on the
Taylor path and the autodiff path, with several outputs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno import ops
from jno.nnx import MLP


def u(x):  # grad u = (2 x y, x^2 + 3)
    return x[:, 0] ** 2 * x[:, 1] + 3 * x[:, 1]


X = jnp.array([[1.0, 2.0], [0.5, -1.0], [-2.0, 0.0]])
N = jnp.array([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
# du/dn by hand: (4, 4).(0.6, 0.8) = 5.6; (-1, 3.25).(1, 0) = -1; (0, 7).(0, -1) = -7
FLUX = [5.6, -1.0, -7.0]
VALUES = [8.0, -3.25, 0.0]


def test_normal_derivative_neumann_and_robin_by_hand():
    np.testing.assert_allclose(ops.normal_derivative(u, X, N), FLUX, rtol=1e-6)
    np.testing.assert_allclose(ops.neumann(u, X, N), FLUX, rtol=1e-6)
    np.testing.assert_allclose(ops.neumann(u, X, N, 1.0), np.subtract(FLUX, 1.0), rtol=1e-6)
    data = lambda x: x[:, 0]  # noqa: E731
    np.testing.assert_allclose(
        ops.neumann(u, X, N, data), np.subtract(FLUX, [1.0, 0.5, -2.0]), rtol=1e-6
    )
    robin = ops.robin(u, X, N, alpha=2.0, beta=-0.5, value=jnp.array([1.0, 2.0, 3.0]))
    expected = 2 * np.array(VALUES) - 0.5 * np.array(FLUX) - [1.0, 2.0, 3.0]
    np.testing.assert_allclose(robin, expected, rtol=1e-6)


def test_taylor_path_and_fields_agree_with_autodiff():
    net = jno.nn(MLP(2, [16], 2, rngs=nnx.Rngs(0)), fields=("a", "b"))
    x = jnp.array([[0.1, 0.2], [0.3, -0.4]])
    n = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    plain = lambda p: net.module(p)[:, 1]  # noqa: E731
    f = ops.fields(net, ("a", "b"))
    got = ops.normal_derivative(f, x, n, output="b")
    expected = ops.normal_derivative(plain, x, n, pointwise=False)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    robin = ops.robin(f["b"], x, n, alpha=1.0, beta=1.0)
    np.testing.assert_allclose(robin, plain(x) + expected, rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"normals must have the shape of x \(3, 2\)"):
        ops.normal_derivative(u, X, N[:2])
    with pytest.raises(ValueError, match="alpha and beta must not both be zero"):
        ops.robin(u, X, N, alpha=0.0, beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        ops.robin(u, X, N, alpha=1.0, beta=float("inf"))


def unit(x):
    return x / jnp.linalg.norm(x, axis=1, keepdims=True)


def test_neumann_and_robin_terms_evaluate_the_conditions():
    net = jno.nn(MLP(2, [8], 1, rngs=nnx.Rngs(0)))
    x = jnp.array([[0.6, 0.8], [-1.0, 0.0], [0.0, 1.0]])
    term = jno.terms.neumann(net, x, unit, 0.5, name="wall")
    np.testing.assert_allclose(
        term.values((net.module,), x), ops.neumann(net.module, x, unit(x), 0.5), rtol=1e-6
    )
    r = net.robin(x, unit(x), alpha=1.0, beta=2.0, value=lambda p: p[:, 1])
    expected = ops.robin(net.module, x, unit(x), alpha=1.0, beta=2.0, value=x[:, 1])
    np.testing.assert_allclose(r.values((net.module,), x), expected, rtol=1e-6)
    assert (term.name, r.name) == ("wall", "robin")
    with pytest.raises(ValueError, match="alpha and beta must not both be zero"):
        jno.terms.robin(net, x, unit, alpha=0, beta=0)


def test_a_neumann_condition_trains_to_its_solution():
    """u'' = 0 on [0, 1], u(0) = 0, u'(1) = 2 (outward normal +1): u = 2 x."""
    import optax

    net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(0.05))
    bc = net.residual(lambda u, x: u(x), jnp.zeros((1, 1)), name="bc")
    flux = net.neumann(jnp.ones((1, 1)), jnp.ones((1, 1)), 2.0, name="flux")
    crux = jno.core([bc, flux], progress=False)
    crux.solve(600)
    np.testing.assert_allclose(crux.eval(net, jnp.array([[0.0], [0.5], [1.0]]))[:, 0],
                               [0.0, 1.0, 2.0], atol=1e-3)  # fmt: skip
