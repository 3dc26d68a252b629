"""Gauss-Newton phases in a trainer: the weighted residual vector and its per-point
Jacobian, training, exact resume, two networks under one optimizer, and refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.optim import LeastSquaresState, engd, levenberg_marquardt


class Poisson1D(jno.Trainer):
    """-u'' = pi^2 sin(pi x) on (0, 1), u(0) = u(1) = 0; the boundary residual has two
    columns (u and a scaled copy), so the per-column scaling is exercised."""

    def residuals(self, net, batch):
        x, b = batch["x"], batch["b"]
        u_b = net(b)[:, 0]
        pde = -jno.ops.laplacian(net, x) - jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        return {"pde": pde, "bc": jnp.stack([u_b, 0.5 * u_b], axis=1)}

    def losses(self, net, batch):
        return {k: jnp.mean(jnp.square(v)) for k, v in self.residuals(net, batch).items()}


def _trainer(**kwargs):
    kwargs.setdefault("log_every", 1)
    # More residuals (68) than parameters (61): ENGD's undamped steps need that.
    net = jno.nn(jno.nnx.MLP(1, [6, 6], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    points = {"x": jnp.linspace(0.05, 0.95, 64)[:, None], "b": jnp.array([[0.0], [1.0]])}
    return Poisson1D(net, points=points, progress=False, **kwargs)


def test_residual_vector_squares_to_the_weighted_total_and_its_jacobian_is_exact():
    with jax.enable_x64(True):
        trainer = _trainer()
        compiled = trainer.compile()
        carry = trainer.initial_state()
        batch = dict(trainer.points)
        weights = jnp.array([0.7, 3.0])
        parts = compiled.term_residuals

        @jax.jit  # one program: eagerly, every operation would compile on its own
        def evaluate(params, rest, components):
            losses, _ = compiled.loss_vector(params, rest, components, batch)
            vector = parts.vector(params, rest, batch, weights)
            # Per-point gradients, and forward mode on the whole vector to check them.
            jac = parts.jacobian(params, rest, batch, weights, (0,))
            full = jax.jacfwd(lambda p: parts.vector((p,), rest, batch, weights))(params[0])
            return losses, vector, jac, full

        losses, vector, jac, full = evaluate(carry.params, carry.rest, carry.components)
        assert vector.shape == (64 + 2 * 2,)
        np.testing.assert_allclose(vector @ vector, weights @ losses, rtol=1e-13)
        # By hand: the boundary entries are sqrt(w / (n k)) r with n = 2 points, k = 2.
        u = trainer.nets[0].module(batch["b"])[:, 0]
        expected = np.sqrt(3.0 / 4) * np.stack([u, 0.5 * u], axis=1).reshape(-1)
        np.testing.assert_allclose(vector[64:], expected, rtol=1e-13)
        for a, b in zip(jax.tree.leaves(jac), jax.tree.leaves(full)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ENGD cut at singular values below 1e-5 of the largest: from this poor start, longer
# steps of a finer cut are refused by its grid.
@pytest.mark.parametrize("make", [levenberg_marquardt, lambda: engd(rcond=1e-5)])
def test_a_gauss_newton_phase_trains_and_resumes_bit_for_bit(tmp_path, make):
    def run(directory, stop):
        trainer = _trainer(checkpoint_dir=str(directory), checkpoint_every=5)
        trainer.fit(until=20)
        trainer.nets[0].optimizer(make())
        history = trainer.fit(until=stop)
        if stop == 35:
            return trainer, history
        fresh = _trainer(checkpoint_dir=str(directory), checkpoint_every=5)
        assert fresh.latest_checkpoint_step() == 25
        fresh.nets[0].optimizer(make())
        return fresh, fresh.fit(until=35)

    with jax.enable_x64(True):
        whole, history = run(tmp_path / "whole", 35)
        split, _ = run(tmp_path / "split", 25)
    loss = history["loss/total"]
    assert loss[-1] < 1e-4 * loss[list(history.steps).index(20)]
    assert isinstance(whole.trained.opt_states[0], LeastSquaresState)
    for tree in (lambda t: nnx.state(t.nets[0].module), lambda t: t.trained.opt_states):
        for a, b in zip(jax.tree.leaves(tree(whole)), jax.tree.leaves(tree(split))):
            np.testing.assert_array_equal(a, b)


def test_one_levenberg_marquardt_over_a_field_and_a_coefficient():
    # u(x) = k x on x in [0, 1] with data u = 2 x: a network and an unknown coefficient
    # k trained by one optimizer reach u = 2 x, k = 2 (the pde term couples them), to
    # what a tanh network of 6 units represents of 2 x.
    class Coefficient(nnx.Module):
        def __init__(self):
            # Not weakly typed: the trained value is not, and the step would compile twice.
            self.k = nnx.Param(jnp.array(0.5, float))

    class Inverse(jno.Trainer):
        def residuals(self, nets, batch):
            u, c = nets
            x = batch["x"]
            return {"data": u(x)[:, 0] - 2.0 * x[:, 0], "pde": jno.ops.grad(u, x)[:, 0] - c.k}

        def losses(self, nets, batch):
            return {k: jnp.mean(v**2) for k, v in self.residuals(nets, batch).items()}

    with jax.enable_x64(True):
        u = jno.nn(jno.nnx.MLP(1, [6], 1, rngs=nnx.Rngs(1)))
        c = jno.nn(Coefficient(), name="c")
        points = {"x": jnp.linspace(0, 1, 16)[:, None]}
        trainer = Inverse([u, c], points=points, progress=False, log_every=1)
        trainer.optimizer(levenberg_marquardt())
        history = trainer.fit(40)
        assert abs(float(c.module.k[...]) - 2.0) < 1e-4
        assert history["loss/total"][-1] < 1e-7 * history["loss/total"][0]


def test_losses_that_are_not_the_residuals_squared_are_refused():
    class Doubled(Poisson1D):
        def losses(self, net, batch):
            out = super().losses(net, batch)
            return {"pde": 2.0 * out["pde"], "bc": out["bc"]}

    net = jno.nn(jno.nnx.MLP(1, [4], 1, rngs=nnx.Rngs(0)))
    net.optimizer(levenberg_marquardt())
    points = {"x": jnp.linspace(0.1, 0.9, 8)[:, None], "b": jnp.array([[0.0], [1.0]])}
    trainer = Doubled(net, points=points, progress=False)
    with pytest.raises(ValueError, match=r"the losses of terms \['pde'\] differ from them"):
        trainer.fit(1)


def test_a_trainer_without_residuals_is_told_so():
    class Plain(jno.Trainer):
        def losses(self, net, batch):
            return {"fit": jnp.mean((net(batch["x"]) - 1.0) ** 2)}

    net = jno.nn(jno.nnx.MLP(1, [4], 1, rngs=nnx.Rngs(0)))
    net.optimizer(levenberg_marquardt())
    trainer = Plain(net, points={"x": jnp.ones((4, 1))}, progress=False)
    with pytest.raises(NotImplementedError, match="must override residuals"):
        trainer.fit(1)


def test_a_recipe_ends_with_a_gauss_newton_phase_and_resumes_in_it(tmp_path):
    from jno.problems import Poisson2D

    small = dict(hidden=(4,), points=24, boundary_points=8, adam_steps=6, redraw_every=5)
    recipe = Poisson2D.recipes["quasi-newton"].replace(
        qn_steps=6, gauss_newton="levenberg_marquardt", gauss_newton_steps=6, exact=True, **small
    )
    assert recipe.total_steps == 18 and recipe.label.endswith(
        "levenberg_marquardt 6, exact conditions"
    )
    with jax.enable_x64(True):
        whole = recipe.trainer(Poisson2D, seed=1, progress=False)
        assert isinstance(whole.nets[0].module, jno.nnx.Constrained)
        recipe.run(whole)
        assert whole.step == 18 and isinstance(whole.trained.opt_states[0], LeastSquaresState)
        directory = str(tmp_path / "ckpt")
        for stop in (15, 18):  # stopped inside the Gauss-Newton phase, then resumed
            part = recipe.trainer(Poisson2D, seed=1, progress=False, checkpoint_dir=directory)
            recipe.run(part, until=stop)
            assert part.step == stop
        for a, b in zip(
            jax.tree.leaves(nnx.state(whole.nets[0].module)),
            jax.tree.leaves(nnx.state(part.nets[0].module)),
        ):
            np.testing.assert_array_equal(a, b)
        plain = (
            Poisson2D.recipes["quasi-newton"]
            .replace(exact=False, **small)
            .trainer(Poisson2D, progress=False)
        )
        assert recipe.phases().replace(exact=True).contradictions(plain) == [
            "exact=True: the trainer's network imposes no conditions exactly"
        ]
    with pytest.raises(ValueError, match="gauss_newton_steps=5 needs gauss_newton"):
        recipe.replace(gauss_newton=None, gauss_newton_steps=5)
    with pytest.raises(ValueError, match="gauss_newton"):
        recipe.replace(gauss_newton="newton")
