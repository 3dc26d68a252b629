"""The first-order recipe on any trainer: its phase applied, every build setting
checked against the trainer and refused by name, one optimizer over several networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno.nnx import GradNormBalancer
from jno.problems import Burgers1D, Helmholtz2D, Kovasznay2D
from jno.problems.recipes import FirstOrderRecipe
from jno.train.optim import OptimizerSpec

X = jnp.linspace(-1.0, 1.0, 24)[:, None]
SMALL = dict(width=8, points=64, boundary_points=16, steps=40, warmup_steps=4)


class Fit(jno.Trainer):
    def losses(self, nets, batch):
        x = batch["x"]
        nets = nets if isinstance(nets, tuple) else (nets,)
        total = sum(n(x)[:, 0] for n in nets)
        return {"data": jnp.mean((total - jnp.sin(2 * x[:, 0])) ** 2)}


def params(net):
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(net.module))]


@pytest.mark.parametrize("problem", [Burgers1D, Helmholtz2D, Kovasznay2D])
def test_a_recipe_built_trainer_fits_its_recipe(problem):
    recipe = problem.recipes["soap"].replace(**SMALL)
    trainer = recipe.trainer(problem, seed=0, progress=False)
    assert recipe.contradictions(trainer) == []
    assert trainer.nets[0].module.out_features == len(problem.fields)


def test_every_build_setting_is_refused_by_name_on_a_trainer_built_otherwise():
    net = jno.nn(jno.nnx.MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
    trainer = Fit(net, points={"x": X}, progress=False)
    phases = FirstOrderRecipe().phases()
    assert phases.contradictions(trainer) == []
    refused = {
        "network='pirate'": dict(network="pirate", width=8, depth=3, fourier_scale=0.5),
        "width=16": dict(network="mlp", width=16, depth=2, fourier_scale=0.5),
        "depth=3": dict(network="mlp", width=8, depth=3, fourier_scale=0.5),
        "weight_factorization=(1.0, 0.1)": dict(
            network="mlp", width=8, depth=2, fourier_scale=0.5, weight_factorization=(1.0, 0.1)
        ),
        "points=64": dict(points=64),
        "boundary_points=16": dict(boundary_points=16),
        "causal_chunks=4": dict(causal_chunks=4),
        "causal_epsilon=2.0": dict(causal_epsilon=2.0),
        "balance_every=5": dict(balance_every=5),
    }
    for setting, changes in refused.items():
        recipe = phases.replace(**changes)
        with pytest.raises(ValueError, match="does not fit this trainer") as err:
            recipe.run(trainer)
        assert setting in str(err.value), (setting, str(err.value))
    # The network settings that match are not refused.
    same = phases.replace(network="mlp", width=8, depth=2, fourier_scale=0.5)
    assert same.contradictions(trainer) == []
    assert phases.replace(balance_every=0, causal_chunks=0).contradictions(trainer) == []
    # A PirateNet in time is fitted to the initial condition: a trainer without one is
    # refused.
    pirate = jno.nnx.PirateNet(2, 8, 1, blocks=1, rngs=nnx.Rngs(0))
    timed = Fit(jno.nn(pirate), points={"x": X}, progress=False)
    timed.domain = Burgers1D.domain
    fit = phases.replace(network="pirate", width=8, depth=3, fourier_scale=1.0, fit_output=True)
    rwf = "weight_factorization=None: the network has weight_factorization (1.0, 0.1)"
    assert fit.contradictions(timed) == [
        rwf,
        "fit_output=True: the trainer defines no initial condition to fit",
    ]
    assert trainer.step == 0


def test_network_settings_need_the_network_and_your_own_settings_need_none():
    with pytest.raises(ValueError, match="width=64 describes the recipe's network"):
        FirstOrderRecipe(network=None)
    recipe = Burgers1D.recipes["soap"].replace(**SMALL)
    with pytest.raises(ValueError, match="balancer= is the recipe's .*balance_every=None"):
        recipe.trainer(Burgers1D, balancer=GradNormBalancer(3), progress=False)
    own = recipe.replace(balance_every=None).trainer(
        Burgers1D, balancer=GradNormBalancer(3, update_every=9), progress=False
    )
    assert own.balancer.update_every == 9
    with pytest.raises(ValueError, match="network=None keeps a trainer's own network"):
        recipe.phases().trainer(Burgers1D)


def test_the_phase_trains_your_own_network_and_a_chunked_run_is_one_run():
    def make():
        net = jno.nn(jno.nnx.MLP(1, [8], 1, rngs=nnx.Rngs(0)))
        return net, Fit(net, points={"x": X}, progress=False, log_every=3)

    recipe = FirstOrderRecipe().phases().replace(steps=12, warmup_steps=2, lr=1e-2)
    net, whole = make()
    recipe.run(whole)
    other, chunked = make()
    for until in (3, 6, 9, 12):
        recipe.run(chunked, until=until)
    assert whole.step == chunked.step == 12
    expected = OptimizerSpec(recipe.transformation()).scale(recipe.schedule()).config()
    assert net.optimizer_spec.config() == expected
    for a, b in zip(params(net), params(other)):
        np.testing.assert_array_equal(a, b)
    losses = whole.history["loss/data"]
    assert losses[-1] < losses[0]


def test_several_networks_get_one_optimizer():
    a = jno.nn(jno.nnx.MLP(1, [6], 1, rngs=nnx.Rngs(1)), name="a")
    b = jno.nn(jno.nnx.MLP(1, [6], 1, rngs=nnx.Rngs(2)), name="b")
    trainer = Fit([a, b], points={"x": X}, progress=False)
    recipe = FirstOrderRecipe().phases().replace(steps=5, warmup_steps=1, optimizer="adam")
    recipe.run(trainer)
    assert trainer.step == 5 and a.optimizer_spec is None
    assert trainer.trained.joint.config() == (
        OptimizerSpec(recipe.transformation()).scale(recipe.schedule()).config()
    )


def test_the_initial_fit_at_run_start_is_the_fit_of_the_build():
    recipe = Burgers1D.recipes["soap"].replace(**{**SMALL, "width": 16})
    trainer = recipe.trainer(Burgers1D, seed=1, progress=False)
    before = params(trainer.nets[0])
    recipe.run(trainer, until=0)  # fits again at step 0: the same least-squares fit
    for x, y in zip(before, params(trainer.nets[0])):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    # A trainer whose PirateNet was not fitted gets the fit when the run starts.
    plain = recipe.replace(fit_output=False).trainer(Burgers1D, seed=1, progress=False)
    recipe.run(plain, until=0)
    for x, y in zip(before, params(plain.nets[0])):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
