"""Periodic embeddings and random weight factorization: the equations, the jet path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jno import ops
from jno.nnx import MLP, FactorizedDense, ModifiedMLP, PeriodicEmbedding, PirateNet


def test_factorized_dense_starts_at_the_glorot_kernel():
    layer = FactorizedDense(3, 4, rngs=nnx.Rngs(7), mean=1.0, stddev=0.1)
    rngs = nnx.Rngs(7)  # the same draws in the same order: W0, then s
    w0 = nnx.initializers.glorot_normal()(rngs.params(), (3, 4), jnp.float32)
    s = 1.0 + 0.1 * jax.random.normal(rngs.params(), (4,), jnp.float32)
    np.testing.assert_allclose(layer.s[...], s, rtol=1e-6)
    np.testing.assert_allclose(layer.kernel, w0, rtol=1e-5)
    np.testing.assert_allclose(layer.v[...] * jnp.exp(layer.s[...]), layer.kernel)
    x = jnp.ones((2, 3))
    np.testing.assert_allclose(layer(x), x @ w0, rtol=1e-5)
    assert {type(v).__name__ for v in jax.tree.leaves(nnx.state(layer, nnx.Param))}


def test_periodic_embedding_formula_and_errors():
    emb = PeriodicEmbedding(2, axes=[1], periods=[0.5])
    x = jnp.array([[0.3, 0.1]])
    w = 2 * np.pi / 0.5
    np.testing.assert_allclose(emb(x), [[0.3, np.cos(w * 0.1), np.sin(w * 0.1)]], rtol=1e-6)
    trainable = PeriodicEmbedding(1, axes=[0], periods=2.0, trainable=True)
    assert isinstance(trainable.frequencies, nnx.Param)
    for bad in (dict(axes=[2], periods=1.0), dict(axes=[0, 0], periods=1.0),
                dict(axes=[0], periods=[0.0])):  # fmt: skip
        with pytest.raises(ValueError):
            PeriodicEmbedding(2, **bad)


def test_modified_mlp_takes_both_options():
    net = ModifiedMLP(2, [8, 8], 1, rngs=nnx.Rngs(0), periodic={0: 2.0},
                      weight_factorization=(0.5, 0.2))  # fmt: skip
    t = jnp.linspace(0.0, 1.0, 5)[:, None]
    left = jnp.concatenate([-jnp.ones_like(t), t], 1)
    np.testing.assert_allclose(net(left), net(left + jnp.array([2.0, 0.0])), atol=1e-6)
    assert isinstance(net.layers[0], FactorizedDense)


def test_periodic_networks_are_periodic_and_take_the_jet_path():
    network = MLP
    net = network(2, [8, 8], 1, rngs=nnx.Rngs(0), periodic={0: 2.0},
                  weight_factorization=True, input_lo=[-1.0, 0.0], input_hi=[1.0, 1.0])  # fmt: skip
    t = jnp.linspace(0.0, 1.0, 5)[:, None]
    left = jnp.concatenate([-jnp.ones_like(t), t], 1)
    right = jnp.concatenate([jnp.ones_like(t), t], 1)
    np.testing.assert_allclose(net(left), net(right), atol=1e-6)
    np.testing.assert_allclose(ops.partial(net, left, 0), ops.partial(net, right, 0), atol=1e-5)
    # The operators (jets) against jax.hessian of the plain forward pass.
    x = jax.random.uniform(jax.random.key(1), (6, 2), minval=-1.0)
    hess, lap, d01 = jax.jit(
        lambda x: (
            jax.vmap(jax.hessian(lambda p: net(p[None])[0, 0]))(x),
            ops.laplacian(net, x),
            ops.partial2(net, x, 0, 1),
        )
    )(x)  # one program, as in a training step
    np.testing.assert_allclose(lap, hess[:, 0, 0] + hess[:, 1, 1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d01, hess[:, 0, 1], rtol=1e-4, atol=1e-5)
    params = {
        type(v).__name__
        for v in jax.tree.leaves(
            nnx.state(net, nnx.Param), is_leaf=lambda v: isinstance(v, nnx.Variable)
        )
    }
    assert params == {"Param"}


def test_bad_weight_factorization_is_refused():
    with pytest.raises(TypeError, match="weight_factorization"):
        MLP(1, [4], 1, rngs=nnx.Rngs(0), weight_factorization="yes")
    with pytest.raises(TypeError, match="periodic"):
        MLP(1, [4], 1, rngs=nnx.Rngs(0), periodic=[0])


def _numpy_piratenet(net, x):
    """The PirateNet equations written out with numpy from the module's weights."""
    w = lambda layer: np.asarray(layer.kernel)  # noqa: E731
    b = lambda layer: np.asarray(layer.bias[...])  # noqa: E731
    lo, hi = np.asarray(net.input_lo[...]), np.asarray(net.input_hi[...])
    z = 2 * (x - lo) / (hi - lo) - 1
    proj = 2 * np.pi * z @ np.asarray(net.fourier.B[...])
    phi = np.concatenate([np.cos(proj), np.sin(proj)], 1)
    u, v = (
        np.tanh(phi @ w(net.gate_u) + b(net.gate_u)),
        np.tanh(phi @ w(net.gate_v) + b(net.gate_v)),
    )
    h = phi
    for alpha, (l1, l2, l3) in zip(np.asarray(net.alphas[...]), net.block_layers):
        f = np.tanh(h @ w(l1) + b(l1))
        z1 = f * u + (1 - f) * v
        g = np.tanh(z1 @ w(l2) + b(l2))
        z2 = g * u + (1 - g) * v
        h = alpha * np.tanh(z2 @ w(l3) + b(l3)) + (1 - alpha) * h
    return h @ w(net.output) + b(net.output)


def test_piratenet_follows_its_equations_and_the_jet_path():
    with jax.enable_x64(True):
        net = PirateNet(2, 8, 1, blocks=2, rngs=nnx.Rngs(0), input_lo=[-1.0, 0.0],
                        input_hi=[1.0, 1.0])  # fmt: skip
        net.alphas[...] = jnp.array([0.3, -0.2])  # a trained-looking network
        x = np.asarray(jax.random.uniform(jax.random.key(2), (5, 2), jnp.float64, -1.0))
        np.testing.assert_allclose(net(jnp.asarray(x)), _numpy_piratenet(net, x), rtol=1e-12)
        hess, lap = jax.jit(
            lambda x: (
                jax.vmap(jax.hessian(lambda p: net(p[None])[0, 0]))(x),
                ops.laplacian(net, x),
            )
        )(jnp.asarray(x))
        np.testing.assert_allclose(lap, hess[:, 0, 0] + hess[:, 1, 1], rtol=1e-10)


def test_piratenet_physics_informed_initialisation():
    with jax.enable_x64(True):
        net = PirateNet(1, 32, 1, blocks=3, rngs=nnx.Rngs(1), fourier_scale=1.0,
                        periodic={0: 2.0})  # fmt: skip
        x = jnp.linspace(-1.0, 1.0, 64)[:, None]
        y = x[:, 0] ** 2 * jnp.cos(jnp.pi * x[:, 0])  # Allen-Cahn's initial condition
        residual = net.fit_output(x, y)
        # While every alpha is zero the network is the least-squares fit itself.
        np.testing.assert_allclose(net(x)[:, 0] - y, residual[:, 0], atol=1e-12)
        assert float(jnp.max(jnp.abs(residual))) < 0.05  # |y| reaches 1
        net.alphas[...] = jnp.ones(3) * 0.1
        with pytest.raises(ValueError, match="alpha"):
            net.fit_output(x, y)
