"""ModifiedMLP: forward vs numpy, one-pass Laplacian vs Hessian, init, training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jno import ops
from jno.nnx.networks.jets import Jet
from jno.nnx.networks.mlp import Constant
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.train import nn

X = np.random.default_rng(0).uniform(-1.0, 1.0, size=(5, 2)).astype(np.float32)


def _np(a):
    return np.asarray(a, np.float64)


def _numpy_forward(net, x, act=np.tanh):
    """Eq. (2.37)-(2.41) of Wang, Teng & Perdikaris, with the module's own weights."""
    x = _np(x)
    if net.input_lo is not None:
        lo, hi = _np(net.input_lo[...]), _np(net.input_hi[...])
        x = 2.0 * (x - lo) / (hi - lo) - 1.0
    if net.fourier is not None:
        z = 2 * np.pi * x @ _np(net.fourier.B[...])
        x = np.concatenate([np.cos(z), np.sin(z)], axis=1)

    def dense(layer, h):
        return h @ _np(layer.kernel[...]) + _np(layer.bias[...])

    layers = list(net.layers)
    h = act(dense(layers[0], x))
    if len(layers) > 2:
        u, v = act(dense(net.encoder_u, x)), act(dense(net.encoder_v, x))
        for layer in layers[1:-1]:
            z = act(dense(layer, h))
            h = (1.0 - z) * u + z * v
    return dense(layers[-1], h)


def _randomise_biases(net, seed):
    # Biases start at zero; give them values so the bias paths are exercised.
    rng = np.random.default_rng(seed)
    for layer in [*net.layers, net.encoder_u, net.encoder_v]:
        if layer is not None:
            layer.bias[...] = jnp.asarray(0.3 * rng.normal(size=layer.bias.shape), jnp.float32)


def _hessian_trace(net, x):
    """Trace of ``jax.hessian`` of each output at each point, compiled once."""
    graphdef, state = nnx.split(net)

    @jax.jit
    def trace(state, x):
        f = lambda q: nnx.merge(graphdef, state)(q[None])[0]
        return jax.vmap(lambda p: jnp.trace(jax.hessian(f)(p), axis1=1, axis2=2))(x)

    return trace(state, x)


def _apply(net, x):
    graphdef, state = nnx.split(net)
    return jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)


def _forward_laplacian(net, x):
    graphdef, state = nnx.split(net)
    return jax.jit(lambda s, x: nnx.merge(graphdef, s).forward_laplacian(x))(state, x)


def test_forward_matches_numpy_equations():
    net = ModifiedMLP(2, [16, 16, 16], 3, rngs=nnx.Rngs(0))
    _randomise_biases(net, 0)
    assert [layer.kernel.shape for layer in net.layers] == [(2, 16), (16, 16), (16, 16), (16, 3)]
    assert net.encoder_u.kernel.shape == net.encoder_v.kernel.shape == (2, 16)
    np.testing.assert_allclose(_apply(net, X), _numpy_forward(net, X), rtol=1e-5, atol=1e-5)


def test_forward_with_features_and_activation_matches_numpy():
    net = ModifiedMLP(
        2,
        [8, 8],
        2,
        jax.nn.sigmoid,
        rngs=nnx.Rngs(1),
        fourier_features=4,
        fourier_scale=0.5,
        input_lo=[0.0, -5.0],
        input_hi=[2.0, 5.0],
    )
    _randomise_biases(net, 1)
    assert net.layers[0].kernel.shape == net.encoder_u.kernel.shape == (8, 8)
    x = np.array([[0.0, -5.0], [2.0, 5.0], [1.3, 0.7]], np.float32)
    ref = _numpy_forward(net, x, act=lambda v: 1.0 / (1.0 + np.exp(-v)))
    np.testing.assert_allclose(_apply(net, x), ref, rtol=1e-5, atol=1e-5)


def test_single_width_is_a_plain_one_layer_net():
    net = ModifiedMLP(2, [8], 1, rngs=nnx.Rngs(2))
    assert net.encoder_u is None and net.encoder_v is None and len(net.layers) == 2
    _randomise_biases(net, 2)
    np.testing.assert_allclose(_apply(net, X), _numpy_forward(net, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "d, hidden, act, kwargs",
    [
        (1, [8, 8, 8], jnp.tanh, {}),
        (2, [8, 8, 8], jnp.sin, {"fourier_features": 4}),
        (3, [8, 8, 8], jnp.tanh, {"fourier_features": 2, "input_lo": 0.0, "input_hi": 2.0}),
    ],
)
def test_forward_laplacian_matches_hessian_trace(d, hidden, act, kwargs):
    net = ModifiedMLP(d, hidden, 2, act, rngs=nnx.Rngs(d), **kwargs)
    _randomise_biases(net, d)
    x = jnp.asarray(np.random.default_rng(d).uniform(-1.0, 1.0, size=(6, d)), jnp.float32)
    u, lap = _forward_laplacian(net, x)
    assert u.shape == lap.shape == (6, 2)
    np.testing.assert_allclose(u, _apply(net, x), rtol=1e-5, atol=1e-6)
    ref = _hessian_trace(net, x)
    assert float(jnp.max(jnp.abs(ref))) > 1e-2  # a nontrivial Laplacian
    np.testing.assert_allclose(lap, ref, rtol=1e-4, atol=1e-4)


def _jvp_laplacian(f, x):
    total = jnp.zeros(x.shape[0])
    for i in range(x.shape[1]):
        e = jnp.zeros_like(x).at[:, i].set(1.0)
        dfi = lambda y, e=e: jax.jvp(f, (y,), (e,))[1]
        total = total + jax.jvp(dfi, (x,), (e,))[1][:, 0]
    return total


class _Spy(ModifiedMLP):
    calls = 0

    def forward(self, x):
        if isinstance(x, Jet) and x.has_laplacian:
            type(self).calls += 1
        return super().forward(x)


def test_ops_laplacian_propagates_the_laplacian_through_the_network():
    net = _Spy(2, [8, 8, 8], 1, rngs=nnx.Rngs(6), input_lo=-2.0, input_hi=2.0)
    _randomise_biases(net, 6)
    graphdef, state = nnx.split(net)
    x = jnp.asarray(X)

    @jax.jit
    def both(state, x):
        net = nnx.merge(graphdef, state)
        ref = _jvp_laplacian(net, x)
        return ref, ops.laplacian(net, x), ops.laplacian(nn(net), x)

    _Spy.calls = 0
    ref, direct, wrapped = both(state, x)
    assert _Spy.calls == 2  # once directly, once through the jno.nn wrapper's .module
    assert float(jnp.max(jnp.abs(ref))) > 1e-2
    np.testing.assert_allclose(direct, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wrapped, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "d, hidden, out, ff",
    [(2, [16, 16, 16, 16], 1, None), (3, [8, 8], 2, 5), (2, [8], 1, None), (1, [4, 4, 4], 3, 2)],
)
def test_parameter_count_formula(d, hidden, out, ff):
    # abstract construction: shapes only, nothing is drawn or compiled
    net = nnx.eval_shape(lambda: ModifiedMLP(d, hidden, out, rngs=nnx.Rngs(0), fourier_features=ff))
    p = d if ff is None else 2 * ff
    w, depth = hidden[0], len(hidden)
    expected = (p + 1) * w * (3 if depth > 1 else 1) + (depth - 1) * (w + 1) * w + (w + 1) * out
    leaves = jax.tree.leaves(nnx.state(net, nnx.Param))
    assert sum(int(np.prod(a.shape)) for a in leaves) == expected


def test_params_and_constants_and_init():
    net = ModifiedMLP(
        2, [200, 200], 1, rngs=nnx.Rngs(7), fourier_features=4, input_lo=0.0, input_hi=1.0
    )
    n_leaves = len(jax.tree.leaves(nnx.state(net)))
    params = nnx.state(net, nnx.Param)
    consts = nnx.state(net, Constant)
    assert set(consts.keys()) == {"fourier", "input_lo", "input_hi"}
    assert "fourier" not in params and "input_lo" not in params
    assert len(jax.tree.leaves(params)) + len(jax.tree.leaves(consts)) == n_leaves
    assert len(jax.tree.leaves(params)) == 2 * (2 + 3)  # kernel + bias of 5 dense layers
    for layer in [net.encoder_u, net.encoder_v, *net.layers]:
        assert isinstance(layer.kernel, nnx.Param) and isinstance(layer.bias, nnx.Param)
        np.testing.assert_array_equal(layer.bias[...], 0.0)
    w = np.asarray(net.layers[1].kernel[...])  # Glorot normal: var = 2 / (fan_in + fan_out)
    np.testing.assert_allclose(w.var(), 2.0 / 400, rtol=0.03)
    assert abs(w.mean()) < 0.003
    assert not isinstance(net.fourier.B, nnx.Param)


def test_bad_arguments_name_the_argument():
    r = nnx.Rngs(0)
    with pytest.raises(ValueError, match=r"hidden widths must all be equal, got \[8, 16\]"):
        ModifiedMLP(2, [8, 16], 1, rngs=r)
    with pytest.raises(ValueError, match=r"hidden must list at least one width, got \[\]"):
        ModifiedMLP(2, [], 1, rngs=r)
    with pytest.raises(TypeError, match="hidden must be a sequence of widths.*got 8"):
        ModifiedMLP(2, 8, 1, rngs=r)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be >= 1, got 0"):
        ModifiedMLP(2, [8, 0], 1, rngs=r)
    with pytest.raises(TypeError, match="activation must be callable, got 'tanh'"):
        ModifiedMLP(2, [8], 1, "tanh", rngs=r)
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        ModifiedMLP(0, [8], 1, rngs=r)
    with pytest.raises(ValueError, match="fourier_features must be >= 1, got 0"):
        ModifiedMLP(2, [8], 1, rngs=r, fourier_features=0)
    with pytest.raises(ValueError, match="input_lo and input_hi must be given together"):
        ModifiedMLP(2, [8], 1, rngs=r, input_hi=1.0)
    with pytest.raises(TypeError, match="rngs must be an nnx.Rngs"):
        ModifiedMLP(2, [8], 1, rngs=0)


def test_seeded_construction_is_deterministic():
    kw = {"fourier_features": 3}
    a = ModifiedMLP(2, [8, 8], 1, rngs=nnx.Rngs(11), **kw)
    b = ModifiedMLP(2, [8, 8], 1, rngs=nnx.Rngs(11), **kw)
    c = ModifiedMLP(2, [8, 8], 1, rngs=nnx.Rngs(12), **kw)
    for la, lb in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a(X), b(X))
    assert not np.array_equal(a(X), c(X))
    assert not np.array_equal(a.encoder_u.kernel[...], a.encoder_v.kernel[...])


def test_training_fits_sine():
    net = ModifiedMLP(1, [16, 16, 16], 1, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1.0, 1.0, 64)[:, None]
    y = jnp.sin(jnp.pi * x)
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    tx = optax.adam(1e-2)

    def loss(p):
        return jnp.mean((nnx.merge(graphdef, p, rest)(x) - y) ** 2)

    @jax.jit
    def train(p):
        def step(_, carry):
            p, opt = carry
            g = jax.grad(loss)(p)
            upd, opt = tx.update(g, opt, p)
            return optax.apply_updates(p, upd), opt

        return jax.lax.fori_loop(0, 300, step, (p, tx.init(p)))[0]

    before = float(loss(params))
    after = float(loss(train(params)))
    assert np.isfinite(after) and after < before / 10.0
