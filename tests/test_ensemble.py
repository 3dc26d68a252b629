"""Ensembles: members trained together equal members trained alone; structure checks,
statistics, TensorBoard runs, checkpoints and divergence per member."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.nnx import CausalWeights, ReLoBRaLo
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import DLRS
from jno.problems import Burgers1D
from jno.resampling import RAD
from jno.train import MemberDiverged, Trainer, ensemble

SEEDS = (0, 1, 2, 3)


def burgers(seed, **kwargs):
    """Burgers with a stateful balancer and schedule, resampled boundary points, RAD
    on the PDE points and causal weights: every kind of per-member state."""
    trainer = Burgers1D.default(
        seed=seed,
        hidden=[8, 8],
        batch_size={"interior": 32, "boundary": 8, "initial": 8},
        balancer=ReLoBRaLo(3, seed=seed),
        causal=CausalWeights(4, epsilons=(0.1, 1.0)),
        adaptive_points=lambda base: RAD(base, every=4, pool_factor=2, seed=seed),
        progress=False,
        log_every=3,
        **kwargs,
    )
    trainer.nets[0].optimizer(optax.adam(1.0)).scale(DLRS(lr0=3e-3, window=3))
    return trainer


def params(trainer):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(trainer.nets[0].module, nnx.Param))]


class Solo(dict):
    """Seed -> that member trained on its own for 10 steps, trained on first use."""

    def __missing__(self, seed):
        trainer = burgers(seed)
        trainer.fit(10)
        self[seed] = trainer
        return trainer


@pytest.fixture(scope="module")
def alone():
    return Solo()


@pytest.fixture(scope="module")
def together():
    """The four members in one program, two side by side, the pairs one after the
    other (``lax.map`` over ``vmap``)."""
    ens = ensemble(burgers, seeds=SEEDS, members_per_batch=2)
    ens.fit(10)
    return ens


def check_members(ens, alone, tol):
    history = ens.history
    assert ens.step == 10 and history.steps.tolist() == [3, 6, 9, 10]
    for k, seed in enumerate(ens.seeds):
        solo, member = alone[seed], ens.members[k]
        assert member.step == 10
        tags = ("loss/total", "loss/pde", "weight/ic", "lr", "tracker/causal_epsilon", "error/u")
        for tag in tags:
            np.testing.assert_allclose(
                history.members[k][tag], solo.history[tag], rtol=tol, atol=tol, err_msg=tag
            )
        for a, b in zip(params(member), params(solo)):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        np.testing.assert_allclose(
            member.points["interior"].points[...], solo.points["interior"].points[...],
            rtol=tol, atol=tol,
        )  # fmt: skip
    # Different seeds: different draws, different trajectories.
    assert not np.allclose(history["loss/total"][0], history["loss/total"][1])


def test_side_by_side_members_follow_their_solo_trajectories(alone, together):
    # XLA may fuse the vectorised program differently: float tolerance.
    check_members(together, alone, 2e-5)


@pytest.mark.default_xla  # exact equality of two programs
def test_members_one_after_the_other_are_their_solo_runs_bit_for_bit(alone):
    ens = ensemble(burgers, seeds=SEEDS[:2], members_per_batch=1)
    ens.fit(10)
    check_members(ens, alone, 0)


def test_statistics_across_members(alone, together):
    history = together.history
    values = np.stack([alone[s].history["loss/pde"] for s in SEEDS])
    stats = history.stats("loss/pde")
    np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats.std, values.std(axis=0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(stats.min, values.min(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats.max, values.max(axis=0), rtol=1e-5)
    assert history["loss/pde"].shape == (4, 4)
    np.testing.assert_allclose(history.final("loss/pde"), values[:, -1], rtol=1e-5)


def test_default_batching_by_size():
    small = ensemble(burgers, seeds=SEEDS)
    assert small.members_per_batch == 4  # 8 x 8 network, 48 points: vectorised

    def big(seed):
        return Burgers1D.default(seed=seed, hidden=[64] * 4, batch_size=4096, progress=False)

    assert ensemble(big, seeds=(0, 1)).members_per_batch == 1


def test_members_must_share_their_structure():
    def make(widths, nu=0.01 / np.pi):
        return lambda seed: Burgers1D.default(
            seed=seed, hidden=widths(seed), nu=nu, batch_size=16, progress=False
        )

    with pytest.raises(ValueError, match=r"member 1 \(seed 5\) .* state .*layers.*: shape \(6,\)"):
        ensemble(make(lambda s: [8] if s == 4 else [6]), seeds=[4, 5])
    nus = {0: 0.01, 1: 0.02}
    with pytest.raises(ValueError, match=r"problem\.nu: 0\.01 and 0\.02"):
        ensemble(lambda s: Burgers1D.default(seed=s, hidden=[4], nu=nus[s], progress=False), [0, 1])
    with pytest.raises(ValueError, match=r"seeds must be distinct, got \[1, 1\]"):
        ensemble(burgers, seeds=[1, 1])
    with pytest.raises(TypeError, match="make must return a jno Trainer .* got int for seed 0"):
        ensemble(lambda s: s, seeds=[0])
    with pytest.raises(ValueError, match="members_per_batch must divide the 4 members, got 3"):
        ensemble(burgers, seeds=SEEDS, members_per_batch=3)


def test_tensorboard_runs_and_exact_resume(tmp_path):
    # One member at a time: the program of the bit-for-bit test above, compiled once.
    whole = ensemble(burgers, seeds=(0, 1), members_per_batch=1)
    whole.fit(7)
    whole.fit(until=12)  # the same stops, without the checkpoints
    ckpt, logs = tmp_path / "ckpt", tmp_path / "runs"
    make = lambda s: burgers(s, checkpoint_every=6)  # noqa: E731
    first = ensemble(make, seeds=(0, 1), checkpoint_dir=ckpt, logdir=logs, members_per_batch=1)
    first.fit(7)  # checkpoints at 6 and at the end, 7
    assert sorted(p.name for p in ckpt.iterdir()) == ["seed_0", "seed_1"]
    assert all(any((logs / f"seed_{s}").iterdir()) for s in (0, 1))
    again = ensemble(make, seeds=(0, 1), checkpoint_dir=ckpt, logdir=logs, members_per_batch=1)
    assert again.restore() == 7 and again.step == 7
    history = again.fit(until=12)
    assert history.steps.tolist() == whole.history.steps.tolist()
    for k in range(2):
        for a, b in zip(params(again.members[k]), params(whole.members[k])):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            history.members[k]["loss/total"], whole.history.members[k]["loss/total"]
        )


class Fit(Trainer):
    def losses(self, net, batch):
        return {"data": jnp.mean((net(batch["x"]) - batch["x"]) ** 2)}


def test_a_diverging_member_is_named():
    def make(seed):
        net = jno.nn(MLP(1, [4], 1, rngs=nnx.Rngs(seed)))
        net.optimizer(optax.sgd(1e-2))
        x = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
        if seed == 7:
            x[3] = 1e30  # this member's data overflows: an infinite loss
        return Fit(net, points={"x": x}, seed=seed, progress=False, log_every=2)

    ens = ensemble(make, seeds=[5, 7, 9])
    message = r"member 1 \(seed 7\): training diverged at step 0: .*'data'"
    with pytest.raises(MemberDiverged, match=message) as err:
        ens.fit(4)
    assert (err.value.member, err.value.seed, err.value.step) == (1, 7, 0)
    assert isinstance(err.value, jno.TrainingDiverged)
    assert ens.members[1].step == 0  # its state is the one before the bad step
    healthy = ens.members[0]
    assert np.isfinite(healthy.history["loss/total"]).all()


def test_quasi_newton_members_run_one_line_search_each():
    from jno.problems import Poisson2D

    def make(seed):
        trainer = Poisson2D.default(
            seed=seed, hidden=[8], batch_size=64, resample=False, progress=False, log_every=5
        )
        trainer.nets[0].optimizer(jno.optim.ssbroyden())
        return trainer

    ens = ensemble(make, seeds=[0, 3])
    assert ens.members_per_batch == 2
    history = ens.fit(10)
    for k, seed in enumerate(ens.seeds):
        solo = make(seed)
        solo.fit(10)
        # The line searches branch on float comparisons: a small tolerance, not bits.
        np.testing.assert_allclose(
            history.members[k]["loss/total"], solo.history["loss/total"], rtol=1e-3
        )
        assert history.members[k]["loss/total"][-1] < 0.2 * history.members[k]["loss/total"][0]


def test_a_vectorised_learning_rate_sweep_through_a_scale_in_state():
    from jno.nnx import ScaledSchedule
    from jno.problems import Poisson2D

    def make(seed):
        trainer = Poisson2D.default(
            seed=seed, hidden=[6], batch_size=16, progress=False, log_every=2
        )
        trainer.nets[0].optimizer(optax.adam(1.0)).scale(ScaledSchedule(1e-2))
        return trainer

    scales = [0.1, 1.0, 3.0]
    ens = ensemble(make, seeds=[0, 1, 2])
    for member, scale in zip(ens.members, scales):
        member.nets[0].optimizer_spec.schedule.scale[...] = scale
    history = ens.fit(4)
    # The logged rate is the scale times the constant rate 1e-2.
    np.testing.assert_allclose(history["lr"], np.outer(scales, [1e-2, 1e-2]), rtol=1e-6)
    solo = make(2)
    solo.nets[0].optimizer_spec.schedule.scale[...] = 3.0
    solo.fit(4)
    np.testing.assert_allclose(history.members[2]["loss/total"], solo.history["loss/total"],
                               rtol=2e-5)  # fmt: skip
