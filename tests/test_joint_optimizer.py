"""One optimizer over every network of a trainer: against a hand-written loop over the
tuple of parameters, and a joint quasi-Newton solve of a small inverse problem."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import ops
from jno.optim import QuasiNewtonState, ssbroyden

X = jnp.linspace(-1.0, 1.0, 16)[:, None]
Y = 0.5 - 2.0 * X[:, 0]


class Sum(jno.Trainer):
    def losses(self, nets, batch):
        a, b = nets
        x = batch["x"]
        return {"data": jnp.mean((a(x)[:, 0] + b(x)[:, 0] - Y) ** 2)}


def two_nets():
    return jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), name="a"), jno.nn(
        nnx.Linear(1, 1, rngs=nnx.Rngs(1)), name="b"
    )


# Not elementwise: the clip sees the norm of all the gradients together.
def clipped_sgd():
    return optax.chain(optax.clip_by_global_norm(0.05), optax.sgd(0.1))


def test_a_joint_optimizer_is_one_optimizer_over_the_tuple_of_parameters():
    a, b = two_nets()
    # Copies: nnx.state holds the live variables, which training updates.
    start = [jax.tree.map(jnp.array, nnx.state(n.module, nnx.Param)) for n in (a, b)]
    trainer = Sum([a, b], points={"x": X}, progress=False, log_every=5)
    spec = trainer.optimizer(clipped_sgd())
    assert trainer.trained.groups() == ((0, 1),) and trainer.config()["joint_optimizer"]
    trainer.fit(10)

    # The same with optax over the tuple (pa, pb), by hand.
    graphdefs = [nnx.split(n.module, nnx.Param)[0] for n in (a, b)]

    def loss(params):
        ma, mb = (nnx.merge(g, p) for g, p in zip(graphdefs, params))
        return jnp.mean((ma(X)[:, 0] + mb(X)[:, 0] - Y) ** 2)

    tx, params = clipped_sgd(), tuple(start)
    state = tx.init(params)
    for _ in range(10):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    for net, expected in zip((a, b), params):
        trained = jax.tree.leaves(nnx.state(net.module, nnx.Param))
        for x, y in zip(trained, jax.tree.leaves(expected)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)

    # Each network with its own clip: a different run (the check above can fail).
    c, d = two_nets()
    c.optimizer(clipped_sgd())
    d.optimizer(clipped_sgd())
    Sum([c, d], points={"x": X}, progress=False).fit(10)
    apart = np.asarray(nnx.state(c.module, nnx.Param)["kernel"][...])
    joint = np.asarray(nnx.state(a.module, nnx.Param)["kernel"][...])
    assert np.abs(apart - joint).max() > 1e-4

    # None returns to each network's own optimizer.
    assert spec.tx is not None
    assert trainer.optimizer(None) is None and trainer.trained.joint is None
    with pytest.raises(RuntimeError, match="network 'a' has no optimizer"):
        trainer.fit(1)


def test_a_joint_scale_is_logged_as_the_rate():
    a, b = two_nets()
    trainer = Sum([a, b], points={"x": X}, progress=False, log_every=2)
    trainer.optimizer(optax.sgd(1.0)).scale(jno.LearningRateSchedule.constant(0.05))
    history = trainer.fit(2)
    assert history["lr"].tolist() == [pytest.approx(0.05)]
    assert not any(tag.startswith("lr/") for tag in history)


class Coefficient(nnx.Module):
    """An unknown coefficient of the PDE, trained with the field network."""

    def __init__(self, value: float):
        self.value = nnx.Param(jnp.asarray(value, jnp.zeros(()).dtype))


class Sine(nnx.Module):
    """``u = a sin(w x) + b``: a small field model whose exact fit is known."""

    def __init__(self):
        dtype = jnp.zeros(()).dtype
        self.a = nnx.Param(jnp.asarray(0.6, dtype))
        self.w = nnx.Param(jnp.asarray(2.5, dtype))
        self.b = nnx.Param(jnp.asarray(0.1, dtype))

    def __call__(self, x):
        return (self.a * jnp.sin(self.w * x[:, 0]) + self.b)[:, None]


class Inverse(jno.Trainer):
    """Data of u = sin(pi x) and the PDE u'' + c u = 0 with c unknown (exact: pi^2)."""

    def losses(self, nets, batch):
        u, c = nets
        x = batch["x"]
        residual = ops.partial2(u, x, 0, 0) + c.value * u(x)[:, 0]
        data = u(x)[:, 0] - jnp.sin(jnp.pi * x[:, 0])
        return {"pde": jnp.mean(residual**2), "data": jnp.mean(data**2)}


def test_joint_quasi_newton_recovers_the_coefficient_of_an_inverse_problem():
    with jax.enable_x64(True):
        u, c = jno.nn(Sine(), name="u"), jno.nn(Coefficient(5.0), name="c")
        x = jnp.linspace(0.05, 0.95, 24, dtype=jnp.float64)[:, None]
        trainer = Inverse([u, c], points={"x": x}, progress=False, log_every=10)
        trainer.optimizer(ssbroyden())
        trainer.fit(60)
        coefficient = float(c.module.value[...])
        assert abs(coefficient - np.pi**2) / np.pi**2 < 1e-8
        assert abs(float(u.module.w[...]) - np.pi) < 1e-8
        state = trainer.trained.opt_states[0]
        # One quasi-Newton state over all four parameters: a 4 x 4 inverse Hessian.
        assert isinstance(state, QuasiNewtonState) and state.inv_hessian.shape == (4, 4)
