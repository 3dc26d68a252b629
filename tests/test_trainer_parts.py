"""The parts a Trainer is made of, each tested alone: the point plan, the term book, the
checkpoints of a run, what is trained, the step builder and the chunk arithmetic."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.domain import Box
from jno.nnx import DLRS, ReLoBRaLo
from jno.resampling import RAD
from jno.train._chunks import check_fit, fit_target, next_boundary
from jno.train.checkpoint import CheckpointMismatch
from jno.train.components import ComponentSlots, with_causal
from jno.train.history import History
from jno.train.mesh import default_mesh
from jno.train.point_plan import AdaptiveSet, PointPlan
from jno.train.run_checkpoints import RunCheckpoints
from jno.train.term_book import TermBook
from jno.train.trained import Trained


def linear_net(seed: int = 0, lr: float = 1e-2):
    net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(seed)))
    net.optimizer(optax.adam(lr))
    return net


class Square(jno.Trainer):
    def losses(self, net, batch):
        r = net(batch["x"])[:, 0] - 2.0
        return {"data": jnp.mean(r**2), "small": 1e-3 * jnp.mean(net(batch["x"]) ** 2)}

    def residuals(self, net, batch):
        return {"data": net(batch["x"])[:, 0] - 2.0, "small": net(batch["x"])[:, 0]}


# ------------------------------------------------------------------ point plan
def test_point_plan_draws_fixed_sets_once_from_the_seed():
    box = Box([0.0], [1.0])
    data = np.arange(6.0).reshape(3, 2)
    plan = PointPlan(
        {"data": data, "once": box.interior(5), "every": box.interior(7, resample=True)},
        default_mesh(),
        seed=3,
    )
    assert plan.resampled == (False, False, True)
    fixed = plan.fixed()
    assert sorted(fixed) == ["data", "once"]
    np.testing.assert_array_equal(np.asarray(fixed["data"]), data)
    assert fixed["data"].dtype == jnp.zeros(()).dtype  # the default float
    # Set k of the fixed sets is drawn with fold_in(fold_in(key, 0), k).
    key = jax.random.fold_in(jax.random.PRNGKey(3), 0)
    expected = box.interior(5).sample(jax.random.fold_in(key, 1))
    np.testing.assert_array_equal(np.asarray(fixed["once"]), np.asarray(expected))
    assert plan.fixed() is fixed  # drawn once
    stand_in = plan.stand_in()
    assert stand_in["every"].shape == (7, 1) and stand_in["data"].shape == (3, 2)
    np.testing.assert_array_equal(plan.points_of("data", 10), data)
    with pytest.raises(KeyError, match="no point set 'nope'"):
        plan.points_of("nope", 0)


def test_point_plan_gives_residual_adaptive_sets_a_slot_and_a_term():
    box = Box([0.0], [1.0])
    plan = PointPlan(
        {"inner set": RAD(box.interior(8), pool_factor=4), "x": jnp.ones((2, 1))},
        default_mesh(),
        seed=0,
    )
    assert plan.adaptive_slots == {"inner set": "points_inner_set"}
    assert list(plan.components({})) == ["points_inner_set"]
    with pytest.raises(ValueError, match="slot 'points_inner_set' is taken"):
        plan.components({"points_inner_set": object()})
    with pytest.raises(NotImplementedError, match="Owner must override residuals"):
        plan.adaptive_plan(("pde",), has_residuals=False, owner="Owner")
    with pytest.raises(ValueError, match="term= one of \\['pde'\\], got None"):
        plan.adaptive_plan(("pde",), has_residuals=True, owner="Owner")
    assert plan.adaptive_plan(("inner set",), True, "Owner") == (
        AdaptiveSet("inner set", "points_inner_set", "inner set"),
    )


def test_point_plan_names_points_that_do_not_fit_the_network():
    net = jno.nn(jno.nnx.MLP(2, [4], 1, rngs=nnx.Rngs(0)))
    plan = PointPlan({"x": jnp.ones((3, 1))}, default_mesh(), seed=0)
    assert plan.dimension_mismatch([net], plan.stand_in()) == (
        "points 'x' have shape (3, 1) but the network 'net' expects in_features=2"
    )


# -------------------------------------------------------------------- term book
def test_term_book_checks_losses_and_collects_trackers():
    book = TermBook(single=False)
    nets_seen = []

    def losses(nets, batch):
        nets_seen.append(nets)
        book.track("size", batch["x"].shape[0])
        return {"b": jnp.sum(batch["x"]), "a": jnp.asarray([[2.0]])}

    values, tracked = book.losses(losses, ["m0", "m1"], {"x": jnp.ones((3, 1))})
    assert list(values) == ["b", "a"] and float(values["b"]) == 3.0 and values["a"].shape == ()
    assert float(tracked["size"]) == 3.0
    assert nets_seen[-1] == ("m0", "m1")  # several networks: a tuple
    book.track("ignored", 1.0)  # outside a hook: nothing happens
    assert not book.in_step and book.live_component("x") is None

    with pytest.raises(ValueError, match="loss 'v' must be a scalar, got shape \\(3,\\)"):
        book.losses(lambda n, b: {"v": jnp.ones(3)}, ["m"], {})
    with pytest.raises(TypeError, match="non-empty dict of scalars"):
        book.losses(lambda n, b: {}, ["m"], {})
    with pytest.raises(ValueError, match="tracker 't' must be a scalar"):
        book.losses(lambda n, b: book.track("t", jnp.ones(2)), ["m"], {})


def test_term_book_weigh_and_residuals():
    book = TermBook(single=True)

    def weigh(balancer, losses, sources):
        book.track("w0", losses[0] * 2)
        return jnp.ones_like(losses)

    weights, tracked = book.weigh(weigh, None, jnp.array([1.5, 2.0]))
    assert weights.tolist() == [1.0, 1.0] and float(tracked["w0"]) == 3.0
    book.term_names = ("pde", "bc")
    with pytest.raises(ValueError, match="missing \\['bc'\\]"):
        book.residuals(lambda net, batch: {"pde": batch["x"][:, 0]}, ["m"], {"x": jnp.ones((2, 1))})


def test_term_book_discovers_names_in_the_order_given():
    book = TermBook(single=True)

    def evaluate(x):
        return {"zeta": x, "alpha": x}, {"t2": x, "t1": x}, {"t1": x, "w": x}

    book.discover(evaluate, jnp.ones(()))
    assert book.term_names == ("zeta", "alpha")  # not sorted
    assert book.tracker_names == ("t2", "t1", "w")

    def broken(x):
        raise TypeError("bad shapes")

    with pytest.raises(ValueError, match="bad shapes\\); possibly because the points"):
        book.discover(broken, jnp.ones(()), diagnose=lambda: "the points")
    with pytest.raises(TypeError, match="bad shapes"):
        book.discover(broken, jnp.ones(()))


# -------------------------------------------------------------- run checkpoints
def test_run_checkpoints_without_a_directory_do_nothing():
    store = RunCheckpoints(None, keep=2)
    assert not store.enabled and store.latest_step() is None and not store.due_final_save(3)
    with store.lock():
        pass
    assert store.restore(lambda: None, current_step=0, seed=0, term_names=()) is None


def test_run_checkpoints_save_and_restore_a_state(tmp_path):
    trainer = Square(linear_net(), points={"x": jnp.ones((4, 1))}, progress=False)
    trainer.fit(3)
    state = trainer.initial_state()
    history = History()
    history.append(3, {"loss/total": 0.25})
    store = RunCheckpoints(str(tmp_path), keep=2)
    assert store.due_final_save(3)
    store.save(3, state, seed=0, term_names=trainer.term_names, history=history)
    store.wait()
    assert store.latest_step() == 3 and not store.due_final_save(3)

    def fresh():
        return Square(linear_net(seed=1), points={"x": jnp.ones((4, 1))}, progress=False)

    other = fresh()
    reader = RunCheckpoints(str(tmp_path), keep=2)
    restored, restored_history = reader.restore(
        other.initial_state, current_step=0, seed=0, term_names=trainer.term_names
    )
    assert int(restored.step) == int(state.step) == 3 and reader.saved_step == 3
    for a, b in zip(jax.tree.leaves(restored.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert restored_history["loss/total"].tolist() == [0.25]
    # Once per run: a second restore without a step finds nothing to do.
    assert reader.restore(other.initial_state, current_step=0, seed=0, term_names=()) is None
    with pytest.raises(CheckpointMismatch, match="seed=0, this trainer has seed=5"):
        RunCheckpoints(str(tmp_path), 2).restore(
            other.initial_state, current_step=0, seed=5, term_names=trainer.term_names
        )
    with pytest.raises(CheckpointMismatch, match="loss terms \\['data', 'small'\\]"):
        RunCheckpoints(str(tmp_path), 2).restore(
            other.initial_state, current_step=0, seed=0, term_names=("data",)
        )
    with pytest.raises(ValueError, match="step=7 is not a checkpoint"):
        RunCheckpoints(str(tmp_path), 2).restore(
            other.initial_state, current_step=0, seed=0, term_names=(), step=7
        )
    # A run past step 0 does not restore by itself.
    assert (
        RunCheckpoints(str(tmp_path), 2).restore(
            other.initial_state, current_step=1, seed=0, term_names=trainer.term_names
        )
        is None
    )


# ---------------------------------------------------------------------- trained
def test_trained_follows_each_networks_optimizer():
    net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    trained = Trained((net,), None, ComponentSlots({}))
    with pytest.raises(RuntimeError, match="has no optimizer"):
        trained.refresh()
    net.optimizer(optax.adam(1e-2))
    trained.refresh()
    key = trained.compile_key()
    inits = []

    def init(i, carry):
        inits.append(i)
        return trained.specs[i].tx.init(carry.params[i])

    carry = trained.initial(4, jax.random.PRNGKey(0), 2, init)
    assert inits == [0] and int(carry.step) == 4 and carry.bad_terms.shape == (4,)
    assert np.isnan(np.asarray(carry.term_grad_norms)).all()
    trained.initial(4, jax.random.PRNGKey(0), 2, init)
    assert inits == [0]  # the optimizer state is kept
    net.optimizer(optax.sgd(1e-2))  # a new phase: a new key and a fresh state
    trained.refresh()
    assert trained.compile_key() != key
    trained.initial(4, jax.random.PRNGKey(0), 2, init)
    assert inits == [0, 0]


def test_trained_writes_a_state_back_and_refuses_a_shared_schedule():
    net = linear_net()
    trained = Trained((net,), ReLoBRaLo(2), ComponentSlots({}))
    trained.refresh()
    carry = trained.initial(0, jax.random.PRNGKey(0), 2, lambda i, c: ())
    params = jax.tree.map(lambda a: a + 1.0, carry.params)
    before = np.asarray(net.module.kernel[...])
    trained.store(carry.replace(params=params))
    np.testing.assert_allclose(np.asarray(net.module.kernel[...]), before + 1.0)

    shared = DLRS(lr0=1e-3, window=3)
    a, b = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0))), jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(1)))
    a.optimizer(optax.adam(1)).scale(shared)
    b.optimizer(optax.adam(1)).scale(shared)
    with pytest.raises(ValueError, match="its own loss-adaptive schedule"):
        Trained((a, b), None, ComponentSlots({})).refresh()


# ----------------------------------------------------------------- step builder
def test_step_builder_compiles_once_per_optimizer():
    net = linear_net()
    trainer = Square(net, points={"x": jnp.ones((4, 1))}, progress=False)
    builder = trainer.step_builder
    assert builder.check() == ("data", "small")
    first = builder.compile()
    assert builder.compile() is first
    net.optimizer(optax.sgd(1e-2))
    assert builder.compile() is not first
    with pytest.raises(ValueError, match="expected num_losses=3 losses, got 2"):
        Square(linear_net(), points={"x": jnp.ones((4, 1))}, balancer=ReLoBRaLo(3)).check()


# ----------------------------------------------------------------- chunk sizes
def test_chunks_end_at_the_first_boundary():
    assert next_boundary(0, 1000, 100, None, None) == 100
    assert next_boundary(120, 1000, 100, 50, None) == 150
    assert next_boundary(120, 1000, 100, 50, 7) == 127
    assert next_boundary(990, 995, 100, None, None) == 995
    assert fit_target(10, None, 5) == 15 and fit_target(None, 3, 5) == 5
    assert check_fit(4, None) == (4, None) and check_fit(None, 0) == (None, 0)
    with pytest.raises(TypeError, match="exactly one of steps and until"):
        check_fit(None, None)
    with pytest.raises(ValueError, match="until must be >= 0, got -1"):
        check_fit(None, -1)


def test_components_take_the_causal_weights_in_their_slot():
    causal = jno.nnx.CausalWeights(4)
    assert with_causal({"x": None}, causal) == {"x": None, "causal": causal}
    with pytest.raises(ValueError, match="give the causal weights once"):
        with_causal({"causal": causal}, causal)
    with pytest.raises(TypeError, match="causal must be a jno.nnx.CausalWeights"):
        with_causal(None, object())
