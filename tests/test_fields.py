"""Networks with several outputs: every operator on each field against jax.jacfwd /
jax.hessian, one Taylor pass for a three-field loss, fields in Trainer and jno.core."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import ops
from jno.nnx import MLP

X = np.random.default_rng(1).uniform(-0.9, 0.9, size=(7, 2)).astype(np.float32)


def three_field_net(seed: int = 3) -> MLP:
    net = MLP(2, [16, 16], 3, rngs=nnx.Rngs(seed), fourier_features=3)
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 16))
    for _, v in nnx.iter_graph(net):  # non-zero biases: sign mistakes show
        if isinstance(v, nnx.Linear):
            v.bias[...] = 0.3 * jax.random.normal(next(keys), v.bias.shape)
    return net


def reference(net, x):
    """Per point: value (m,), Jacobian (m, d), Hessians (m, d, d) by plain autodiff."""
    f = lambda p: net.forward(p[None])[0]
    jac = jax.vmap(jax.jacfwd(f))(x)
    hess = jax.vmap(jax.hessian(f))(x)
    return np.asarray(net.forward(x)), np.asarray(jac), np.asarray(hess)


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


def test_every_operator_on_every_field_matches_jacfwd_and_hessian():
    net = three_field_net()
    x = jnp.asarray(X)
    value, jac, hess = reference(net, x)
    assert np.abs(hess).max() > 1e-2  # a non-trivial check
    U = ops.fields(net, ("u", "v", "p"))

    @jax.jit
    def every(x):
        out = {}
        for k, f in enumerate(U):
            out[k] = {
                "value": f(x),
                "grad": ops.grad(f, x),
                "lap": ops.laplacian(net, x, output=k),
                "hess": ops.hessian(f, x),
                "d1": ops.partial(U, x, 1, output=f.name),
                "d01": ops.partial2(jno.nn(net), x, 0, 1, output=k),
            }
        return out

    out = every(x)
    for k in range(3):
        close(out[k]["value"], value[:, k])
        close(out[k]["grad"], jac[:, k, :])
        close(out[k]["lap"], np.trace(hess[:, k], axis1=1, axis2=2))
        close(out[k]["hess"], hess[:, k])
        close(out[k]["d1"], jac[:, k, 1])
        close(out[k]["d01"], hess[:, k, 0, 1])


def test_the_autodiff_path_takes_fields_too():
    net = three_field_net()
    plain = lambda x: net.forward(x)  # no jets: the per-point autodiff path
    x = jnp.asarray(X)
    _, jac, hess = reference(net, x)
    close(ops.partial(plain, x, 0, output=2), jac[:, 2, 0])
    close(ops.laplacian(ops.fields(plain, 3)[1], x), np.trace(hess[:, 1], axis1=1, axis2=2))
    close(ops.laplacian(net, x, output=1, pointwise=False), np.trace(hess[:, 1], axis1=1, axis2=2))
    close(ops.divergence(plain, x, outputs=(0, 1)), jac[:, 0, 0] + jac[:, 1, 1])


def test_divergence_of_chosen_outputs():
    net = three_field_net()
    x = jnp.asarray(X)
    _, jac, _ = reference(net, x)
    U = ops.fields(net, ("u", "v", "p"))
    close(ops.divergence(U, x, outputs=("u", "v")), jac[:, 0, 0] + jac[:, 1, 1])
    close(ops.divergence(net, x, outputs=(2, 0)), jac[:, 2, 0] + jac[:, 0, 1])
    with pytest.raises(ValueError, match="one output per coordinate \\(2"):
        ops.divergence(U, x, outputs=("u",))
    with pytest.raises(TypeError, match="vector field, got the single field"):
        ops.divergence(U.u, x)


def test_field_errors_name_the_argument():
    net = three_field_net()
    x = jnp.asarray(X)
    with pytest.raises(ValueError, match="one scalar per point.*pass output=k"):
        ops.laplacian(net, x)
    with pytest.raises(ValueError, match="output=3 but u returns shape \\(7, 3\\)"):
        ops.laplacian(net, x, output=3)
    with pytest.raises(ValueError, match="output=5 but u returns shape \\(7, 3\\)"):
        ops.partial(lambda y: net.forward(y), x, 0, output=5)
    with pytest.raises(ValueError, match="output must be >= 0, got -1"):
        ops.grad(net, x, output=-1)
    with pytest.raises(ValueError, match="is the field Field\\('u', index=0\\) already"):
        ops.grad(ops.fields(net, ("u", "v", "p")).u, x, output=1)
    with pytest.raises(TypeError, match="output='p' names a field"):
        ops.grad(net, x, output="p")
    with pytest.raises(KeyError, match="no field 'q'"):
        ops.fields(net, ("u", "v", "p"))["q"]
    with pytest.raises(ValueError, match="field names must differ"):
        ops.fields(net, ("u", "u", "p"))
    with pytest.raises(ValueError, match="fields names 2 outputs \\['u', 'v'\\]"):
        jno.nn(net, fields=("u", "v"))


def navier_stokes(U, x, nu=0.05):
    """Steady incompressible Navier-Stokes: momentum (x, y) and continuity."""
    u, v, p = U
    ux, uy = ops.partial(u, x, 0), ops.partial(u, x, 1)
    vx, vy = ops.partial(v, x, 0), ops.partial(v, x, 1)
    mx = u(x) * ux + v(x) * uy + ops.partial(p, x, 0) - nu * ops.laplacian(u, x)
    my = u(x) * vx + v(x) * vy + ops.partial(p, x, 1) - nu * ops.laplacian(v, x)
    return jnp.stack([mx, my, ux + vy], axis=1)


class _Counting(MLP):
    """Records each jet it propagates: (first-derivative axes, second pairs, laplacian?)."""

    jets: list = []

    def forward(self, x):
        if isinstance(x, jno.nnx.Jet):
            _Counting.jets.append((sorted(x.first), sorted(x.second), x.has_laplacian))
        return super().forward(x)


def test_one_taylor_pass_carries_every_field_of_a_three_field_loss():
    net = _Counting(2, [12, 12], 3, rngs=nnx.Rngs(0))
    x = jnp.asarray(X)
    U = ops.fields(net, ("u", "v", "p"))
    _Counting.jets = []
    separate = navier_stokes(U, x)
    assert len(_Counting.jets) > 3  # each operator alone: a pass each
    _Counting.jets = []
    shared = ops.share_derivatives(navier_stokes)(U, x)
    assert _Counting.jets == [([0, 1], [], True)]  # one pass: first derivatives, Laplacian
    close(shared, separate)
    value, jac, hess = reference(net, x)
    lap = np.trace(hess, axis1=2, axis2=3)
    mx = value[:, 0] * jac[:, 0, 0] + value[:, 1] * jac[:, 0, 1] + jac[:, 2, 0] - 0.05 * lap[:, 0]
    close(shared[:, 0], mx)
    close(shared[:, 2], jac[:, 0, 0] + jac[:, 1, 1])


def test_a_trainer_and_jno_core_hand_the_losses_the_fields():
    x = jnp.asarray(X)

    def make():
        net = jno.nn(three_field_net(5), fields=("u", "v", "p"))
        net.optimizer(optax.adam(1e-3))
        return net

    class NS(jno.Trainer):
        def losses(self, U, batch):
            assert [f.name for f in U] == ["u", "v", "p"]
            return {"pde": jnp.mean(navier_stokes(U, batch["x"]) ** 2)}

    a, b = make(), make()
    trainer = NS(a, points={"x": x}, progress=False, log_every=5)
    crux = jno.core(
        [b.residual(lambda U, x: navier_stokes(U, x), x, name="pde")], progress=False, log_every=5
    )
    h1, h2 = trainer.fit(5), crux.solve(5)
    np.testing.assert_allclose(h1["loss/pde"], h2["loss/pde"], rtol=1e-5)
    first = float(jnp.mean(navier_stokes(ops.fields(three_field_net(5), ("u", "v", "p")), x) ** 2))
    assert first > 0 and float(h1["loss/pde"][-1]) < first
    for p1, p2 in zip(jax.tree.leaves(nnx.state(a.module)), jax.tree.leaves(nnx.state(b.module))):
        np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-7)
