"""Problems with several fields, with and without a reference: the errors of each field
in History and TensorBoard, zero-mean fields, and a fit with nothing to do."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import ops
from jno.domain import Box
from jno.problems import Kovasznay2D, Problem


def kovasznay_exact(x, re=20.0):
    """Kovasznay's solution written out here, independently of the packaged class."""
    lam = re / 2 - np.sqrt(re**2 / 4 + 4 * np.pi**2)
    e = np.exp(lam * x[:, 0])
    u = 1 - e * np.cos(2 * np.pi * x[:, 1])
    v = lam / (2 * np.pi) * e * np.sin(2 * np.pi * x[:, 1])
    return np.stack([u, v, (1 - e**2) / 2], axis=1)


def test_the_kovasznay_solution_solves_the_navier_stokes_residual():
    with jax.enable_x64(True):
        t = Kovasznay2D.default(hidden=[8], progress=False)
        x = np.random.default_rng(0).uniform([-0.5, -0.5], [1.0, 1.5], (64, 2))
        np.testing.assert_allclose(np.asarray(t.reference(x)), kovasznay_exact(x), rtol=1e-12)
        # The exact fields through the autodiff path of jno.ops: residuals vanish.
        exact = ops.fields(lambda y: t.reference(y), t.fields)
        res = t.residuals(exact, {"interior": jnp.asarray(x), "boundary": jnp.asarray(x[:8])})
        for part in (*res["pde"], *res["bc"]):
            assert float(jnp.max(jnp.abs(part))) < 1e-10
        # A wrong Reynolds number does not solve it: the check can fail.
        other = Kovasznay2D.default(hidden=[8], re=40.0, progress=False)
        wrong = other.residuals(exact, {"interior": jnp.asarray(x), "boundary": jnp.asarray(x[:8])})
        assert float(jnp.max(jnp.abs(wrong["pde"][0]))) > 1e-2


def test_a_system_logs_the_error_of_each_field():
    t = Kovasznay2D.default(hidden=[16], batch_size={"interior": 64, "boundary": 32})
    t.progress, t.log_every = False, 5
    history = t.fit(10)
    assert history.steps.tolist() == [5, 10]
    errors = t.relative_l2()
    assert sorted(errors) == ["p", "u", "v"]
    for name, value in errors.items():
        # The last logged error is that of the final state, computed the same way.
        assert history[f"error/{name}"][-1] == pytest.approx(value, rel=1e-5)
        assert history[f"error/{name}"][0] > 0
    assert t.relative_l2(field="v") == errors["v"]
    assert t.predict().shape == (101 * 101, 3)
    # The pressure is compared up to a constant: shifting the reference changes nothing.
    x = t.evaluation_points()
    ref = np.asarray(t.reference(x))
    shifted = ref + np.array([0.0, 0.0, 5.0])
    assert t.evaluation.errors(t.predict(), shifted) == pytest.approx(errors, rel=1e-9)
    with pytest.raises(KeyError, match="no field 'w'"):
        t.relative_l2(field="w")


class Heat(Problem):
    """u_t = u_xx with two fields (u and its flux q = u_x), no reference."""

    domain = Box([0.0, 0.0], [1.0, 1.0], time_axis=-1)
    fields = ("u", "q")
    point_sets = ("interior", "initial")
    default_batch_size = 32

    def residuals(self, U, batch):
        u, q = U
        x, x0 = batch["interior"], batch["initial"]
        return {
            "pde": ops.partial(u, x, 1) - ops.partial(q, x, 0),
            "flux": q(x) - ops.partial(u, x, 0),
            "ic": u(x0) - jnp.sin(jnp.pi * x0[:, 0]),
        }


def test_a_problem_without_a_reference_trains_and_logs_its_losses(tmp_path):
    t = Heat.default(hidden=[8], logdir=str(tmp_path / "run"), progress=False, log_every=4)
    assert not t.has_reference() and t.nets[0].fields == ("u", "q")
    history = t.fit(8)
    assert sorted(history) == sorted(
        ["loss/total", "loss/pde", "loss/flux", "loss/ic", "grad_norm", "lr", "skipped_steps"]
        + [f"weight/{k}" for k in ("pde", "flux", "ic")]
    )
    assert np.isfinite(history["loss/total"]).all()
    with pytest.raises(ValueError, match="Heat has no reference solution"):
        t.relative_l2()


def test_a_fit_with_nothing_to_do_shows_nothing_and_writes_nothing(tmp_path, capsys):
    net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))

    class Fit(jno.Trainer):
        def losses(self, net, batch):
            return {"data": jnp.mean(net(batch["x"]) ** 2)}

    logdir = tmp_path / "run"
    trainer = Fit(net, points={"x": jnp.ones((4, 1))}, progress=True, logdir=str(logdir))
    trainer.fit(0)
    trainer.fit(until=0)
    assert capsys.readouterr().err == "" and not logdir.exists()
    trainer.fit(2)
    assert "2/2" in capsys.readouterr().err.replace(" ", "") and logdir.exists()


def test_the_inverse_burgers_problem_learns_nu_with_its_field():
    from jno.problems import BurgersInverse1D
    from jno.problems.burgers import cole_hopf

    with jax.enable_x64(True):
        t = BurgersInverse1D.default(hidden=[8], data_points=50, noise=0.0, progress=False)
        x = np.asarray(t.points["data"])
        # The samples are the Cole-Hopf solution at the true nu, here without noise ...
        np.testing.assert_allclose(np.asarray(t.observed), cole_hopf(x[:, 0], x[:, 1], t.nu))
        noisy = BurgersInverse1D.default(hidden=[8], data_points=50, noise=0.01, progress=False)
        spread = np.std(np.asarray(noisy.observed) - np.asarray(t.observed)) / np.std(t.observed)
        assert 0.005 < spread < 0.02  # ... and with 1 % of their spread
        assert t.learned_nu() == pytest.approx(0.05) and t.nu_error() == pytest.approx(
            0.05 / t.nu - 1
        )
        t.log_every = 5
        history = t.fit(5)
        # nu is a parameter trained with the field: it moved, and its error is logged.
        assert t.learned_nu() != pytest.approx(0.05, rel=1e-9)
        assert history["error/nu"][-1] == pytest.approx(t.nu_error(), rel=1e-9)
        assert history["error/u"][-1] == pytest.approx(t.relative_l2(), rel=1e-6)
        recipe = BurgersInverse1D.recipes["quasi-newton"]
        assert recipe.contradictions(recipe.trainer(BurgersInverse1D, progress=False)) == []
