"""Trainer against a hand-written JAX + optax loop, fused steps, errors, multi-phase."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.nnx.balancers import ReLoBRaLo
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import DLRS
from jno.train import Trainer, TrainingDiverged, nn


def source(x):
    return (jnp.pi**2) * jnp.sin(jnp.pi * x[:, 0])


def second_derivative(f, x):
    """d2f/dx2 of a row-wise scalar network, by forward mode (independent of jno.ops)."""
    e = jnp.ones_like(x)
    first = lambda y: jax.jvp(lambda z: f(z)[:, 0], (y,), (e,))[1]
    return jax.jvp(first, (x,), (e,))[1]


def poisson_losses(net, batch):
    r = -second_derivative(net, batch["interior"]) - source(batch["interior"])
    return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(batch["boundary"]) ** 2)}


class Poisson1D(Trainer):
    def losses(self, net, batch):
        return poisson_losses(net, batch)


def make_net(seed=0, hidden=(16, 16)):
    return MLP(1, list(hidden), 1, rngs=nnx.Rngs(seed))


# The reference balancer and schedule, and evaluations of a trained network, run
# compiled: one compilation instead of one per eager op.
call = nnx.jit(lambda module, *args: module(*args))
losses_of = nnx.jit(poisson_losses)


def hand_loop(points, steps, lr=1e-2, balancer=None, schedule=None, tx=None):
    """Pure JAX + optax reference: same init, points, weights and schedule."""
    model = make_net()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = tx or optax.adam(lr)
    opt_state = tx.init(params)

    def loss_vec(p):
        m = nnx.merge(graphdef, p, rest)
        out = poisson_losses(m, points)
        return jnp.stack([out["pde"], out["bc"]])

    @jax.jit
    def grads_of(p, w):
        vec, vjp = jax.vjp(loss_vec, p)
        return vec, vjp(w)[0], jnp.sum(w * vec)

    @jax.jit
    def apply(g, opt_state, p, rate):
        updates, opt_state = tx.update(g, opt_state, p)
        return optax.apply_updates(p, jax.tree.map(lambda u: rate * u, updates)), opt_state

    totals = []
    vec_of, ones = jax.jit(loss_vec), jnp.ones(2)
    for step in range(steps):
        vec = vec_of(params)
        w = ones if balancer is None else call(balancer, vec)  # the balancer on its own
        vec, g, total = grads_of(params, w)
        totals.append(float(total))
        rate = 1.0 if schedule is None else call(schedule, step, vec)
        params, opt_state = apply(g, opt_state, params, rate)
    return params, np.array(totals)


def assert_params_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("variant", ["plain", "relobralo", "dlrs"])
def test_twenty_steps_equal_hand_written_loop(poisson1d_points, variant):
    net = nn(make_net())
    kwargs = {}
    ref_kwargs = {}
    if variant == "plain":
        net.optimizer(optax.adam(1e-2))
    elif variant == "relobralo":
        net.optimizer(optax.adam(1e-2))
        kwargs["balancer"] = ReLoBRaLo(2, expected_rho=0.5, seed=3)
        ref_kwargs["balancer"] = ReLoBRaLo(2, expected_rho=0.5, seed=3)
    else:
        net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=4))
        ref_kwargs["schedule"] = DLRS(lr0=1e-2, window=4)
        ref_kwargs["tx"] = optax.adam(1)
    trainer = Poisson1D(net, points=poisson1d_points, log_every=5, **kwargs)
    history = trainer.fit(20)
    ref_params, ref_totals = hand_loop(poisson1d_points, 20, **ref_kwargs)
    assert_params_close(nnx.state(net.module, nnx.Param), ref_params)
    # Logged loss/total is the mean of the per-step totals over each interval of 5.
    np.testing.assert_allclose(history["loss/total"], ref_totals.reshape(4, 5).mean(1), rtol=1e-4)
    np.testing.assert_array_equal(history.steps, [5, 10, 15, 20])
    if variant == "relobralo":
        w = np.stack([history["weight/pde"], history["weight/bc"]], 1)
        assert not np.allclose(w[-1], 1.0)
        # The trainer's balancer state is the reference balancer's after the same losses.
        np.testing.assert_allclose(
            w[-1], np.asarray(ref_kwargs["balancer"].last_weights[...]), rtol=1e-4
        )
    if variant == "dlrs":
        assert float(ref_kwargs["schedule"].lr[...]) == pytest.approx(history["lr"][-1], rel=1e-6)


def test_fused_steps_equal_one_dispatch_per_step(poisson1d_points):
    results = []
    for steps_per_call in (None, 1, 7):
        net = nn(make_net())
        net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=3))
        trainer = Poisson1D(
            net,
            points=poisson1d_points,
            balancer=ReLoBRaLo(2, seed=1),
            log_every=10,
            steps_per_call=steps_per_call,
        )
        history = trainer.fit(30)
        results.append((nnx.state(net.module, nnx.Param), history["loss/total"]))
    for params, totals in results[1:]:
        assert_params_close(params, results[0][0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(totals, results[0][1], rtol=1e-6)


def test_fit_continues_step_count_and_history(poisson1d_points):
    net = nn(make_net())
    net.optimizer(optax.adam(1e-2))
    trainer = Poisson1D(net, points=poisson1d_points, log_every=4)
    trainer.fit(6)
    history = trainer.fit(6)
    assert trainer.step == 12
    # The last step of every fit is logged, whatever log_every is.
    np.testing.assert_array_equal(history.steps, [4, 6, 8, 12])
    one_go = nn(make_net())
    one_go.optimizer(optax.adam(1e-2))
    Poisson1D(one_go, points=poisson1d_points, log_every=4).fit(12)
    assert_params_close(nnx.state(net.module, nnx.Param), nnx.state(one_go.module, nnx.Param))


def test_multi_phase_adam_then_lbfgs(poisson1d_points):
    finals = {}
    for second in ("adam", "lbfgs"):
        net = nn(make_net())
        net.optimizer(optax.adam(1e-2))
        trainer = Poisson1D(net, points=poisson1d_points, log_every=100, progress=False)
        trainer.fit(300)
        if second == "lbfgs":
            net.optimizer(optax.lbfgs())
        trainer.fit(100)
        assert trainer.step == 400
        assert trainer.history.steps.tolist() == [100, 200, 300, 400]
        out = losses_of(net.module, poisson1d_points)
        finals[second] = float(out["pde"] + out["bc"])
    # The second phase starts from the Adam parameters and L-BFGS converges much faster.
    assert finals["lbfgs"] < 0.1 * finals["adam"]


def test_poisson_1d_reaches_relative_error_below_one_percent(poisson1d_points):
    net = nn(make_net(hidden=(32, 32)))
    net.optimizer(optax.adam(1)).scale(jno.LearningRateSchedule.exponential(1e-2, 0.5, 500))
    trainer = Poisson1D(net, points=poisson1d_points, log_every=500)
    trainer.fit(2000)
    x = np.linspace(0, 1, 201, dtype=np.float32)[:, None]
    u = np.asarray(call(net.module, x))[:, 0]
    exact = np.sin(np.pi * x[:, 0])
    rel = float(np.linalg.norm(u - exact) / np.linalg.norm(exact))
    assert rel < 1e-2


class NaNAfter(Trainer):
    """Loss that turns NaN from step `bad` on (the step count is fed as a point set)."""

    def __init__(self, *args, bad, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad = bad

    def losses(self, net, batch):
        x = batch["x"]
        fit = jnp.mean((net(x)[:, 0] - x[:, 0]) ** 2)
        blow = jnp.where(jnp.mean(net(x)) > -1e9, jnp.nan, 0.0)
        return {"fit": fit, "bad": jnp.where(net.kernel[...][0, 0] > self.bad, blow, 0.0)}


def make_linear():
    net = nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    net.module.kernel[...] = jnp.zeros((1, 1))
    net.optimizer(optax.sgd(0.1))
    return net


def test_nonfinite_raise_names_step_and_term():
    net = make_linear()
    trainer = NaNAfter(net, points={"x": jnp.linspace(-1, 1, 8)[:, None]}, bad=0.3, log_every=50)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(100)
    # kernel grows by 0.1 * 2 * mean(x^2) * (1 - k) per step; find the first step k > 0.3.
    k, first_bad = 0.0, None
    mx2 = float(np.mean(np.linspace(-1, 1, 8) ** 2))
    for step in range(100):
        if k > 0.3:
            first_bad = step
            break
        k = k + 0.1 * 2 * mx2 * (1 - k)
    assert info.value.step == first_bad
    assert info.value.terms == ("bad",)
    assert trainer.step == first_bad
    assert float(net.module.kernel[...][0, 0]) == pytest.approx(k, rel=1e-5)


def test_nonfinite_skip_keeps_parameters_finite_and_counts():
    net = make_linear()
    trainer = NaNAfter(
        net,
        points={"x": jnp.linspace(-1, 1, 8)[:, None]},
        bad=0.3,
        log_every=50,
        on_nonfinite="skip",
    )
    history = trainer.fit(100)
    assert trainer.step == 100
    kernel = float(net.module.kernel[...][0, 0])
    assert np.isfinite(kernel) and kernel > 0.3
    assert history["skipped_steps"].sum() > 90


def test_errors_name_what_is_wrong(poisson1d_points):
    net = nn(make_net())
    with pytest.raises(RuntimeError, match="no optimizer"):
        Poisson1D(net, points=poisson1d_points).fit(1)
    net.optimizer(optax.adam(1e-3))
    with pytest.raises(ValueError, match="num_losses=3"):
        Poisson1D(net, points=poisson1d_points, balancer=ReLoBRaLo(3)).fit(1)
    bad_points = {"interior": jnp.ones((8, 2)), "boundary": jnp.ones((2, 1))}
    with pytest.raises(ValueError, match="'interior' have shape \\(8, 2\\)"):
        Poisson1D(net, points=bad_points).fit(1)

    class NonScalar(Trainer):
        def losses(self, net, batch):
            return {"pde": net(batch["interior"])[:, 0] ** 2}

    with pytest.raises(ValueError, match="'pde' must be a scalar, got shape \\(32,\\)"):
        NonScalar(net, points=poisson1d_points).fit(1)
    with pytest.raises(TypeError, match="jno.nn"):
        Poisson1D(make_net(), points=poisson1d_points)
    with pytest.raises(ValueError, match="log_every must be >= 1, got 0"):
        Poisson1D(net, points=poisson1d_points, log_every=0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        Poisson1D(net, points=poisson1d_points, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="'interior' must be an \\(n, d\\) array"):
        Poisson1D(net, points={"interior": jnp.ones(5)})


def test_changing_terms_is_an_error(poisson1d_points):
    class Changing(Trainer):
        extra = False

        def losses(self, net, batch):
            out = poisson_losses(net, batch)
            if self.extra:
                out["more"] = out["pde"]
            return out

    net = nn(make_net())
    net.optimizer(optax.adam(1e-2))  # the compiled step of the twenty-step test
    trainer = Changing(net, points=poisson1d_points)
    trainer.fit(1)
    assert trainer.term_book.term_names == ("pde", "bc")
    trainer.extra = True
    with pytest.raises(ValueError, match="must be the same every step"):
        # Abstractly, as inside the compiled step (no compilation of its eager ops).
        jax.eval_shape(
            lambda: trainer.term_book.losses(trainer.losses, [net.module], poisson1d_points)
        )
