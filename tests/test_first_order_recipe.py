"""The first-order recipe: PirateNet + weight factorization + SOAP, causal and
gradient-norm weights (jno.problems.recipes.FirstOrderRecipe)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jno.nnx import MLP, CausalWeights, FactorizedDense, GradNormBalancer, ModifiedMLP, PirateNet
from jno.problems import AllenCahn1D, Burgers1D, Helmholtz2D, KleinGordon1D
from jno.problems.base import Problem
from jno.problems.recipes import FirstOrderRecipe

SMALL = dict(width=8, points=64, boundary_points=16, steps=40, warmup_steps=4)


def test_defaults_and_argument_errors():
    recipe = FirstOrderRecipe()
    assert recipe.label == "PirateNet 1 x 3 x 64 + RWF, SOAP"
    assert recipe.replace(network="modified", weight_factorization=None).label == (
        "ModifiedMLP 3 x 64, SOAP"
    )
    assert not recipe.float64 and recipe.total_steps == recipe.steps
    for bad, match in (
        (dict(network="kan"), "network must be one of .*'kan'"),
        (dict(optimizer="sgd"), "optimizer must be one of .*'sgd'"),
        (dict(depth=4), "depth must be a multiple of 3 .* got 4"),
        (dict(width=9), "width must be even .* got 9"),
        (dict(steps=100, warmup_steps=100), "warmup_steps must be below steps=100, got 100"),
        (dict(lr=0.0), "lr"),
        (dict(lr_end=1.0), "lr_end"),
        (dict(weight_factorization=(1.0, -0.1)), r"weight_factorization .* \(1.0, -0.1\)"),
        (dict(points=0), "points"),
    ):
        with pytest.raises(ValueError, match=match):
            recipe.replace(**bad)
    assert recipe.replace(network="mlp", depth=4).depth == 4  # only a PirateNet needs 3k


def test_allen_cahn_trainer_has_every_ingredient():
    recipe = AllenCahn1D.recipes["soap"].replace(**SMALL, causal_chunks=4, balance_every=7)
    trainer = recipe.trainer(AllenCahn1D, seed=0, progress=False)
    module = trainer.nets[0].module
    assert isinstance(module, PirateNet) and module.blocks == 1
    assert isinstance(module.output, FactorizedDense) and module.periodic.axes == (0,)
    # The periodic "bc" is satisfied by the network: two terms, two gradient-norm weights.
    assert trainer.check() == ("pde", "ic")
    assert isinstance(trainer.balancer, GradNormBalancer)
    assert trainer.balancer.num_losses == 2 and trainer.balancer.update_every == 7
    causal = trainer.causal
    assert isinstance(causal, CausalWeights) and causal.num_chunks == 4
    assert causal.epsilons == (1.0,) and causal.delta == 1.0
    assert trainer.points["interior"].n == 64 and trainer.points["initial"].n == 16
    assert all(p.resample for p in trainer.points.values())
    # Warm-up to lr over 4 steps, then cosine to lr_end at step 40.
    schedule = trainer.nets[0].optimizer_spec.schedule
    lr, end = recipe.lr, recipe.lr_end
    expected = [lr / 4, lr, (lr + end) / 2, end]
    rate = nnx.jit(lambda schedule, t: schedule(t))  # one compilation, not one per op
    got = [float(rate(schedule, t)) for t in (0, 4, 22, 40)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_output_layer_is_fitted_to_the_initial_condition_at_every_time():
    recipe = Burgers1D.recipes["soap"].replace(**{**SMALL, "width": 64})
    trainer = recipe.trainer(Burgers1D, seed=1, progress=False)
    # Host arrays and numpy: no eager op compiled for the checks.
    x = np.linspace(-1.0, 1.0, 33, dtype=np.float32)
    for t in (0.0, 0.5, 1.0):
        points = np.stack([x, np.full_like(x, t)], axis=1)
        error = np.asarray(trainer.predict(points)) + np.sin(np.pi * x)  # u0 = -sin(pi x)
        assert float(np.abs(error).max()) < 0.01, t
    # Without the fit the untrained PirateNet is far from it.
    plain = recipe.replace(fit_output=False).trainer(Burgers1D, seed=1, progress=False)
    points = np.stack([x, np.zeros_like(x)], axis=1)
    assert float(np.abs(np.asarray(plain.predict(points)) + np.sin(np.pi * x)).max()) > 0.3


class MeasuredBurgers(Burgers1D):
    """Burgers whose reference is "measured data" far from the initial condition."""

    def reference(self, x):
        x = np.asarray(x, np.float64)
        return np.cos(3 * x[:, 0]) + 2.0


def test_the_output_fit_takes_the_initial_condition_never_the_reference():
    recipe = Burgers1D.recipes["soap"].replace(**{**SMALL, "width": 64})
    trainer = recipe.trainer(MeasuredBurgers, seed=1, progress=False)
    x = np.linspace(-1.0, 1.0, 33, dtype=np.float32)
    points = np.stack([x, np.zeros_like(x)], axis=1)
    u = np.asarray(trainer.predict(points))
    assert float(np.abs(u + np.sin(np.pi * x)).max()) < 0.01  # u0 = -sin(pi x)
    assert float(np.abs(u - trainer.reference(points)).min()) > 0.5

    # A problem in time without an initial condition is refused by name.
    class NoInitial(Burgers1D):
        initial_condition = Problem.initial_condition

        def residuals(self, u, batch):
            return {"pde": u(batch["interior"])[:, 0], "bc": u(batch["boundary"])[:, 0]}

    assert not NoInitial.has_initial_condition() and Burgers1D.has_initial_condition()
    with pytest.raises(ValueError, match="defines none \\(initial_condition\\(x\\)\\)"):
        recipe.trainer(NoInitial, seed=1, progress=False)


def test_initial_conditions_of_the_problems_in_time():
    x = np.array([[-0.5, 0.7], [0.25, 0.1], [1.0, 0.0]])
    for problem, expected in (
        (Burgers1D, -np.sin(np.pi * x[:, 0])),
        (AllenCahn1D, x[:, 0] ** 2 * np.cos(np.pi * x[:, 0])),
        (KleinGordon1D, x[:, 0]),
    ):
        made = problem.default(hidden=[4], progress=False)
        np.testing.assert_allclose(made.initial_condition(x), expected, rtol=1e-6, atol=1e-7)
        # At t = 0 the reference solution agrees with it.
        at0 = np.c_[x[:, 0], np.zeros(3)]
        np.testing.assert_allclose(made.reference(at0), expected, atol=1e-6)


def state_types(trainer) -> set[str]:
    """Names of the state types of the trainer's optimizer, initialised on its network."""
    tx = trainer.nets[0].optimizer_spec.tx
    params = nnx.state(trainer.nets[0].module, nnx.Param)
    nodes = jax.tree.leaves(tx.init(params), is_leaf=lambda s: hasattr(s, "_fields"))
    return {type(node).__name__ for node in nodes}


def test_other_networks_optimizers_and_a_problem_without_time():
    recipe = FirstOrderRecipe(**SMALL)
    mlp = recipe.replace(network="mlp", optimizer="adam", depth=2).trainer(
        Burgers1D, progress=False
    )
    module = mlp.nets[0].module
    assert type(module) is MLP and module.periodic is None  # Burgers is not periodic
    assert len(module.layers) == 3
    assert all(isinstance(layer, FactorizedDense) for layer in module.layers)
    assert "ScaleByAdamState" in state_types(mlp) and "SOAPState" not in state_types(mlp)
    modified = recipe.replace(network="modified").trainer(Helmholtz2D, progress=False)
    assert "SOAPState" in state_types(modified)
    assert type(modified.nets[0].module) is ModifiedMLP
    # Helmholtz has no time: no causal weights and no initial fit.
    assert modified.causal is None
    assert modified.check() == ("pde", "bc")
    bare = recipe.replace(balance_every=0, causal_chunks=0).trainer(Burgers1D, progress=False)
    assert bare.balancer is None and bare.causal is None


def test_a_seeded_recipe_is_deterministic_and_trains():
    recipe = Burgers1D.recipes["soap"].replace(**SMALL, causal_chunks=4, balance_every=5)
    # The same seed builds the same network, output fit included (training from equal
    # states is deterministic: the Trainer's resume tests check it bit for bit).
    a, b = (recipe.trainer(Burgers1D, seed=2, progress=False, log_every=5) for _ in range(2))
    leaves = lambda t: jax.tree.leaves(nnx.state(t.nets[0].module))  # noqa: E731
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    other = recipe.trainer(Burgers1D, seed=3, progress=False)
    assert any(
        not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves(a), leaves(other))
    )
    recipe.run(a, until=10)
    total = np.asarray(a.history["loss/total"])
    assert np.isfinite(total).all()
    # The residual gate opened: the network is no longer the fitted linear model.
    assert float(np.abs(np.asarray(a.nets[0].module.alphas[...])).min()) > 0
    # The gradient-norm weights moved away from one at their first update.
    assert not math.isclose(float(a.history["weight/ic"][-1]), 1.0)
    assert jnp.asarray(a.history["loss/total"]).dtype == jnp.float32
