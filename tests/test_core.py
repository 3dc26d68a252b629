"""``jno.core``: equivalence with a Trainer, trackers, several balancers, inverse problem."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import Crux, core, data, residual
from jno.domain import Interval
from jno.nnx.balancers import RLW, ReLoBRaLo, SoftAdapt
from jno.nnx.networks.mlp import MLP
from jno.train import Trainer

DOMAIN = Interval(0.0, 1.0)
STEPS = 16


# The reference balancers, schedules and values run compiled: one compilation instead of
# one per op.
call = nnx.jit(lambda module, *args: module(*args))


def feed(module, rows):
    """The module's outputs for each row of losses, called in order (state updates)."""
    return np.stack([np.asarray(call(module, jnp.asarray(v, jnp.float32))) for v in rows])


def source(x):
    return jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])


def pde_fn(u, x):
    return jno.ops.laplacian(u, x) + source(x)


def bc_fn(u, x):
    return u(x)


def points():
    # Resampled interior points: the crux and the trainer must draw the same ones.
    return DOMAIN.interior(32, resample=True), DOMAIN.boundary(2)


def new_net(**kwargs):
    net = jno.nn(MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)), **kwargs)
    net.optimizer(optax.adam(1e-2))
    return net


class Poisson(Trainer):
    def losses(self, net, batch):
        return {
            "pde": jnp.mean(pde_fn(net, batch["interior"]) ** 2),
            "bc": jnp.mean(bc_fn(net, batch["boundary"]) ** 2),
        }


def relobralo_crux(trackers: bool, **kwargs):
    net = new_net()
    interior, boundary = points()
    pde = net.residual(pde_fn, interior, name="pde")
    bc = net.residual(bc_fn, boundary, name="bc")
    w_pde, w_bc = jno.fn.adaptive.relobralo([pde, bc], expected_rho=0.5, seed=3)
    extra = [w_pde.tracker(), w_bc.tracker(), bc.tracker()] if trackers else []
    crux = core([w_pde * pde, w_bc * bc, *extra], log_every=1, progress=False, **kwargs)
    return net, crux


def params_of(net):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(net.module, nnx.Param))]


class Runs(dict):
    """The runs the tests compare, each trained on first use: ``"trainer"`` (a Trainer
    with ReLoBRaLo), ``False`` / ``True`` (a crux without / with trackers; the first
    checkpoints into ``"checkpoints"``)."""

    def __init__(self, checkpoints: str):
        super().__init__(checkpoints=checkpoints)

    def __missing__(self, key):
        if key == "trainer":
            net = new_net()
            interior, boundary = points()
            trainer = Poisson(
                net,
                points={"interior": interior, "boundary": boundary},
                balancer=ReLoBRaLo(2, expected_rho=0.5, seed=3),
                log_every=1,
                progress=False,
            )
            self[key] = (net, trainer.fit(STEPS))
        else:
            net, crux = relobralo_crux(key, checkpoint_dir=None if key else self["checkpoints"])
            self[key] = (net, crux.solve(STEPS), crux)
        return self[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return Runs(str(tmp_path_factory.mktemp("ck")))


def test_core_with_relobralo_equals_trainer_with_embedded_relobralo(runs):
    (net_t, hist_t), (net_c, hist_c, _) = runs["trainer"], runs[False]
    for a, b in zip(params_of(net_c), params_of(net_t)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for tag in ("loss/total", "loss/pde", "weight/pde", "weight/bc"):
        np.testing.assert_allclose(hist_c[tag], hist_t[tag], rtol=1e-5)
    assert not np.allclose(hist_c["weight/pde"], 1.0)


@pytest.mark.default_xla  # exact equality of two programs
def test_trackers_log_the_applied_weights_and_change_nothing(runs):
    (net_plain, hist_plain, _), (net_tr, hist_tr, crux) = runs[False], runs[True]
    for a, b in zip(params_of(net_tr), params_of(net_plain)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hist_tr["loss/total"], hist_plain["loss/total"])
    np.testing.assert_array_equal(hist_tr["tracker/w_pde"], hist_tr["weight/pde"])
    np.testing.assert_array_equal(hist_tr["tracker/w_bc"], hist_tr["weight/bc"])
    np.testing.assert_array_equal(hist_tr["tracker/bc"], hist_tr["loss/bc"])
    # The weights applied are those of a ReLoBRaLo fed the logged losses, step by step.
    reference = ReLoBRaLo(2, expected_rho=0.5, seed=3)
    losses = np.stack([hist_tr["loss/pde"], hist_tr["loss/bc"]], 1).astype(np.float32)
    expected = feed(reference, losses)
    np.testing.assert_allclose(hist_tr["tracker/w_pde"], expected[:, 0], rtol=1e-5)
    np.testing.assert_allclose(hist_tr["tracker/w_bc"], expected[:, 1], rtol=1e-5)
    # The balancer module of the placeholders ran once per step and holds the state.
    module = crux.groups[0].module
    assert int(module.calls[...]) == STEPS
    np.testing.assert_allclose(np.asarray(module.last_weights[...]), expected[-1], rtol=1e-5)


def test_compiled_step_has_no_host_callbacks(runs):
    crux = runs[True][2]
    compiled = crux.compile()
    carry = crux.initial_state()
    text = compiled._run.lower(carry, compiled.metrics.empty(), crux.fixed_points(), 3).as_text()
    assert "callback" not in text.lower() and "stablehlo.while" in text


def test_a_new_crux_restores_parameters_and_balancer_state(runs):
    net_ref, _, crux_ref = runs[False]
    net, crux = relobralo_crux(False, checkpoint_dir=runs["checkpoints"])
    assert crux.restore() == STEPS
    for a, b in zip(params_of(net), params_of(net_ref)):
        np.testing.assert_array_equal(a, b)
    restored, trained = crux.groups[0].module, crux_ref.groups[0].module
    assert int(restored.calls[...]) == STEPS
    for name in ("last_weights", "initial_losses", "prev_losses", "key"):
        np.testing.assert_array_equal(getattr(restored, name)[...], getattr(trained, name)[...])
    np.testing.assert_array_equal(crux.history["weight/pde"], runs[False][1]["weight/pde"])


def test_balancers_over_overlapping_terms_run_in_dependency_order():
    net = new_net()
    interior, boundary = points()[0], np.array([[0.0], [1.0]], np.float32)
    pde = net.residual(pde_fn, interior, name="pde")
    bc = net.residual(bc_fn, boundary, name="bc")
    x_val = np.linspace(0, 1, 9, dtype=np.float32)[:, None]
    val = net.residual(lambda u, x: u(x)[:, 0] - jnp.sin(jnp.pi * x[:, 0]), x_val, name="val")
    w1 = jno.fn.adaptive.relobralo([pde, bc], expected_rho=0.5, seed=1)
    w2 = jno.fn.adaptive.softadapt([w1[0] * pde, bc], beta=0.5)  # uses relobralo's weights
    crux = core(
        [
            w2[1] * bc + 0.5 * bc,  # softadapt's weight comes first in the list
            w1[0] * pde,
            2 * w1[1] * w2[1] * bc,
            w2[0].tracker("sa_pde"),
            (w1[1] * bc).tracker("weighted_bc"),
            val.tracker(),
        ],
        balancer=RLW(3, seed=5),  # one more weight per loss entry, on the entries' values
        log_every=1,
        progress=False,
    )
    assert [type(g.module).__name__ for g in crux.groups] == ["ReLoBRaLo", "SoftAdapt", "RLW"]
    assert crux.term_names == ("bc", "pde")
    crux.solve(5)
    before = float(crux.eval(val))
    history = crux.solve(1)

    assert "loss/val" not in history and "weight/val" not in history
    assert history["tracker/val"][-1] == pytest.approx(before, rel=1e-5)
    ref1, ref2, ref3 = (
        ReLoBRaLo(2, expected_rho=0.5, seed=1),
        SoftAdapt(2, beta=0.5),
        RLW(3, seed=5),
    )
    for i, (l_bc, l_pde) in enumerate(zip(history["loss/bc"], history["loss/pde"])):
        l_bc, l_pde = np.float32(l_bc), np.float32(l_pde)
        a = np.asarray(call(ref1, jnp.array([l_pde, l_bc])))
        b = np.asarray(call(ref2, jnp.array([a[0] * l_pde, l_bc])))
        entries = [(b[1] + 0.5) * l_bc, a[0] * l_pde, 2 * a[1] * b[1] * l_bc]
        r = np.asarray(call(ref3, jnp.array(entries, jnp.float32)))
        expected_bc = r[0] * (b[1] + 0.5) + r[2] * 2 * a[1] * b[1]
        assert history["weight/pde"][i] == pytest.approx(r[1] * a[0], rel=1e-5)
        assert history["weight/bc"][i] == pytest.approx(expected_bc, rel=1e-5)
        assert history["tracker/sa_pde"][i] == pytest.approx(b[0], rel=1e-5)
        assert history["tracker/weighted_bc"][i] == pytest.approx(a[1] * l_bc, rel=1e-5)
    assert [int(g.module.calls[...]) for g in crux.groups] == [6, 6, 6]

    # eval: terms and expressions on their own or given points, networks, functions.
    x = np.linspace(0.1, 0.9, 7, dtype=np.float32)[:, None]
    references = nnx.jit(lambda u, x, b: (jnp.mean(pde_fn(u, x) ** 2), jnp.mean(u(b) ** 2), u(x)))
    pde_value, bc_value, u_x = map(np.asarray, references(net.module, x, boundary))
    np.testing.assert_allclose(crux.eval(pde, x), pde_value, rtol=1e-6)
    np.testing.assert_allclose(crux.eval(bc), bc_value, rtol=1e-6)
    np.testing.assert_allclose(
        crux.eval(pde + 2 * bc, {"pde": x}), pde_value + 2 * bc_value, rtol=1e-6
    )
    np.testing.assert_allclose(crux.eval(net, x), u_x, rtol=1e-6)
    np.testing.assert_allclose(crux.eval(lambda u, x: u(x) ** 2, x), u_x**2, rtol=1e-6)
    with pytest.raises(TypeError, match="weight placeholders"):
        crux.eval(w1[0] * pde)


def test_balancers_that_cannot_be_ordered_are_an_error():
    net = new_net()
    pde = net.residual(pde_fn, np.full((4, 1), 0.5, np.float32), name="pde")
    bc = net.residual(bc_fn, np.zeros((1, 1), np.float32), name="bc")
    w1 = jno.fn.adaptive.relobralo([pde, bc])
    w2 = jno.fn.adaptive.softadapt([w1[0] * pde, bc])
    # Make the first balancer depend on the second one's weights too: a cycle.
    w1[0].group.inputs = (w2[0] * pde, bc)
    with pytest.raises(ValueError, match="cannot be ordered"):
        core([w1[0] * pde + w2[1] * bc])


class Coefficient(nnx.Module):
    def __init__(self, value: float):
        self.k = nnx.Param(jnp.asarray(value, jnp.float32))


def test_inverse_problem_recovers_the_coefficient():
    # k u'' + 2 pi^2 sin(pi x) = 0 with u = sin(pi x): k = 2, seen only through data on u.
    u = jno.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(0)), name="u")
    k = jno.nn(Coefficient(1.0), name="k")
    u.optimizer(optax.adam(1e-2))
    k.optimizer(optax.adam(1e-2))
    pde = residual(
        lambda u, k, x: k.k[...] * jno.ops.laplacian(u, x) + 2 * source(x),
        DOMAIN.interior(64),
        nets=(u, k),
        name="pde",
    )
    x_obs = np.linspace(0, 1, 16, dtype=np.float32)[:, None]
    obs = data(u, x_obs, np.sin(np.pi * x_obs[:, 0]))
    w_pde, w_data = jno.fn.adaptive.lbpinns_loss_balancing([pde, obs], lr_s=1e-2)
    crux = core([w_pde * pde, w_data * obs], log_every=500, progress=False)
    assert [n.name for n in crux.nets] == ["u", "k"] and crux.term_names == ("pde", "data")
    history = crux.solve(2500)
    assert abs(float(k.module.k[...]) - 2.0) < 0.02
    weights = np.stack([history["weight/pde"], history["weight/data"]], 1)
    assert np.all(np.abs(np.log(weights[-1] / 0.5)) > 1.0)  # both moved far from 0.5
    assert history["loss/data"][-1] < 1e-3
    assert float(crux.eval(obs, (x_obs, np.sin(np.pi * x_obs)))) < 1e-3


def test_crux_is_a_trainer():
    assert issubclass(Crux, Trainer)
