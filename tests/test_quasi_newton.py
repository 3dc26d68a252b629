"""The strong-Wolfe line search, restarts and guards of the quasi-Newton optimizers,
their trainer phase (cached evaluations, exact resume) and the packaged recipe."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.optim import QuasiNewtonState, bfgs, ssbroyden, strong_wolfe


# The searches and updates run compiled, as inside a training step: one compilation per
# objective instead of one per eager op.
@jax.jit(static_argnums=0, static_argnames=("init_step", "curv_rtol"))
def _search(fun, x, direction, **kwargs):
    (value, aux), grad = jax.value_and_grad(fun, has_aux=True)(x)
    return strong_wolfe(fun, x, direction, value, grad, aux, **kwargs), value, grad


def test_line_search_meets_the_strong_wolfe_conditions():
    with jax.enable_x64(True):

        def rosenbrock(p):
            return 100.0 * (p[1] - p[0] ** 2) ** 2 + (1.0 - p[0]) ** 2, p[0]

        x = jnp.array([-1.2, 1.0])
        value_and_grad = jax.jit(jax.value_and_grad(rosenbrock, has_aux=True))
        (f0, _), g0 = value_and_grad(x)
        d = -g0  # a long steepest-descent step: the search has to zoom
        r, _, _ = _search(rosenbrock, x, d, init_step=1.0)
        step = float(r.step)
        assert not r.failed and 0 < step < 1
        (f, aux), g = value_and_grad(x + step * d)
        slope0 = float(g0 @ d)
        assert float(f) <= float(f0) + 1e-4 * step * slope0
        assert abs(float(g @ d)) <= 0.9 * abs(slope0)
        # The result carries the value, gradient and aux of the accepted point.
        np.testing.assert_allclose(r.value, f, rtol=1e-14)
        np.testing.assert_allclose(r.grad, g, rtol=1e-10)
        np.testing.assert_allclose(r.aux, aux, rtol=1e-14)


def test_line_search_grows_a_short_first_step():
    # phi(a) = (a - 10)^2 along d = 1 from 0: minimum at a = 10, first trial 1. With
    # c2 = 0.1 the slope must drop to 2 in magnitude: a step in [9, 11].
    fun = lambda x: ((x - 10.0) ** 2, None)
    r, _, _ = _search(fun, jnp.asarray(0.0), 1.0, init_step=1.0, curv_rtol=0.1)
    assert 9.0 <= float(r.step) <= 11.0 and int(r.evaluations) >= 4


def test_line_search_steps_back_from_nan_and_fails_on_an_ascent_direction():
    def fun(x):  # NaN beyond x = 0.3; minimum of the finite part at x = 0.2
        return jnp.where(x > 0.3, jnp.nan, (x - 0.2) ** 2), None

    r, _, _ = _search(fun, jnp.asarray(0.0), 1.0, init_step=1.0)
    assert not r.failed and 0 < float(r.step) <= 0.3 and np.isfinite(float(r.value))
    r, value, grad = _search(fun, jnp.asarray(0.0), -1.0, init_step=1.0)
    assert r.failed and float(r.step) == 0.0 and int(r.evaluations) == 0
    assert float(r.value) == float(value) and float(r.grad) == float(grad)


@jax.jit(static_argnums=(0, 1))
def _update(tx, f, params, state):
    value, grad = optax.value_and_grad_from_state(f)(params, state=state)
    updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
    return optax.apply_updates(params, updates), updates, state


def test_a_failed_line_search_restarts_from_steepest_descent_and_keeps_params():
    tx = ssbroyden()
    f = lambda p: jnp.sum((p - 1.0) ** 2 * jnp.array([1.0, 30.0]))
    params = jnp.zeros(2)
    state = tx.init(params)
    for _ in range(3):
        params, _, state = _update(tx, f, params, state)
    assert int(state.count) > 0 and int(state.restarts) == 0
    # The objective turns NaN everywhere but at the current point: no step decreases it.
    here = params
    g = lambda p: jnp.where(jnp.all(p == here), f(p), jnp.nan)
    new, updates, state = _update(tx, g, params, state)
    np.testing.assert_array_equal(new, params)
    assert np.all(np.asarray(updates) == 0)
    assert int(state.restarts) == 1 and int(state.count) == 0
    np.testing.assert_array_equal(state.inv_hessian, np.eye(2))


def _stalling_run(f, params, iterations):
    """``iterations`` compiled ssbroyden updates of ``f``, with the state after each."""
    tx = ssbroyden(max_linesearch_steps=20)

    def one(carry, _):
        params, state = carry
        value, grad = optax.value_and_grad_from_state(f)(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    return jax.lax.scan(one, (params, tx.init(params)), length=iterations)


def test_a_stalled_optimizer_skips_the_search_it_would_repeat_until_the_objective_changes():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x, y = jnp.asarray(rng.normal(size=(400, 8))), jnp.asarray(rng.normal(size=400))
        f = lambda p: jnp.mean((jnp.tanh(x @ p) - y) ** 2)
        (params, state), (path, states) = jax.jit(_stalling_run, static_argnums=(0, 2))(
            f, jnp.zeros(8), 150
        )
        stalled = np.asarray(states.stalled)
        assert stalled[-1], "the run should reach its rounding floor"
        first = int(np.argmax(stalled))
        # The search that stalls runs along steepest descent from the identity, fails,
        # and every later update skips it: no evaluation, no move, no new restart.
        assert int(states.evaluations[first]) > 0 and int(states.count[first]) == 0
        assert np.all(stalled[first:])
        assert np.all(np.asarray(states.evaluations[first + 1 :]) == 0)
        np.testing.assert_array_equal(
            np.asarray(path[first:]), np.broadcast_to(path[first], path[first:].shape)
        )
        assert np.all(np.asarray(states.restarts[first:]) == int(states.restarts[first]))
        # Skipping changes nothing: the search it replaces fails as the first one did.
        _, grad = jax.value_and_grad(f)(params)
        direction = -grad
        fun = lambda p: (f(p), None)
        again, _, _ = _search(
            fun, params, direction, init_step=min(1.0, 1.0 / float(jnp.linalg.norm(grad)))
        )
        assert bool(again.failed) and int(again.evaluations) > 0
        # A changed objective (a trainer's redraw) is searched again.
        g = lambda p: jnp.mean((jnp.tanh(x @ p) - y - 1e-3) ** 2)
        tx = ssbroyden(max_linesearch_steps=20)
        value, grad = jax.value_and_grad(g)(params)
        _, after = jax.jit(lambda p, s: tx.update(grad, s, p, value=value, grad=grad, value_fn=g))(
            params, state
        )
        assert int(after.evaluations) > 0 and not bool(after.stalled)


def test_a_nan_loss_never_reaches_the_parameters():
    tx = bfgs()
    params = jnp.ones(3)
    state = tx.init(params)
    nan = lambda p: jnp.sum(p) * jnp.nan
    new, updates, state = _update(tx, nan, params, state)
    np.testing.assert_array_equal(new, params)
    assert np.all(np.isfinite(np.asarray(state.inv_hessian)))


def test_the_memory_guard_names_the_numbers_and_the_alternatives():
    # 1 051 parameters; the guard needs only their shapes (no initialisation compiled).
    module = nnx.eval_shape(lambda: jno.nnx.MLP(2, [30, 30], 1, rngs=nnx.Rngs(0)))
    net = jno.nn(module)
    with pytest.raises(ValueError) as err:
        net.optimizer(ssbroyden(max_hessian_bytes=1 << 20))
    message = str(err.value)
    for part in ("1051 x 1051", "1051 parameters", "max_hessian_bytes=1048576", "lbfgs"):
        assert part in message
    assert net.optimizer_spec is None  # refused before anything is set
    net.optimizer(ssbroyden())  # 4.4 MB: within the default 2 GiB


class Poisson1D(jno.Trainer):
    def losses(self, net, batch):
        x = batch["x"]
        r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        ends = jnp.array([[0.0], [1.0]], x.dtype)
        return {"pde": jnp.mean(r**2), "bc": jnp.mean(net(ends) ** 2)}


def _poisson(**kwargs):
    kwargs.setdefault("log_every", 1)
    net = jno.nn(jno.nnx.MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    points = {"x": jnp.linspace(0, 1, 32)[:, None]}
    return Poisson1D(net, points=points, progress=False, **kwargs)


def test_trainer_phase_follows_the_plain_optimizer_loop():
    # The trainer starts each quasi-Newton step from the last line search's evaluation;
    # the iterates are those of the optimizer driven by hand on the same loss.
    with jax.enable_x64(True):
        trainer = _poisson()
        trainer.fit(50)
        net = trainer.nets[0]
        graphdef, params = nnx.split(net.module, nnx.Param)
        x = trainer.points["x"]

        def loss(p):
            return sum(trainer.losses(nnx.merge(graphdef, p), {"x": x}).values())

        tx = ssbroyden()

        # One compiled loop: the steps return the state on the trainer's mesh, tx.init
        # does not, so a compiled step would be compiled a second time.
        @jax.jit
        def iterate(params, state):
            step = lambda _, c: _update(tx, loss, *c)[::2]  # noqa: E731
            return jax.lax.fori_loop(0, 8, step, (params, state))

        params, _ = iterate(params, tx.init(params))
        net.optimizer(ssbroyden())
        trainer.fit(8)
        ours = nnx.state(net.module, nnx.Param)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(params)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        opt = trainer.trained.opt_states[0]
        assert isinstance(opt, QuasiNewtonState) and int(opt.count) > 0
        # The losses logged for the last step are those it started from.
        history = trainer.history
        logged = float(history["loss/pde"][-1]) + float(history["loss/bc"][-1])
        np.testing.assert_allclose(logged, history["loss/total"][-1], rtol=1e-12)


def test_a_resumed_quasi_newton_phase_continues_bit_for_bit(tmp_path):
    def run(directory, stop):
        trainer = _poisson(checkpoint_dir=str(directory), checkpoint_every=10)
        trainer.fit(until=20)
        trainer.nets[0].optimizer(ssbroyden())
        trainer.fit(until=stop)
        if stop == 50:
            return trainer
        # A new trainer (as after a crash) resumes the quasi-Newton phase from step 30.
        fresh = _poisson(checkpoint_dir=str(directory), checkpoint_every=10)
        assert fresh.latest_checkpoint_step() == 30
        fresh.nets[0].optimizer(ssbroyden())
        fresh.fit(until=50)
        return fresh

    with jax.enable_x64(True):
        whole = run(tmp_path / "whole", 50)
        split = run(tmp_path / "split", 30)
    for a, b in zip(
        jax.tree.leaves(nnx.state(whole.nets[0].module)),
        jax.tree.leaves(nnx.state(split.nets[0].module)),
    ):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(whole.trained.opt_states), jax.tree.leaves(split.trained.opt_states)
    ):
        np.testing.assert_array_equal(a, b)


def test_recipe_phases_and_resume(tmp_path):
    from jno.problems import Poisson2D

    small = dict(hidden=(4,), points=24, boundary_points=8, adam_steps=10, redraw_every=5)
    with jax.enable_x64(True):
        recipe = Poisson2D.recipes["quasi-newton"].replace(qn_steps=12, **small)
        whole = recipe.trainer(Poisson2D, seed=3, progress=False)
        recipe.run(whole)
        assert whole.step == 22
        assert isinstance(whole.trained.opt_states[0], QuasiNewtonState)
        # Interrupted in the Adam phase and resumed by a fresh trainer on the same
        # directory: the same parameters (a resume inside the quasi-Newton phase:
        # tests/test_cli.py).
        directory = str(tmp_path / "ckpt")
        for stop in (7, 22):  # the second run crosses from Adam into quasi-Newton
            # Each run writes its last step; the next one restores it.
            part = recipe.trainer(Poisson2D, seed=3, progress=False, checkpoint_dir=directory)
            recipe.run(part, until=stop)
            assert part.step == stop
        for a, b in zip(
            jax.tree.leaves(nnx.state(whole.nets[0].module)),
            jax.tree.leaves(nnx.state(part.nets[0].module)),
        ):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="jax_enable_x64"):
        recipe.trainer(Poisson2D)
    with pytest.raises(ValueError, match="method"):
        recipe.replace(method="newton")


def test_a_quasi_newton_phase_in_jno_core():
    # (u - 1)^2 + 3 (u - 2)^2 at x: minimum u = 1.75 everywhere for a linear network
    # whose input is constant; the placeholder weight 3 is a constant of every iteration.
    with jax.enable_x64(True):
        net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.adam(0.05))
        x = jnp.ones((8, 1))
        a = net.residual(lambda u, x: u(x)[:, 0] - 1.0, x, name="a")
        b = net.residual(lambda u, x: u(x)[:, 0] - 2.0, x, name="b")
        crux = jno.core([a + 3 * b], progress=False, log_every=1)
        crux.solve(5)
        net.optimizer(ssbroyden())
        history = crux.solve(10)
        assert crux.step == 15
        np.testing.assert_allclose(crux.eval(net, jnp.ones((1, 1)))[0, 0], 1.75, atol=1e-8)
        np.testing.assert_allclose(history["weight/b"][-1], 3.0)
        assert isinstance(crux.trained.opt_states[0], QuasiNewtonState)
