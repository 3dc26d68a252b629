"""Taylor-mode derivatives: jets against jax.hessian / jax.jacfwd, and shared passes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import ops
from jno.nnx.networks.jets import Jet, concatenate, elementwise
from jno.nnx.networks.mlp import MLP, JetModule
from jno.nnx.networks.modified_mlp import ModifiedMLP

X = np.random.default_rng(0).uniform(-0.8, 0.9, size=(6, 3)).astype(np.float32)

NETS = {
    "mlp": lambda: MLP(3, [16, 16, 16], 1, rngs=nnx.Rngs(1)),
    "mlp-fourier-bounds": lambda: MLP(
        3,
        [16, 16],
        1,
        rngs=nnx.Rngs(2),
        fourier_features=5,
        fourier_scale=0.5,
        input_lo=[-1.0, -1.0, -2.0],
        input_hi=[1.0, 2.0, 1.0],
    ),  # fmt: skip
    "mlp-sin": lambda: MLP(3, [12, 12], 1, activation=jnp.sin, rngs=nnx.Rngs(3)),
    "mlp-gelu": lambda: MLP(3, [12, 12], 1, activation=jax.nn.gelu, rngs=nnx.Rngs(4)),
    "modified": lambda: ModifiedMLP(
        3,
        [12, 12, 12],
        1,
        rngs=nnx.Rngs(5),
        fourier_features=4,
        input_lo=-1.0,
        input_hi=1.0,
    ),  # fmt: skip
}


def _randomise_biases(net, seed):
    # Zero biases (the default) hide sign mistakes in the bias handling.
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 64))
    for _, v in nnx.iter_graph(net):
        if isinstance(v, nnx.Linear):
            v.bias[...] = 0.3 * jax.random.normal(next(keys), v.bias.shape)


def _reference(net, x):
    """Per-point value, gradient and Hessian with jax.jacfwd / jax.hessian."""
    f = lambda p: net.forward(p[None])[0, 0]  # plain forward, no jets
    grad, hess = jax.jit(lambda x: (jax.vmap(jax.grad(f))(x), jax.vmap(jax.hessian(f))(x)))(x)
    return net.forward(x)[:, 0], np.asarray(grad), np.asarray(hess)


def _close(a, b, scale):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * max(1.0, scale))


@pytest.mark.parametrize("kind", list(NETS))
def test_every_operator_matches_jax_hessian(kind):
    net = NETS[kind]()
    _randomise_biases(net, 7)
    x = jnp.asarray(X)
    value, grad, hess = _reference(net, x)
    scale = float(np.abs(hess).max())
    assert scale > 1e-3 and float(np.abs(grad).max()) > 1e-3  # a non-trivial check

    # The operators in one compiled function (as in a training step).
    @jax.jit
    def every_operator(x):
        out = {"grad": ops.grad(net, x), "lap": ops.laplacian(net, x)}
        out["hess"] = ops.hessian(net, x)
        out["wrapped_lap"] = ops.laplacian(jno.nn(net), x)  # through jno.nn's .module
        for i in range(3):
            out[f"d{i}"] = ops.partial(net, x, i)
            for j in range(3):
                out[f"d{i}{j}"] = ops.partial2(net, x, i, j)
        return out

    out = every_operator(x)
    _close(out["grad"], grad, scale)
    _close(out["lap"], np.trace(hess, axis1=1, axis2=2), scale)
    _close(out["wrapped_lap"], out["lap"], scale)
    _close(out["hess"], hess, scale)
    for i in range(3):
        _close(out[f"d{i}"], grad[:, i], scale)
        for j in range(3):
            _close(out[f"d{i}{j}"], hess[:, i, j], scale)
    np.testing.assert_allclose(net(x)[:, 0], value, rtol=1e-6, atol=1e-6)


def test_divergence_of_a_vector_valued_network_matches_jacfwd():
    net = MLP(3, [16, 16], 3, rngs=nnx.Rngs(9), fourier_features=3)
    _randomise_biases(net, 9)
    x = jnp.asarray(X)
    jac, div = jax.jit(
        lambda x: (
            jax.vmap(jax.jacfwd(lambda p: net.forward(p[None])[0]))(x),
            ops.divergence(net, x),
        )
    )(x)
    np.testing.assert_allclose(div, np.trace(jac, axis1=1, axis2=2), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="one scalar per point"):
        ops.laplacian(net, x)


def test_float64_jets_match_to_float64_precision():
    with jax.enable_x64(True):
        net = MLP(2, [16, 16], 1, rngs=nnx.Rngs(0), fourier_features=4, input_lo=0.0, input_hi=2.0)
        x = jnp.asarray(np.random.default_rng(0).uniform(0, 2, (5, 2)))
        h, lap = jax.jit(
            lambda x: (
                jax.vmap(jax.hessian(lambda p: net.forward(p[None])[0, 0]))(x),
                ops.laplacian(net, x),
            )
        )(x)
        assert lap.dtype == jnp.float64 and net.fourier.B[...].dtype == jnp.float64
        assert net.layers[0].kernel[...].dtype == jnp.float64
        err = float(jnp.max(jnp.abs(lap - jnp.trace(h, axis1=1, axis2=2))))
        assert err < 1e-10 * float(jnp.max(jnp.abs(h))), err


def test_jet_algebra_product_rule_and_concatenate():
    # f(x) = [sin(a.x) * tanh(b.x), (a.x)^2 - 3 / 2]: products, sums, scalings, concat.
    a = jnp.array([[0.7], [-1.3]])
    b = jnp.array([[2.0], [0.4]])

    def f(x):
        za, zb = x @ a, x @ b
        prod = elementwise(jnp.sin, za) * elementwise(jnp.tanh, zb)
        return concatenate([prod, za * za - 3.0 / 2.0, 2.0 * (1.0 - zb) / 4.0])

    x = jnp.array([[0.3, -0.4], [1.1, 0.2]])

    @jax.jit  # one program each, as in a training step
    def jet_parts(x):
        jet = f(Jet.seed(x, first=(0, 1), second=((1, 0), (1, 1)), laplacian=True))
        parts = {"value": jet.value, "lap": jet.full(jet.laplacian)}
        parts.update({f"d{i}": jet.full(jet.first[i]) for i in range(2)})
        parts.update({f"d{i}{j}": jet.full(jet.second[(i, j)]) for i, j in ((0, 1), (1, 1))})
        return parts

    @jax.jit
    def reference(x):
        out = []
        for k in range(3):
            fk = lambda p, k=k: f(p[None])[0, k]  # noqa: E731
            out.append((jax.vmap(fk)(x), jax.vmap(jax.grad(fk))(x), jax.vmap(jax.hessian(fk))(x)))
        return out

    jet = jet_parts(x)
    for k, (value, grad, hess) in enumerate(reference(x)):
        np.testing.assert_allclose(jet["value"][:, k], value, rtol=1e-6)
        for i in range(2):
            np.testing.assert_allclose(jet[f"d{i}"][:, k], grad[:, i], atol=1e-6)
        np.testing.assert_allclose(jet["d01"][:, k], hess[:, 0, 1], atol=1e-6)
        np.testing.assert_allclose(jet["d11"][:, k], hess[:, 1, 1], atol=1e-6)
        np.testing.assert_allclose(jet["lap"][:, k], hess[:, 0, 0] + hess[:, 1, 1], atol=1e-6)


def test_jets_of_different_kinds_do_not_combine():
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="different derivatives"):
        Jet.seed(x, first=(0,)) + Jet.seed(x, first=(1,))
    with pytest.raises(ValueError, match="Laplacian"):
        Jet.seed(x, first=(0, 1)) * Jet.seed(x, laplacian=True)


class _Counting(MLP):
    """Counts the jets propagated through the network while tracing."""

    jets: list = []

    def forward(self, x):
        if isinstance(x, Jet):
            type(self).jets.append((sorted(x.first), sorted(x.second), x.has_laplacian))
        return super().forward(x)


def _burgers(u, x, nu=0.01):
    u_x = ops.partial(u, x, 0)
    return ops.partial(u, x, 1) + u(x)[:, 0] * u_x - nu * ops.partial2(u, x, 0, 0)


def test_shared_run_propagates_one_jet_per_network_and_points():
    net = _Counting(2, [8, 8], 1, rngs=nnx.Rngs(0))
    x = jnp.asarray(X[:, :2])
    y = jnp.asarray(X[:, 1:])
    _Counting.jets = []
    plain = _burgers(net, x)
    assert len(_Counting.jets) == 3  # each operator alone

    def loss(net, x, y):
        return _burgers(net, x), ops.laplacian(net, y), net(y)

    _Counting.jets = []
    shared, lap, value = ops.share_derivatives(loss)(net, x, y)
    # Real run: one jet for (net, x) with u_x, u_t, u_xx; one for (net, y).
    assert _Counting.jets == [([0, 1], [(0, 0)], False), ([0, 1], [], True)]
    np.testing.assert_allclose(shared, plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lap, ops.laplacian(net, y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, net(y), rtol=1e-6)


def test_shared_run_gradients_equal_separate_operators():
    net = MLP(2, [8, 8], 1, rngs=nnx.Rngs(0))
    x = jnp.asarray(X[:, :2])
    graphdef, params = nnx.split(net)

    def loss(p, share):
        fn = lambda m: jnp.mean(_burgers(m, x) ** 2)
        fn = ops.share_derivatives(fn) if share else fn
        return fn(nnx.merge(graphdef, p))

    g_shared = jax.jit(jax.grad(lambda p: loss(p, True)))(params)
    g_plain = jax.jit(jax.grad(lambda p: loss(p, False)))(params)
    for a, b in zip(jax.tree.leaves(g_shared), jax.tree.leaves(g_plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_unforeseen_request_is_computed_correctly():
    # The recording run asks for u_x only; the real run (a different Python path)
    # asks for u_xx too: it is served by a jet of its own, with the right values.
    net = _Counting(2, [8], 1, rngs=nnx.Rngs(1))
    x = jnp.asarray(X[:, :2])
    runs = []

    def loss(net, x):
        runs.append(None)
        u_x = ops.partial(net, x, 0)
        return u_x + (ops.partial2(net, x, 0, 0) if len(runs) == 2 else 0.0)

    out = ops.share_derivatives(loss)(net, x)
    np.testing.assert_allclose(out, ops.partial(net, x, 0) + ops.partial2(net, x, 0, 0), rtol=1e-5)


def test_a_jet_made_inside_a_nested_trace_is_not_reused_outside_it():
    net = MLP(2, [8], 1, rngs=nnx.Rngs(2))
    x = jnp.asarray(X[:, :2])

    def loss(net, x):
        inner = jax.lax.cond(True, lambda: ops.laplacian(net, x), lambda: jnp.zeros(6))
        return inner + 2.0 * ops.laplacian(net, x)

    out = jax.jit(ops.share_derivatives(loss))(net, x)
    np.testing.assert_allclose(out, 3.0 * ops.laplacian(net, x), rtol=1e-5, atol=1e-6)


def test_a_custom_jet_module_gets_the_fast_path():
    class Poly(JetModule):  # u = (x0 + 2 x1)^3
        def __init__(self):
            self.w = nnx.Param(jnp.array([[1.0], [2.0]]))

        def forward(self, x):
            h = x @ self.w[...]
            return h * h * h

    x = jnp.array([[1.0, 0.5], [0.0, -1.0]])
    s = x[:, 0] + 2 * x[:, 1]
    np.testing.assert_allclose(ops.laplacian(Poly(), x), 6 * s * 5, rtol=1e-6)
    np.testing.assert_allclose(ops.partial2(Poly(), x, 0, 1), 6 * s * 2, rtol=1e-6)


def test_trainer_shares_the_pass_and_matches_a_hand_written_loop():
    """A Burgers Trainer subclass: one jet per point set, same trajectory as plain optax."""
    rng = np.random.default_rng(3)
    xi = jnp.asarray(rng.uniform(-1, 1, (64, 2)), jnp.float32)
    xb = jnp.asarray(rng.uniform(-1, 1, (8, 2)), jnp.float32)

    class Burgers(jno.Trainer):
        def losses(self, net, batch):
            r = _burgers(net, batch["interior"])
            return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}

    _Counting.jets = []
    net = jno.nn(_Counting(2, [8, 8], 1, rngs=nnx.Rngs(0)))
    graphdef, params0 = nnx.split(net.module)
    params0 = jax.tree.map(jnp.array, params0)  # a copy: fit updates the module
    net.optimizer(optax.adam(1e-2))
    trainer = Burgers(net, points={"interior": xi, "boundary": xb}, log_every=5, progress=False)
    trainer.fit(5)
    assert ([0, 1], [(0, 0)], False) in _Counting.jets
    assert all(j == ([0, 1], [(0, 0)], False) or j == ([], [], False) for j in _Counting.jets)

    tx = optax.adam(1e-2)

    def loss(p):
        m = nnx.merge(graphdef, p)
        return jnp.mean(_burgers(m, xi) ** 2) + jnp.mean(m(xb) ** 2)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, u), s

    p, s = params0, tx.init(params0)
    for _ in range(5):
        p, s = step(p, s)
    got = nnx.state(net.module, nnx.Param)
    for a, b in zip(
        jax.tree.leaves(got), jax.tree.leaves(nnx.state(nnx.merge(graphdef, p), nnx.Param))
    ):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_packaged_burgers_problem_propagates_one_joint_jet_for_its_residual():
    _Counting.jets = []
    net = jno.nn(_Counting(2, [8, 8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    problem = jno.problems.Burgers1D(
        net, batch_size={"interior": 64, "boundary": 8, "initial": 8}, progress=False
    )
    problem.fit(1)
    # u, u_x, u_t and u_xx of the residual in one pass; values alone elsewhere.
    joint = ([0, 1], [(0, 0)], False)
    assert joint in _Counting.jets
    assert all(j in (joint, ([], [], False)) for j in _Counting.jets), _Counting.jets


def test_core_terms_share_one_jet_per_network_and_point_set():
    rng = np.random.default_rng(4)
    xi = jnp.asarray(rng.uniform(-1, 1, (32, 2)), jnp.float32)
    xb = jnp.asarray(rng.uniform(-1, 1, (8, 2)), jnp.float32)
    _Counting.jets = []
    net = jno.nn(_Counting(2, [8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    pde = net.residual(_burgers, xi, name="pde")
    # A second term on the same points: its u_xx joins the same pass.
    smooth = net.residual(lambda u, x: ops.partial2(u, x, 0, 0), xi, name="smooth")
    bc = net.residual(lambda u, x: u(x), xb, name="bc")
    jno.core([pde, 0.1 * smooth, bc], progress=False).solve(1)
    joint = ([0, 1], [(0, 0)], False)
    assert joint in _Counting.jets
    assert all(j in (joint, ([], [], False)) for j in _Counting.jets), _Counting.jets
