"""The quasi-Newton recipe on any trainer: its phases applied, its build settings
checked against the trainer and refused by name, one optimizer over several networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno.optim import QuasiNewton
from jno.problems import Burgers1D, Kovasznay2D, Poisson2D
from jno.problems.recipes import QuasiNewtonRecipe

X = jnp.linspace(-1.0, 1.0, 24)[:, None]


class Fit(jno.Trainer):
    def losses(self, nets, batch):
        x = batch["x"]
        nets = nets if isinstance(nets, tuple) else (nets,)
        total = sum(n(x)[:, 0] for n in nets)
        return {"data": jnp.mean((total - jnp.sin(2 * x[:, 0])) ** 2)}


def small(recipe: QuasiNewtonRecipe) -> QuasiNewtonRecipe:
    return recipe.phases().replace(adam_steps=6, qn_steps=6, adam_lr=1e-2)


@pytest.mark.parametrize("problem", [Burgers1D, Poisson2D, Kovasznay2D])
def test_a_recipe_built_trainer_fits_its_recipe(problem):
    recipe = problem.recipes["quasi-newton"]
    with jax.enable_x64(True):
        trainer = recipe.trainer(problem, seed=0, progress=False)
    assert recipe.contradictions(trainer) == []


def test_every_build_setting_is_refused_by_name_on_a_trainer_built_otherwise():
    net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    trainer = Fit(net, points={"x": X}, progress=False)
    with jax.enable_x64(True), pytest.raises(ValueError) as err:
        QuasiNewtonRecipe().run(trainer)
    message = str(err.value)
    for setting in (
        "hidden=(20, 20, 20)",
        "points=8000",
        "boundary_points=400",
        "redraw_every=5000",
        "pool_factor=8",
        "rad_k=1.0",
        "rad_c=1.0",
    ):
        assert setting in message
    assert "recipe.phases()" in message and trainer.step == 0


def test_the_phases_train_your_own_network_and_a_chunked_run_is_one_run():
    def make():
        net = jno.nn(jno.nnx.MLP(1, [8], 1, rngs=nnx.Rngs(0)))
        return net, Fit(net, points={"x": X}, progress=False, log_every=3)

    recipe = small(QuasiNewtonRecipe())
    with jax.enable_x64(True):
        net, whole = make()
        recipe.run(whole)
        other, chunked = make()
        for until in (3, 6, 9, 12):  # as a script that prints errors along the way
            recipe.run(chunked, until=until)
    assert whole.step == chunked.step == 12
    assert isinstance(net.optimizer_spec.tx, QuasiNewton)
    for a, b in zip(
        jax.tree.leaves(nnx.state(net.module)), jax.tree.leaves(nnx.state(other.module))
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    first = whole.history["loss/data"]
    assert first[-1] < first[0]


def test_several_networks_get_one_quasi_newton_optimizer():
    a = jno.nn(jno.nnx.MLP(1, [6], 1, rngs=nnx.Rngs(1)), name="a")
    b = jno.nn(jno.nnx.MLP(1, [6], 1, rngs=nnx.Rngs(2)), name="b")
    with jax.enable_x64(True):
        trainer = Fit([a, b], points={"x": X}, progress=False)
        small(QuasiNewtonRecipe()).run(trainer)
    assert trainer.step == 12
    assert isinstance(trainer.trained.joint.tx, QuasiNewton)
    assert trainer.trained.opt_states[0].inv_hessian.shape[0] == sum(
        x.size for n in (a, b) for x in jax.tree.leaves(nnx.state(n.module, nnx.Param))
    )
    message = "hidden=\\(20, 20, 20\\): the network has hidden widths \\(6,\\)"
    with pytest.raises(ValueError, match=message):
        QuasiNewtonRecipe(points=None, boundary_points=None, redraw_every=None).run(trainer)


def test_a_recipe_sized_to_a_budget_keeps_its_proportions_and_the_trainer():
    net = jno.nn(jno.nnx.MLP(1, [8], 1, rngs=nnx.Rngs(0)))
    recipe = QuasiNewtonRecipe().phases().replace(adam_steps=1000, qn_steps=4000, redraw_every=500)
    with jax.enable_x64(True):
        trainer = Fit(net, points={"x": X}, progress=False)
        before = [np.asarray(a) for a in jax.tree.leaves(nnx.state(net.module))]
        budget = recipe.sized_to(3.0, trainer, probe=5)
        sized = budget.recipe
        # The counts keep the 1 : 4 split; redraw_every is the trainer's ...
        factor = 3.0 / (1000 * budget.adam_step_seconds + 4000 * budget.qn_step_seconds)
        assert sized.adam_steps == round(1000 * factor) and sized.qn_steps == round(4000 * factor)
        assert sized.redraw_every == 500
        assert (sized.method, sized.adam_lr) == (recipe.method, recipe.adam_lr)
        # ... and the probe changed nothing in the trainer.
        after = [np.asarray(a) for a in jax.tree.leaves(nnx.state(net.module))]
        assert trainer.step == 0 and all(np.array_equal(a, b) for a, b in zip(before, after))
        assert net.optimizer_spec is None and trainer.trained.joint is None
        with pytest.raises(ValueError, match="seconds must be"):
            recipe.sized_to(0.0, trainer)
