"""jno.nnx.networks.mlp: forward pass against numpy, initialisation, fixed Fourier matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jno.nnx.networks.mlp import MLP, Constant, FourierFeatures

X = np.random.default_rng(0).uniform(-1.0, 1.0, size=(5, 2)).astype(np.float32)


def _numpy_forward(net, x, activation=np.tanh):
    x = np.asarray(x, np.float64)
    if net.input_lo is not None:
        lo, hi = np.asarray(net.input_lo[...]), np.asarray(net.input_hi[...])
        x = 2.0 * (x - lo) / (hi - lo) - 1.0
    if net.fourier is not None:
        z = 2 * np.pi * x @ np.asarray(net.fourier.B[...], np.float64)
        x = np.concatenate([np.cos(z), np.sin(z)], axis=1)
    layers = list(net.layers)
    for k, layer in enumerate(layers):
        x = x @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...])
        if k < len(layers) - 1:
            x = activation(x)
    return x


def test_default_mlp_matches_numpy():
    net = MLP(2, [64, 64, 64, 64], 1, rngs=nnx.Rngs(0))
    y = net(X)
    assert y.shape == (5, 1)
    assert len(net.layers) == 5
    assert [layer.kernel.shape for layer in net.layers] == [(2, 64)] + [(64, 64)] * 3 + [(64, 1)]
    np.testing.assert_allclose(y, _numpy_forward(net, X), rtol=1e-5, atol=1e-6)


def test_activation_and_vector_output():
    net = MLP(2, [8, 8], 3, jax.nn.relu, rngs=nnx.Rngs(1))
    # nonzero biases, so the bias path is checked too
    for layer in net.layers:
        layer.bias[...] = 0.1 * jnp.ones_like(layer.bias[...])
    ref = _numpy_forward(net, X, activation=lambda v: np.maximum(v, 0.0))
    np.testing.assert_allclose(net(X), ref, rtol=1e-5, atol=1e-6)
    assert net(X).shape == (5, 3)


def test_glorot_normal_variance_and_zero_bias():
    net = MLP(300, [500], 200, rngs=nnx.Rngs(2))
    w = np.asarray(net.layers[0].kernel[...])
    assert abs(w.mean()) < 0.003
    np.testing.assert_allclose(w.var(), 2.0 / (300 + 500), rtol=0.03)
    w_out = np.asarray(net.layers[1].kernel[...])
    np.testing.assert_allclose(w_out.var(), 2.0 / (500 + 200), rtol=0.03)
    for layer in net.layers:
        np.testing.assert_array_equal(layer.bias[...], 0.0)


def test_fourier_features_formula_and_scale():
    ff = FourierFeatures(3, 400, 2.5, rngs=nnx.Rngs(3))
    b = np.asarray(ff.B[...], np.float64)
    assert b.shape == (3, 400) and ff.out_features == 800
    np.testing.assert_allclose(b.std(), 2.5, rtol=0.05)
    assert abs(b.mean()) < 0.15
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    z = 2 * np.pi * x.astype(np.float64) @ b
    np.testing.assert_allclose(ff(x), np.concatenate([np.cos(z), np.sin(z)], 1), atol=2e-4)


def test_mlp_with_fourier_and_standardisation_matches_numpy():
    net = MLP(
        2,
        [8, 8],
        1,
        rngs=nnx.Rngs(4),
        fourier_features=4,
        fourier_scale=0.5,
        input_lo=[0.0, -5.0],
        input_hi=[2.0, 5.0],
    )
    assert net.layers[0].kernel.shape == (8, 8)
    x = np.array([[0.0, -5.0], [2.0, 5.0], [1.3, 0.7]], np.float32)
    np.testing.assert_allclose(net(x), _numpy_forward(net, x), rtol=1e-4, atol=1e-5)


def test_standardisation_maps_bounds_to_unit_box():
    plain = MLP(2, [8, 8], 1, rngs=nnx.Rngs(5))
    scaled = MLP(2, [8, 8], 1, rngs=nnx.Rngs(5), input_lo=[0.0, 10.0], input_hi=[4.0, 20.0])
    np.testing.assert_array_equal(scaled.input_lo[...], [0.0, 10.0])
    # same seed -> same weights; the scaled net sees 2*(x - lo)/(hi - lo) - 1
    x = np.array([[0.0, 10.0], [4.0, 20.0], [1.0, 12.5]], np.float32)
    x_unit = np.array([[-1.0, -1.0], [1.0, 1.0], [-0.5, -0.5]], np.float32)
    np.testing.assert_allclose(scaled(x), plain(x_unit), rtol=1e-6, atol=1e-6)
    # scalar bounds broadcast to every input
    s = MLP(2, [8, 8], 1, rngs=nnx.Rngs(0), input_lo=-2.0, input_hi=2.0)
    np.testing.assert_array_equal(s.input_hi[...], [2.0, 2.0])


def test_fixed_arrays_are_not_params_and_not_trained():
    net = MLP(2, [8, 8], 1, rngs=nnx.Rngs(6), fourier_features=4, input_lo=0.0, input_hi=1.0)
    params = nnx.state(net, nnx.Param)
    assert "fourier" not in params and "input_lo" not in params
    consts = nnx.state(net, Constant)
    assert set(consts.keys()) == {"fourier", "input_lo", "input_hi"}
    assert not isinstance(net.fourier.B, nnx.Param)

    b0 = np.asarray(net.fourier.B[...]).copy()
    k0 = np.asarray(net.layers[0].kernel[...]).copy()
    opt = nnx.Optimizer(net, optax.sgd(0.1), wrt=nnx.Param)

    @nnx.jit
    def step(net, opt):
        grads = nnx.grad(lambda m: jnp.mean(m(X) ** 2 + m(X)))(net)
        opt.update(net, grads)
        return grads

    assert "fourier" not in step(net, opt)
    np.testing.assert_array_equal(net.fourier.B[...], b0)
    assert not np.array_equal(net.layers[0].kernel[...], k0)


def test_determinism_per_seed():
    a = MLP(2, [8, 8], 1, rngs=nnx.Rngs(7), fourier_features=4)
    b = MLP(2, [8, 8], 1, rngs=nnx.Rngs(7), fourier_features=4)
    c = MLP(2, [8, 8], 1, rngs=nnx.Rngs(8), fourier_features=4)
    for la, lb in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a(X), b(X))
    assert not np.array_equal(a.fourier.B[...], c.fourier.B[...])
    assert not np.array_equal(a(X), c(X))


def test_works_under_jit_and_split_merge():
    net = MLP(2, [8, 8], 1, rngs=nnx.Rngs(9), fourier_features=4, input_lo=-1.0, input_hi=1.0)
    graphdef, state = nnx.split(net)
    y = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, X)
    np.testing.assert_allclose(y, net(X), rtol=1e-6)


def test_validation_errors():
    r = nnx.Rngs(0)
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        MLP(0, [8], 1, rngs=r)
    with pytest.raises(ValueError, match="out_features must be >= 1, got -1"):
        MLP(2, [8], -1, rngs=r)
    with pytest.raises(ValueError, match=r"hidden must list at least one width, got \[\]"):
        MLP(2, [], 1, rngs=r)
    with pytest.raises(TypeError, match="hidden must be a sequence of widths.*got 64"):
        MLP(2, 64, 1, rngs=r)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be >= 1, got 0"):
        MLP(2, [8, 0], 1, rngs=r)
    with pytest.raises(TypeError, match=r"hidden\[0\] must be an int, got 8.0"):
        MLP(2, [8.0], 1, rngs=r)
    with pytest.raises(TypeError, match="activation must be callable"):
        MLP(2, [8], 1, "tanh", rngs=r)
    with pytest.raises(ValueError, match="fourier_features must be >= 1, got 0"):
        MLP(2, [8], 1, rngs=r, fourier_features=0)
    with pytest.raises(ValueError, match="fourier_scale must be finite and > 0, got 0"):
        MLP(2, [8], 1, rngs=r, fourier_features=4, fourier_scale=0.0)
    with pytest.raises(ValueError, match="scale must be finite and > 0, got inf"):
        FourierFeatures(2, 4, float("inf"), rngs=r)
    with pytest.raises(ValueError, match="given together"):
        MLP(2, [8], 1, rngs=r, input_lo=0.0)
    with pytest.raises(ValueError, match="input_lo must be < input_hi"):
        MLP(2, [8], 1, rngs=r, input_lo=[0.0, 1.0], input_hi=[1.0, 1.0])
    with pytest.raises(ValueError, match="input_hi must be a number or have length in_features=2"):
        MLP(2, [8], 1, rngs=r, input_lo=0.0, input_hi=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="input_lo must be finite"):
        MLP(2, [8], 1, rngs=r, input_lo=[0.0, np.nan], input_hi=1.0)
    with pytest.raises(TypeError, match="rngs must be an nnx.Rngs"):
        MLP(2, [8], 1, rngs=0)
