"""The typed step state and the generic slot for stateful loss components."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno.nnx.networks.mlp import MLP
from jno.nnx.state import BalancerState
from jno.train import Trainer
from jno.train.checkpoint import Checkpointer
from jno.train.components import ComponentSlots
from jno.train.state import StepState

X = jnp.linspace(0.0, 1.0, 16)[:, None]
ENDS = jnp.array([[0.0], [1.0]])


class RunningMean(nnx.Module):
    """A component: the running mean of the residual loss it is shown, and a count."""

    def __init__(self):
        self.count = BalancerState(jnp.zeros((), jnp.int32))
        self.mean = BalancerState(jnp.zeros(()))

    def observe(self, loss):
        n = self.count[...] + 1
        self.mean[...] = self.mean[...] + (loss - self.mean[...]) / n
        self.count[...] = n
        return loss

    def trackers(self):
        return {"count": self.count[...].astype(jnp.float32), "mean": self.mean[...]}


class Poisson1D(Trainer):
    def losses(self, net, batch):
        r = jno.ops.laplacian(net, batch["x"]) + jnp.pi**2 * jnp.sin(jnp.pi * batch["x"][:, 0])
        pde = jnp.mean(r**2)
        observer = self.component("observer")
        if observer is not None:
            pde = observer.observe(pde)
        return {"pde": pde, "bc": jnp.mean(net(ENDS) ** 2)}


def build(checkpoint_dir=None, observer=True, **kwargs):
    net = jno.nn(MLP(1, [8], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1e-2))
    if observer:
        kwargs["components"] = {"observer": RunningMean()}
    return Poisson1D(
        net,
        points={"x": X},
        log_every=2,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        **kwargs,
    )


def test_a_component_updates_once_per_step_and_is_logged():
    trainer = build()
    history = trainer.fit(6)
    observer = trainer.component("observer")
    assert int(observer.count[...]) == 6  # the losses run twice per trace, once per step
    np.testing.assert_allclose(history["tracker/observer_count"], [2.0, 4.0, 6.0])
    # The running mean of the logged PDE losses (the mean over each 2-step interval).
    np.testing.assert_allclose(
        float(observer.mean[...]), float(np.mean(history["loss/pde"])), rtol=1e-5
    )


def test_a_component_is_checkpointed_and_resumes_exactly(tmp_path):
    straight = build()
    straight.fit(6)
    first = build(str(tmp_path), checkpoint_every=3)
    first.fit(3)
    resumed = build(str(tmp_path), checkpoint_every=3)
    resumed.fit(3)
    assert resumed.step == 6
    a, b = straight.component("observer"), resumed.component("observer")
    assert int(b.count[...]) == 6
    assert float(a.mean[...]) == float(b.mean[...])
    for x, y in zip(
        jax.tree.leaves(nnx.state(straight.nets[0].module)),
        jax.tree.leaves(nnx.state(resumed.nets[0].module)),
    ):
        np.testing.assert_array_equal(x, y)


def test_the_checkpoint_layout_is_derived_from_the_step_state():
    trainer = build()
    trainer.fit(1)
    carry = trainer.initial_state()
    assert isinstance(carry, StepState)
    saved = carry.saved()
    assert set(saved) == {*StepState.saved_names(), "observer"}
    assert "key" not in saved and "diverged" not in saved
    back = carry.with_saved(saved)
    for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(carry)):
        np.testing.assert_array_equal(x, y)


def test_a_checkpoint_of_the_earlier_layout_restores(tmp_path):
    # Before the typed state, a checkpoint held a top-level "causal" entry (None without
    # causal weights) next to the other entries.
    source = build(observer=False)
    source.fit(4)
    state = {**source.initial_state().saved(), "causal": None}
    meta = {
        "seed": 0,
        "terms": ["pde", "bc"],
        "history": {k: v.tolist() for k, v in source.history.to_dict().items()},
    }
    ckpt = Checkpointer(tmp_path)
    ckpt.save(4, state, meta)
    ckpt.close()
    fresh = build(str(tmp_path), observer=False)
    assert fresh.restore() == 4
    for x, y in zip(
        jax.tree.leaves(nnx.state(source.nets[0].module)),
        jax.tree.leaves(nnx.state(fresh.nets[0].module)),
    ):
        np.testing.assert_array_equal(x, y)


def test_bad_components_are_refused_at_construction():
    with pytest.raises(ValueError, match="slot names"):
        build(observer=False, components={"params": RunningMean()})
    with pytest.raises(TypeError, match="must be an nnx.Module"):
        ComponentSlots({"x": object()})
    with pytest.raises(TypeError, match="components must be a dict"):
        build(observer=False, components=[RunningMean()])
    with pytest.raises(ValueError, match="causal weights once"):
        cw = jno.nnx.CausalWeights(2)
        build(observer=False, causal=cw, components={"causal": cw})


def test_fit_until_finishes_the_same_training_after_a_restart(tmp_path):
    straight = build()
    straight.fit(until=6)
    assert straight.step == 6
    straight.fit(until=4)  # already past: nothing to do
    assert straight.step == 6
    first = build(str(tmp_path), checkpoint_every=4)
    first.fit(until=4)
    again = build(str(tmp_path), checkpoint_every=4)  # the script, run a second time
    again.fit(until=6)
    assert again.step == 6
    for x, y in zip(
        jax.tree.leaves(nnx.state(straight.nets[0].module)),
        jax.tree.leaves(nnx.state(again.nets[0].module)),
    ):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(TypeError, match="exactly one of steps and until"):
        build().fit(3, until=4)
    with pytest.raises(TypeError, match="exactly one of steps and until"):
        build().fit()
    with pytest.raises(ValueError, match="until"):
        build().fit(until=-1)


def test_progress_goes_to_stderr_never_stdout(capsys):
    trainer = build(observer=False)
    trainer.progress = None  # the default: plain lines when stderr is not a terminal
    trainer.fit(4)
    out, err = capsys.readouterr()
    assert out == ""
    assert "step 2/4" in err and "step 4/4" in err
