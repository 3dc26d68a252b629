"""Exactly imposed conditions (jno.nnx.Constrained) and the jet of any function
(jno.nnx.networks.jets.lift): values and derivatives against jax.jacfwd / jax.hessian,
conditions to float rounding, the one-pass Taylor path kept."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno import ops
from jno.nnx import MLP, Constrained
from jno.nnx.networks._sharing import run_shared
from jno.nnx.networks.jets import Jet, lift

KEY = jax.random.key(0)


def phi(x):  # zero on the unit circle, positive inside
    return (1.0 - jnp.sum(x**2, axis=1)) / 2.0


def g(x):  # Dirichlet data extended inside
    return jnp.sin(x[:, 0]) * jnp.exp(x[:, 1])


def exact_derivatives(u, x):
    """Per-point gradient, Hessian and Laplacian of a scalar u by jax.jacfwd/hessian."""
    one = lambda p: u(p[None])[0, 0]  # noqa: E731
    grads = jax.vmap(jax.grad(one))(x)
    hess = jax.vmap(jax.hessian(one))(x)
    return grads, hess, jnp.trace(hess, axis1=1, axis2=2)


@pytest.mark.parametrize("jet_net", [True, False])
def test_derivatives_of_the_transform_match_autodiff(jet_net):
    with jax.enable_x64(True):
        mlp = MLP(2, [12, 12], 1, rngs=nnx.Rngs(0))
        inner = mlp if jet_net else nnx.Linear(2, 1, rngs=nnx.Rngs(1))
        u = Constrained.dirichlet(inner, phi, g)
        x = jax.random.uniform(KEY, (16, 2), jnp.float64, -0.7, 0.7)
        # Compiled: eagerly, each operation of the jets and of autodiff compiles alone.
        grads, hess, lap = jax.jit(lambda x: exact_derivatives(u, x))(x)

        def loss_parts(x):
            return (
                ops.grad(u, x),
                ops.laplacian(u, x),
                ops.partial2(u, x, 0, 1),
                ops.partial(u, x, 1),
            )

        got = jax.jit(lambda x: run_shared(loss_parts, x))(x)
        np.testing.assert_allclose(got[0], grads, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[1], lap, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[2], hess[:, 0, 1], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[3], grads[:, 1], rtol=1e-10, atol=1e-12)


def test_the_transform_stays_on_the_one_pass_taylor_path(monkeypatch):
    mlp = MLP(2, [8], 1, rngs=nnx.Rngs(0))
    passes = []
    forward = MLP.forward
    monkeypatch.setattr(MLP, "forward", lambda self, x: passes.append(type(x)) or forward(self, x))
    x = jnp.full((4, 2), 0.25)

    def count(u):
        passes.clear()
        # Traced once, as a loss is: the passes are the Python calls of forward.
        jax.jit(lambda x: run_shared(lambda x: (ops.laplacian(u, x), ops.grad(u, x), u(x)), x))(x)
        return list(passes)

    bare = count(mlp)
    assert bare.count(Jet) == 1  # laplacian, gradient and value from one jet pass
    assert count(Constrained.dirichlet(mlp, phi, g)) == bare  # and so with the transform


def test_dirichlet_data_hold_exactly_on_the_boundary():
    u = Constrained.dirichlet(MLP(2, [16], 3, rngs=nnx.Rngs(2)), phi, g)
    theta = jnp.linspace(0.0, 2 * jnp.pi, 50)
    x = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    values = u(x)
    assert values.shape == (50, 3)
    for k in range(3):  # every output column, to float32 rounding of phi on the circle
        np.testing.assert_allclose(values[:, k], g(x), atol=1e-6)
    assert u.satisfies == ("bc",) and u.out_features == 3


def test_initial_data_hold_exactly_with_their_space_derivatives():
    with jax.enable_x64(True):
        u0 = lambda x: -jnp.sin(jnp.pi * x[:, 0])  # noqa: E731
        u = Constrained.initial(MLP(2, [16, 16], 1, rngs=nnx.Rngs(3)), u0, time_axis=1, t0=0.5)
        s = jnp.linspace(-1.0, 1.0, 21)
        x = jnp.stack([s, jnp.full_like(s, 0.5)], axis=1)
        np.testing.assert_array_equal(u(x)[:, 0], u0(x))  # exactly, not to rounding

        def space_derivatives(x):
            return run_shared(lambda x: (ops.partial(u, x, 0), ops.partial2(u, x, 0, 0)), x)

        got = jax.jit(space_derivatives)(x)  # eagerly, every operation compiles alone
        np.testing.assert_allclose(got[0], -jnp.pi * jnp.cos(jnp.pi * s), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got[1], jnp.pi**2 * jnp.sin(jnp.pi * s), rtol=1e-12, atol=1e-12)
        # Away from t0 the network contributes: u is not u0 there.
        later = x.at[:, 1].set(1.0)
        assert float(jnp.max(jnp.abs(u(later)[:, 0] - u0(later)))) > 1e-3
    assert u.satisfies == ("ic",)


def test_lift_carries_a_general_input_jet():
    """The chain rule through lift with a non-identity input jet, against autodiff of
    the composition."""
    with jax.enable_x64(True):
        f = lambda p: jnp.stack([p[:, 0] * jnp.sin(p[:, 1]), p[:, 0] ** 3], axis=1)  # noqa: E731
        w = jnp.array([[1.0, 2.0], [-0.5, 0.3]])
        x = jnp.array([[0.2, 0.4], [0.7, -0.1]])

        @jax.jit  # one program: eagerly, every operation would compile on its own
        def both(x):
            seed = Jet.seed(x, second=((0, 0), (0, 1), (1, 1)), laplacian=True)
            inner = seed @ w  # a linear map of x: its first derivatives are rows of w
            jet = lift(f, inner)
            got = [jet.full(jet.first[0]), jet.full(jet.first[1])]
            got += [jet.full(jet.second[(0, 1)]), jet.full(jet.laplacian)]
            comp = lambda p: f(p[None] @ w)[0]  # noqa: E731
            return got, jax.vmap(jax.jacfwd(comp))(x), jax.vmap(jax.hessian(comp))(x)

        got, jac, hess = both(x)
        for i in range(2):
            np.testing.assert_allclose(got[i], jac[:, :, i], rtol=1e-12)
        np.testing.assert_allclose(got[2], hess[:, :, 0, 1], rtol=1e-12)
        lap = hess[:, :, 0, 0] + hess[:, :, 1, 1]
        np.testing.assert_allclose(got[3], lap, rtol=1e-12)


def test_bad_arguments_are_named():
    net = MLP(2, [4], 1, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="module must be an nnx.Module"):
        Constrained(lambda x: x, phi)
    with pytest.raises(TypeError, match="factor must be a function"):
        Constrained(net, 1.0)
    with pytest.raises(TypeError, match="offset must be a function"):
        Constrained(net, phi, 2.0)
    with pytest.raises(TypeError, match="satisfies must be a sequence"):
        Constrained(net, phi, satisfies="bc")
    with pytest.raises(ValueError, match="t0"):
        Constrained.initial(net, g, t0=float("nan"))


def test_a_problem_leaves_out_the_terms_the_network_satisfies():
    from jno.problems import Burgers1D

    mlp = MLP(2, [8], 1, rngs=nnx.Rngs(0))
    u0 = lambda x: -jnp.sin(jnp.pi * x[:, 0])  # noqa: E731
    trainer = Burgers1D(jno.nn(Constrained.initial(mlp, u0, time_axis=1)), progress=False)
    assert trainer.check() == ("pde", "bc")
    wrong = Burgers1D(jno.nn(Constrained(mlp, phi, satisfies=("wall",))), progress=False)
    with pytest.raises(ValueError, match=r"satisfies \['wall'\] exactly.*'pde', 'bc', 'ic'"):
        wrong.check()


@pytest.mark.parametrize(
    "name, satisfied",
    [
        ("Burgers1D", ("bc", "ic")),
        ("Poisson2D", ("bc",)),
        ("KleinGordon1D", ("ic",)),
        ("Helmholtz2D", ("bc",)),
    ],
)
def test_packaged_exact_conditions_hold_and_leave_the_losses(name, satisfied):
    import jno.problems as problems

    with jax.enable_x64(True):
        trainer = getattr(problems, name).default(hidden=[8], exact=True, progress=False)
        u = trainer.nets[0].module
        batch = {k: v.sample(jax.random.key(3)) for k, v in trainer.points.items()}
        residuals = jax.jit(lambda b: trainer.residuals(u, b))(batch)
        for term in satisfied:  # u, and u_t for Klein-Gordon's second initial condition
            parts = residuals[term] if isinstance(residuals[term], tuple) else (residuals[term],)
            assert max(float(jnp.max(jnp.abs(p))) for p in parts) < 1e-14
        losses = jax.eval_shape(lambda b: trainer.losses(u, b), batch)
        assert set(losses) == set(residuals) - set(satisfied)


def test_helmholtz_refuses_zero_boundary_values_for_a_non_integer_frequency():
    from jno.problems import Helmholtz2D

    assert Helmholtz2D.default(hidden=[8], exact=True, a2=3.0, progress=False).check() == ("pde",)
    with pytest.raises(ValueError, match=r"integer a1 and a2 only, got a1=1.5, a2=4.0"):
        Helmholtz2D.default(hidden=[8], exact=True, a1=1.5, progress=False)
    Helmholtz2D.default(hidden=[8], a1=1.5, progress=False)  # soft boundary values: fine
