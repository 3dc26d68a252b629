"""jno.ops: batched forward-mode derivatives against hand formulas and per-point JAX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jno import ops

RNG = np.random.default_rng(0)
X2 = jnp.asarray(RNG.uniform(-1.0, 1.0, size=(7, 2)), jnp.float32)
X3 = jnp.asarray(RNG.uniform(-1.0, 1.0, size=(6, 3)), jnp.float32)


def closed_2d(x):
    """u = sin(2x) * exp(y / 2)."""
    return jnp.sin(2.0 * x[:, 0]) * jnp.exp(0.5 * x[:, 1])


def closed_2d_hand(x):
    x = np.asarray(x, np.float64)
    s, c, e = np.sin(2 * x[:, 0]), np.cos(2 * x[:, 0]), np.exp(0.5 * x[:, 1])
    grad = np.stack([2 * c * e, 0.5 * s * e], axis=1)
    hxx, hxy, hyy = -4 * s * e, c * e, 0.25 * s * e
    hess = np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)
    return grad, hess


def closed_3d(x):
    """u = x^2 y^3 + sin(z) x, returned as (n, 1)."""
    return (x[:, 0] ** 2 * x[:, 1] ** 3 + jnp.sin(x[:, 2]) * x[:, 0])[:, None]


def closed_3d_hand(x):
    x0, x1, x2 = (np.asarray(x, np.float64)[:, k] for k in range(3))
    grad = np.stack([2 * x0 * x1**3 + np.sin(x2), 3 * x0**2 * x1**2, np.cos(x2) * x0], 1)
    h = np.zeros((x0.shape[0], 3, 3))
    h[:, 0, 0] = 2 * x1**3
    h[:, 1, 1] = 6 * x0**2 * x1
    h[:, 2, 2] = -np.sin(x2) * x0
    h[:, 0, 1] = h[:, 1, 0] = 6 * x0 * x1**2
    h[:, 0, 2] = h[:, 2, 0] = np.cos(x2)
    return grad, h


def _all_ops(u, x):
    """Every scalar operator at once, in one compiled function (fast to test)."""
    d = x.shape[1]

    @jax.jit
    def run(x):
        return {
            "grad": ops.grad(u, x),
            "hessian": ops.hessian(u, x),
            "laplacian": ops.laplacian(u, x),
            "partial": jnp.stack([ops.partial(u, x, i) for i in range(d)], 1),
            "partial2": jnp.stack(
                [jnp.stack([ops.partial2(u, x, i, j) for j in range(d)], 1) for i in range(d)], 1
            ),
        }

    return run(x)


@pytest.mark.parametrize(
    ("u", "hand", "x"), [(closed_2d, closed_2d_hand, X2), (closed_3d, closed_3d_hand, X3)]
)
def test_closed_form_derivatives(u, hand, x):
    g, h = hand(x)
    out = _all_ops(u, x)
    np.testing.assert_allclose(out["grad"], g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["hessian"], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["laplacian"], np.trace(h, axis1=1, axis2=2), atol=1e-5)
    np.testing.assert_allclose(out["partial"], g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["partial2"], h, atol=1e-5)


def test_output_shapes_and_negative_index():
    shapes = jax.eval_shape(lambda x: _all_ops(closed_3d, x), X3)
    assert shapes["grad"].shape == (6, 3)
    assert shapes["laplacian"].shape == (6,)
    assert shapes["hessian"].shape == (6, 3, 3)
    assert jax.eval_shape(lambda x: ops.partial2(closed_2d, x, 0, 1), X2).shape == (7,)
    neg, pos = jax.jit(lambda x: (ops.partial(closed_3d, x, -1), ops.partial(closed_3d, x, 2)))(X3)
    np.testing.assert_array_equal(neg, pos)


def test_n_by_1_and_flat_outputs_agree():
    flat = lambda x: closed_3d(x)[:, 0]
    run = jax.jit(
        lambda x: (
            ops.laplacian(flat, x) - ops.laplacian(closed_3d, x),
            ops.grad(flat, x) - ops.grad(closed_3d, x),
        )
    )
    for diff in run(X3):
        np.testing.assert_array_equal(diff, 0.0)


def _mlp_params(key, sizes):
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, k1, k2 = jax.random.split(key, 3)
        params.append(
            (jax.random.normal(k1, (a, b)) / np.sqrt(a), 0.3 * jax.random.normal(k2, (b,)))
        )
    return params


def _mlp(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


PARAMS = _mlp_params(jax.random.key(1), [3, 16, 16, 1])
VPARAMS = _mlp_params(jax.random.key(2), [3, 16, 3])


def test_mlp_against_per_point_jax():
    u = lambda x: _mlp(PARAMS, x)
    point = lambda p: _mlp(PARAMS, p[None])[0, 0]
    hess = jax.jit(jax.vmap(jax.hessian(point)))(X3)
    out = _all_ops(u, X3)
    np.testing.assert_allclose(out["grad"], jax.vmap(jax.grad(point))(X3), atol=1e-6)
    np.testing.assert_allclose(out["hessian"], hess, atol=1e-5)
    np.testing.assert_allclose(out["laplacian"], jnp.trace(hess, axis1=1, axis2=2), atol=1e-5)
    np.testing.assert_allclose(out["partial2"], hess, atol=1e-5)


def test_divergence_against_jacfwd_and_hand():
    v = lambda x: _mlp(VPARAMS, x)
    jac = jax.vmap(jax.jacfwd(lambda p: _mlp(VPARAMS, p[None])[0]))(X3)
    div = jax.jit(lambda x: ops.divergence(v, x))(X3)
    np.testing.assert_allclose(div, jnp.trace(jac, axis1=1, axis2=2), atol=1e-5)
    # v = (x*y, y^2, z*x): div = y + 2y + x
    field = lambda x: jnp.stack([x[:, 0] * x[:, 1], x[:, 1] ** 2, x[:, 2] * x[:, 0]], axis=1)
    x = np.asarray(X3)
    np.testing.assert_allclose(ops.divergence(field, X3), 3 * x[:, 1] + x[:, 0], atol=1e-6)


def test_nnx_module_callable_and_param_gradient():
    from flax import nnx

    from jno.nnx.networks.mlp import MLP

    net = MLP(2, [8, 8], 1, rngs=nnx.Rngs(3))

    def loss_ops(net):
        return jnp.mean(ops.laplacian(net, X2) ** 2)

    def loss_ref(net):
        hess = jax.vmap(jax.hessian(lambda p: net(p[None])[0, 0]))(X2)
        return jnp.mean(jnp.trace(hess, axis1=1, axis2=2) ** 2)

    g_ops = nnx.jit(nnx.grad(loss_ops))(net)
    g_ref = nnx.jit(nnx.grad(loss_ref))(net)
    for a, b in zip(jax.tree.leaves(g_ops), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert float(jnp.abs(jax.tree.leaves(g_ops)[0]).sum()) > 0


def test_pointwise_false_for_row_mixing_network():
    # Mixes rows through the batch mean: only per-point evaluation gives p0^2 * p1.
    u = lambda x: x[:, 0] ** 2 * jnp.mean(x[:, 1])
    x = np.asarray(X2)

    @jax.jit
    def run(x):
        return {
            "lap": ops.laplacian(u, x, pointwise=False),
            "grad": ops.grad(u, x, pointwise=False),
            "p01": ops.partial2(u, x, 0, 1, pointwise=False),
            "hess": ops.hessian(u, x, pointwise=False),
            "lap_rowwise": ops.laplacian(u, x),
        }

    out = run(X2)
    np.testing.assert_allclose(out["lap"], 2 * x[:, 1], atol=1e-6)
    g = np.stack([2 * x[:, 0] * x[:, 1], x[:, 0] ** 2], 1)
    np.testing.assert_allclose(out["grad"], g, atol=1e-6)
    np.testing.assert_allclose(out["p01"], 2 * x[:, 0], atol=1e-6)
    np.testing.assert_allclose(out["hess"][:, 0, 0], 2 * x[:, 1], atol=1e-6)
    # The default (row-wise) evaluation differentiates through the batch mean too.
    assert not np.allclose(out["lap_rowwise"], 2 * x[:, 1], atol=1e-3)


def test_pointwise_false_matches_default_on_row_wise_network():
    u = lambda x: _mlp(PARAMS, x)
    v = lambda x: _mlp(VPARAMS, x)

    @jax.jit
    def run(x):
        return (
            ops.laplacian(u, x, pointwise=False) - ops.laplacian(u, x),
            ops.divergence(v, x, pointwise=False) - ops.divergence(v, x),
        )

    for diff in run(X3):
        np.testing.assert_allclose(diff, 0.0, atol=1e-5)


def test_integer_points_are_promoted():
    u = lambda x: x[:, 0] ** 2 * x[:, 1]
    np.testing.assert_allclose(ops.laplacian(u, [[1, 2], [3, 4]]), [4.0, 8.0])


def test_errors():
    vec = lambda x: jnp.stack([x[:, 0], x[:, 1]], axis=1)
    with pytest.raises(ValueError, match=r"\(7, 2\)"):
        ops.laplacian(vec, X2)
    with pytest.raises(ValueError, match=r"\(7, 2\)"):
        ops.grad(vec, X2)
    with pytest.raises(ValueError, match=r"x must be a 2-D array.*\(3,\)"):
        ops.grad(closed_2d, jnp.ones(3))
    with pytest.raises(ValueError, match=r"i must be in \[-2, 2\).*got 2"):
        ops.partial(closed_2d, X2, 2)
    with pytest.raises(ValueError, match=r"j must be in .*got -3"):
        ops.partial2(closed_2d, X2, 0, -3)
    with pytest.raises(TypeError, match="i must be an int"):
        ops.partial(closed_2d, X2, 0.5)
    with pytest.raises(ValueError, match=r"v must return a vector field.*\(7, 3\)"):
        ops.divergence(lambda x: jnp.ones((7, 3)), X2)
    with pytest.raises(TypeError, match="u must be callable"):
        ops.laplacian(3.0, X2)
    with pytest.raises(TypeError, match="pointwise must be a bool"):
        ops.laplacian(closed_2d, X2, pointwise="no")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"activation": jnp.sin, "fourier_features": 3, "fourier_scale": 0.7},
        {"input_lo": [-1.0, 0.0, 2.0], "input_hi": [1.0, 0.5, 3.0]},
    ],
)
def test_mlp_forward_laplacian_equals_hessian_trace(kwargs):
    from flax import nnx

    from jno.nnx.networks.mlp import MLP

    net = MLP(3, [12, 12], 2, rngs=nnx.Rngs(3), **kwargs)
    x = jax.random.uniform(jax.random.PRNGKey(1), (7, 3), minval=-0.5, maxval=2.5)
    u, lap = net.forward_laplacian(x)
    np.testing.assert_allclose(u, net(x), rtol=1e-5, atol=1e-6)
    hess = jax.jit(jax.vmap(jax.hessian(lambda p: net(p[None])[0])))(x)  # (7, 2, 3, 3)
    for k in range(2):
        ref = np.trace(np.asarray(hess[:, k]), axis1=1, axis2=2)
        # float32: both sum terms of size max|ref|, so the error scales with it.
        np.testing.assert_allclose(lap[:, k], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_laplacian_uses_the_network_forward_laplacian_and_agrees_with_jvp_of_jvp():
    from flax import nnx

    import jno
    from jno.nnx.networks.mlp import MLP

    net = MLP(2, [16, 16], 1, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.PRNGKey(2), (9, 2))
    via_forward = jno.ops.laplacian(net, x)
    via_wrapper = jno.ops.laplacian(jno.nn(net), x)
    via_jvp = jno.ops.laplacian(lambda y: net(y), x)  # a plain callable: jvp of jvp
    np.testing.assert_allclose(via_forward, via_jvp, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(via_wrapper, via_forward)
    assert via_forward.shape == (9,)
