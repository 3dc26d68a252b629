"""Residual-adaptive point sets (RAD, R3): the redraw rules and the trainer integration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.domain import Box, Interval
from jno.resampling import R3, RAD, RARD, rad_probabilities


def test_rad_probabilities_match_numpy():
    # Compiled, as in a redraw: one compilation per shape instead of one per op.
    probabilities = jax.jit(rad_probabilities)
    r = np.random.default_rng(0).normal(size=50).astype(np.float32)
    for k, c in [(1.0, 1.0), (2.0, 0.0), (0.5, 3.0)]:
        a = np.abs(r.astype(np.float64)) ** k
        expected = a / a.mean() + c
        expected /= expected.sum()
        np.testing.assert_allclose(probabilities(jnp.asarray(r), k, c), expected, rtol=1e-5)
    # A zero residual is the uniform distribution; NaN counts as zero.
    np.testing.assert_allclose(probabilities(jnp.zeros(4)), np.full(4, 0.25))
    p = probabilities(jnp.array([jnp.nan, 1.0]), 1.0, 1.0)
    np.testing.assert_allclose(p, [1 / 4, 3 / 4], rtol=1e-6)


def test_rad_puts_the_expected_share_of_points_on_a_residual_peak():
    # |r| = 10 on [0, 0.2), 1 elsewhere; k = c = 1. For a uniform pool the chance that a
    # draw lands on the peak is q = 0.2 (10/m + 1) / (0.2 (10/m + 1) + 0.8 (1/m + 1)),
    # m = 0.2 * 10 + 0.8 * 1 (0.457 against 0.2 for uniform points). With 100 points
    # from a pool of 4000 (2.5 %) sampling without replacement is close to with.
    rad = RAD(Interval(0.0, 1.0).interior(100), every=1, pool_factor=40, seed=3)
    residual = lambda x: jnp.where(x[:, 0] < 0.2, 10.0, 1.0)
    redraw = nnx.jit(lambda s: s.redraw(residual))
    shares = []
    for _ in range(20):
        redraw(rad)
        shares.append(float(jnp.mean(rad.points[...][:, 0] < 0.2)))
    m = 0.2 * 10 + 0.8 * 1
    q = 0.2 * (10 / m + 1) / (0.2 * (10 / m + 1) + 0.8 * (1 / m + 1))
    sigma = np.sqrt(q * (1 - q) / (100 * 20))  # binomial spread of the mean share
    assert abs(np.mean(shares) - q) < 4 * sigma + 0.01, (np.mean(shares), q)
    assert float(rad.replaced[...]) == 1.0
    # The logged pool residual is the mean |r| over the candidates: about m.
    assert abs(float(rad.pool_residual[...]) - m) < 0.3


def test_r3_keeps_exactly_the_points_above_the_mean_residual():
    r3 = R3(Box([0.0, 0.0], [1.0, 1.0]).interior(64), every=1, seed=1)
    before = np.asarray(r3.points[...])
    residual = lambda x: x[:, 0] * x[:, 1]
    nnx.jit(lambda s: s.redraw(residual))(r3)  # compiled, as in a training step
    after = np.asarray(r3.points[...])
    r = before[:, 0] * before[:, 1]
    keep = r > r.mean()
    np.testing.assert_array_equal(after[keep], before[keep])
    assert not np.any(np.all(after[~keep] == before[~keep], axis=1))  # fresh draws
    assert np.all((after >= 0) & (after <= 1))
    assert float(r3.replaced[...]) == pytest.approx(np.mean(~keep))


def test_bad_arguments_are_refused():
    box = Interval(0.0, 1.0)
    with pytest.raises(ValueError, match="resample=False"):
        RAD(box.interior(8, resample=True))
    with pytest.raises(TypeError, match="base must be a PointSet"):
        RAD(np.zeros((4, 1)))
    with pytest.raises(ValueError, match="every"):
        R3(box.interior(8), every=0)
    with pytest.raises(ValueError, match="k and c cannot both be 0"):
        RAD(box.interior(8), k=0.0, c=0.0)


class Burgers(jno.Trainer):
    def losses(self, net, batch):
        return {k: jnp.mean(jnp.square(v)) for k, v in self.residuals(net, batch).items()}

    def residuals(self, net, batch):
        x, xb = batch["interior"], batch["boundary"]
        u_x = jno.ops.partial(net, x, 0)
        pde = (
            jno.ops.partial(net, x, 1) + net(x)[:, 0] * u_x - 0.02 * jno.ops.partial2(net, x, 0, 0)
        )
        return {"pde": pde, "bc": net(xb)[:, 0] + jnp.sin(jnp.pi * xb[:, 0])}


def build(sampler, **kwargs):
    box = Box([-1.0, 0.0], [1.0, 1.0], time_axis=-1)
    net = jno.nn(jno.nnx.MLP(2, [8, 8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    points = {"interior": sampler(box.interior(64)), "boundary": box.boundary(16)}
    return Burgers(net, points=points, log_every=2, progress=False, **kwargs)


def test_the_trainer_redraws_on_due_steps_and_logs_it(tmp_path):
    trainer = build(lambda b: RAD(b, every=3, term="pde", seed=1))
    start = np.asarray(trainer.points["interior"].points[...])
    history = trainer.fit(6)
    # Redraws before steps 3 (and 6, which this fit does not run).
    replaced = history["tracker/points_interior_replaced"]
    np.testing.assert_array_equal(replaced, [0.0, 1.0, 1.0])  # logged at steps 2, 4, 6
    assert np.isnan(history["tracker/points_interior_pool_residual"][0])
    assert np.isfinite(history["tracker/points_interior_pool_residual"][1:]).all()
    now = np.asarray(trainer.points["interior"].points[...])
    assert not np.array_equal(now, start)
    assert now.shape == start.shape
    figure = trainer.plot_points("interior", str(tmp_path / "points.png"))
    assert figure.stat().st_size > 1000
    # The points move between blocks of quasi-Newton iterations too.
    trainer.nets[0].optimizer(optax.lbfgs())
    history = trainer.fit(2)  # L-BFGS from step 6: redrawn before its first step
    assert not np.array_equal(np.asarray(trainer.points["interior"].points[...]), now)
    assert history["tracker/points_interior_replaced"][-1] == 1.0
    assert np.isfinite(history["loss/total"]).all()


def test_a_resumed_run_redraws_exactly_as_the_uninterrupted_one(tmp_path):
    straight = build(lambda b: R3(b, every=2, term="pde"))
    straight.fit(6)
    first = build(lambda b: R3(b, every=2, term="pde"), checkpoint_dir=str(tmp_path))
    first.fit(3)
    resumed = build(lambda b: R3(b, every=2, term="pde"), checkpoint_dir=str(tmp_path))
    resumed.fit(until=6)
    np.testing.assert_array_equal(
        straight.points["interior"].points[...], resumed.points["interior"].points[...]
    )
    for a, b in zip(
        jax.tree.leaves(nnx.state(straight.nets[0].module)),
        jax.tree.leaves(nnx.state(resumed.nets[0].module)),
    ):
        np.testing.assert_array_equal(a, b)


def test_the_term_must_be_known():
    trainer = build(lambda b: RAD(b, every=2))  # "interior" is no loss name
    with pytest.raises(ValueError, match="term= one of"):
        trainer.fit(1)


def test_jno_core_terms_know_their_term():
    box = Box([-1.0, 0.0], [1.0, 1.0], time_axis=-1)
    net = jno.nn(jno.nnx.MLP(2, [8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    rad = RAD(box.interior(32), every=2, seed=2)
    pde = net.residual(lambda u, x: jno.ops.partial(u, x, 1) + u(x)[:, 0], rad, name="pde")
    bc = net.residual(lambda u, x: u(x), box.boundary(8), name="bc")
    history = jno.core([pde, bc], log_every=2, progress=False).solve(4)
    # The set is named after its term; redrawn before step 2 (logged after steps 1, 3).
    np.testing.assert_array_equal(history["tracker/points_pde_replaced"], [0.0, 1.0])


def test_packaged_problems_and_the_command_take_adaptive_points():
    from jno.app.experiment import build_trainer
    from jno.app.train import add_common_options, schedule_options

    trainer = build_trainer("burgers1d", points="r3", sampler_every=7, batch_size=16, hidden=[4])
    sampler = trainer.points["interior"]
    assert isinstance(sampler, R3) and sampler.every == 7 and sampler.term == "pde"
    assert trainer.points["boundary"].resample  # the other sets are unchanged
    fixed = build_trainer("poisson2d", points="fixed", batch_size=16, hidden=[4])
    assert not fixed.points["interior"].resample
    import argparse

    p = argparse.ArgumentParser()
    add_common_options(p, steps=10)
    options = schedule_options(p.parse_args(["burgers1d", "--points", "rad"]))
    assert options["points"] == "rad" and options["sampler_every"] == 500
    with pytest.raises(ValueError, match="points must be one of"):
        build_trainer("burgers1d", points="adaptive", hidden=[4])


def test_rard_fills_its_buffer_and_never_exceeds_capacity():
    rard = RARD(Interval(0.0, 1.0).interior(10), every=1, add=4, capacity=20, seed=5)
    first = np.asarray(rard.points[...])[:10]
    counts = []
    redraw = nnx.jit(lambda s: s.redraw(lambda x: jnp.where(x[:, 0] > 0.8, 5.0, 0.0)))
    for _ in range(5):
        redraw(rard)
        counts.append(int(rard.count[...]))
    assert counts == [14, 18, 20, 20, 20]
    live = np.asarray(rard.live[...])
    assert live.shape == (20,) and live.all()
    points = np.asarray(rard.points[...])
    np.testing.assert_array_equal(points[:10], first)  # the initial points stay
    # With c = 0 every added point sits where the residual is: x > 0.8.
    assert np.all(points[10:, 0] > 0.8)
    assert float(rard.replaced[...]) == 0.0  # the last refinement found no room


def test_a_rard_loss_is_the_mean_over_live_points():
    from jno.problems._residuals import mean_square

    r = jnp.array([1.0, 2.0, 3.0, 100.0])
    w = jnp.array([1.0, 1.0, 1.0, 0.0])
    assert float(mean_square(r, w)) == pytest.approx((1 + 4 + 9) / 3)
    net = jno.nn(jno.nnx.MLP(2, [8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-3))
    problem = jno.problems.Burgers1D(
        net,
        batch_size={"interior": 32, "boundary": 8, "initial": 8},
        adaptive_points=lambda b: RARD(b, every=2, add=8, capacity=48),
        log_every=2,
        progress=False,
    )
    problem.fit(3)
    rard = problem.points["interior"]
    assert int(rard.count[...]) == 40  # refined before step 2
    batch = {k: problem.points[k].sample(jax.random.key(0)) for k in ("boundary", "initial")}
    batch["interior"] = rard.points[...]
    loss, pde = jax.jit(
        lambda b: (problem.losses(net.module, b)["pde"], problem.residuals(net.module, b)["pde"])
    )(batch)
    live, pde = np.asarray(rard.live[...]), np.asarray(pde)
    assert live.sum() == 40
    np.testing.assert_allclose(loss, np.mean(pde[live] ** 2), rtol=1e-5)
    assert abs(float(loss) - float(np.mean(pde**2))) > 1e-6 * float(loss)
    problem.fit(3)
    assert int(rard.count[...]) == 48 and bool(rard.live[...].all())
