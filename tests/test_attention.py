"""Residual-based attention (RBA, vRBA): updates and losses against numpy, inside a
problem's compiled step, logged, checkpointed and resumed; and its refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.nnx import RBA, VRBA
from jno.problems import Poisson2D

# The updates run compiled, as in a training step: one compilation instead of one per
# eager op.
attend = nnx.jit(lambda attention, residual: attention.loss(residual))


def _magnitude(parts):
    return np.sqrt(
        sum(np.mean(np.reshape(p, (len(p), -1)) ** 2, axis=1) for p in parts) / len(parts)
    )


def test_rba_updates_and_loss_against_numpy():
    rng = np.random.default_rng(0)
    rba = RBA(6, gamma=0.9, eta=0.05, initial=0.5)
    lam = np.full(6, 0.5)
    for _ in range(3):
        parts = (rng.normal(size=6), rng.normal(size=(6, 2)))
        loss = attend(rba, tuple(jnp.asarray(p, jnp.float32) for p in parts))
        m = _magnitude(parts)
        lam = 0.9 * lam + 0.05 * m / m.max()
        expected = np.mean(lam**2 * parts[0] ** 2) + np.mean(lam[:, None] ** 2 * parts[1] ** 2)
        np.testing.assert_allclose(rba.multipliers[...], lam, rtol=1e-6)
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


@pytest.mark.parametrize("potential", ["exponential", "linear"])
def test_vrba_updates_and_loss_against_numpy(potential):
    rng = np.random.default_rng(1)
    vrba = VRBA(5, potential=potential, temperature=0.3, gamma=0.8, eta=0.1)
    lam = np.ones(5)
    for _ in range(3):
        r = rng.normal(size=5)
        loss = attend(vrba, jnp.asarray(r, jnp.float32))
        m = np.abs(r) / np.abs(r).max()
        q = np.exp((m - 1.0) / 0.3) if potential == "exponential" else m
        lam = 0.8 * lam + 0.1 * q
        np.testing.assert_allclose(vrba.multipliers[...], lam, rtol=1e-6)
        np.testing.assert_allclose(float(loss), np.mean(lam * r**2), rtol=1e-5)


def test_the_multipliers_are_constants_of_the_gradient():
    rba = RBA(3, gamma=0.5, eta=1.0)
    r = jnp.array([1.0, -2.0, 4.0])
    lam = np.array([0.75, 1.0, 1.5])  # 0.5 + |r| / max |r|
    grad = jax.jit(jax.grad(lambda r: nnx.clone(rba).loss(r)))(r)
    np.testing.assert_allclose(grad, 2 * lam**2 * np.asarray(r) / 3, rtol=1e-6)


def _problem(attention, **kwargs):
    return Poisson2D.default(
        hidden=[8], batch_size=16, resample=False, attention=attention,
        progress=False, log_every=1, **kwargs,
    )  # fmt: skip


def test_one_step_of_a_problem_updates_the_multipliers_from_its_residual():
    trainer = _problem({"pde": RBA(16, gamma=0.9, eta=0.1)})
    trainer.nets[0].optimizer(optax.adam(1e-3))
    batch = dict(trainer.point_plan.fixed())
    r = np.asarray(trainer.residuals(trainer.nets[0].module, batch)["pde"])
    history = trainer.fit(1)
    expected = 0.9 + 0.1 * np.abs(r) / np.abs(r).max()
    np.testing.assert_allclose(
        trainer.component("attention_pde").multipliers[...], expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        history["tracker/attention_pde_mean"][-1], expected.mean(), rtol=1e-5
    )
    np.testing.assert_allclose(history["tracker/attention_pde_max"][-1], expected.max(), rtol=1e-5)


def test_attention_resumes_bit_for_bit_through_a_quasi_newton_phase(tmp_path):
    def run(directory, stop):
        trainer = _problem({"pde": VRBA(16)}, checkpoint_dir=str(directory), checkpoint_every=5)
        trainer.nets[0].optimizer(optax.adam(1e-2))
        trainer.fit(until=10)
        trainer.nets[0].optimizer(jno.optim.bfgs())
        trainer.fit(until=stop)
        if stop == 20:
            return trainer
        fresh = _problem({"pde": VRBA(16)}, checkpoint_dir=str(directory), checkpoint_every=5)
        fresh.nets[0].optimizer(jno.optim.bfgs())
        fresh.fit(until=20)
        return fresh

    with jax.enable_x64(True):
        whole, split = run(tmp_path / "a", 20), run(tmp_path / "b", 15)
        lam = whole.component("attention_pde").multipliers[...]
        assert lam.dtype == jnp.float64 and float(jnp.max(lam)) > 1.0
        np.testing.assert_array_equal(lam, split.component("attention_pde").multipliers[...])
        for a, b in zip(
            jax.tree.leaves(nnx.state(whole.nets[0].module)),
            jax.tree.leaves(nnx.state(split.nets[0].module)),
        ):
            np.testing.assert_array_equal(a, b)


def test_refusals_name_what_is_wrong():
    with pytest.raises(ValueError, match="num_points=8, got a residual of lengths \\[16\\]"):
        trainer = _problem({"pde": RBA(8)})
        trainer.nets[0].optimizer(optax.adam(1e-3))
        trainer.fit(1)
    with pytest.raises(ValueError, match=r"attention= names terms \['flux'\]"):
        trainer = _problem({"flux": RBA(16)})
        trainer.nets[0].optimizer(optax.adam(1e-3))
        trainer.fit(1)
    with pytest.raises(TypeError, match="attention must be"):
        _problem({"pde": jno.nnx.SoftAdapt(2)})
    with pytest.raises(ValueError, match="gamma"):
        RBA(4, gamma=1.0)
    with pytest.raises(ValueError, match="potential"):
        VRBA(4, potential="cubic")
    # Gauss-Newton steps minimise the plain residual vector: attention is refused.
    trainer = _problem({"pde": RBA(16)})
    trainer.nets[0].optimizer(jno.optim.levenberg_marquardt())
    with pytest.raises(ValueError, match=r"the losses of terms \['pde'\] differ"):
        trainer.fit(1)
