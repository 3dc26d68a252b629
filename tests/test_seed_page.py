"""The seed page (``shared/seed/schedules-seed.txt``), call by call, in its order.

Every call of the page runs on a small 1-D Poisson problem (``-u'' = pi^2 sin(pi x)`` on
[0, 1], ``u(0) = u(1) = 0``) through ``jno.core``; each result is checked against a
hand computation: a plain JAX + optax loop, the schedule formulas, or a fresh balancer
fed the losses that the run logged (``log_every=1`` logs every step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import jno
from jno import LearningRateSchedule as lrs
from jno import core
from jno.domain import Interval
from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import DLRS

X_IN = np.linspace(0.0, 1.0, 26, dtype=np.float32)[1:-1, None]
X_BC = np.array([[0.0], [1.0]], np.float32)


# The reference balancers and schedules run compiled: one compilation instead of one per op.
call = nnx.jit(lambda module, *args: module(*args))


def feed(module, rows):
    """The module's outputs for each row of losses, called in order (state updates)."""
    return np.stack([np.asarray(call(module, jnp.asarray(v, jnp.float32))) for v in rows])


def pde_fn(u, x):
    return jno.ops.laplacian(u, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])


def bc_fn(u, x):
    return u(x)


def poisson(net, interior=X_IN, boundary=X_BC):
    return net.residual(pde_fn, interior, name="pde"), net.residual(bc_fn, boundary, name="bc")


def new_net():
    return jno.nn(MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))


def logged_losses(history, names=("pde", "bc")):
    return np.stack([history[f"loss/{n}"] for n in names], 1).astype(np.float32)


# ------------------------------------------- Learning Rate, then Learning Rate Schedules
def test_learning_rate_and_schedule_calls_as_written():
    # One network per call of the page, each with its own optimizer, trained together.
    nets = {
        k: jno.nn(MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)), name=k)
        for k in ("baked", "chain", "exp", "dlrs", "custom")
    }
    terms = []
    for k, net in nets.items():
        terms += [
            net.residual(pde_fn, X_IN, name=f"pde_{k}"),
            net.residual(bc_fn, X_BC, name=f"bc_{k}"),
        ]
    nets["baked"].optimizer(optax.adam(1e-3))
    nets["chain"].optimizer(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)))
    nets["exp"].optimizer(optax.adam(1)).scale(lrs.exponential(1e-3, 0.9, 2000, 1e-5))
    nets["dlrs"].optimizer(optax.adam(1)).scale(jno.fn.adaptive.dlrs(lr0=1e-3, window=10))
    decay = lrs(lambda epoch, losses: 1e-4 * (0.9 ** (epoch / 500)))
    nets["custom"].optimizer(optax.adam(1)).scale(decay)

    graphdef, params = nnx.split(nets["baked"].module, nnx.Param)

    def loss(p):
        m = nnx.merge(graphdef, p)
        return jnp.mean(pde_fn(m, X_IN) ** 2) + jnp.mean(bc_fn(m, X_BC) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    start = [np.array(p) for p in jax.tree.leaves(params)]
    crux = core(terms, log_every=1, progress=False)
    crux.solve(1)
    # Every network starts from the same parameters; Adam's first step is -lr * sign(g).
    rates = {"baked": 1e-3, "chain": 1e-3, "exp": 1e-3, "dlrs": 1e-3, "custom": 1e-4}
    for k, net in nets.items():
        moved = jax.tree.leaves(nnx.state(net.module, nnx.Param))
        for p1, p0, g in zip(moved, start, jax.tree.leaves(grads)):
            big = np.abs(np.asarray(g)) > 1e-4
            step = np.asarray(p1 - p0)[big]
            np.testing.assert_allclose(step, -rates[k] * np.sign(np.asarray(g)[big]), rtol=1e-3)
    history = crux.solve(7)

    assert "lr/baked" not in history and "lr/chain" not in history  # rates baked into tx
    t = history.steps - 1  # the rate logged at step s is the one used by step s - 1
    np.testing.assert_allclose(history["lr/exp"], 1e-3 * 0.9 ** (t / 2000), rtol=1e-6)
    np.testing.assert_allclose(history["lr/custom"], 1e-4 * 0.9 ** (t / 500), rtol=1e-6)
    # DLRS sees the per-term losses of the step and works on their sum.
    reference = DLRS(lr0=1e-3, window=10)
    names = [f"{p}_{k}" for k in nets for p in ("pde", "bc")]
    expected = [float(call(reference, 0, v)) for v in logged_losses(history, names)]
    np.testing.assert_allclose(history["lr/dlrs"], expected, rtol=1e-6)
    assert len(set(np.round(expected, 9))) > 1  # the rate moved

    # The Python `if` of the page works called eagerly; inside the compiled step it
    # meets a traced value, and the error says to use jnp.where.
    plateau = lrs(lambda epoch, losses: 1e-3 if losses[0] > 1e-2 else 1e-5)
    assert float(plateau(0, jnp.array([0.5, 0.0]))) == pytest.approx(1e-3)
    assert float(plateau(0, jnp.array([1e-3, 0.0]))) == pytest.approx(1e-5)
    nets["custom"].optimizer(optax.adam(1)).scale(plateau)
    with pytest.raises(TypeError, match=r"jnp\.where"):
        crux.solve(1)


def test_built_in_factories_as_written():
    t = np.array([0, 250, 499, 500, 1000, 2999, 3000, 5000, 9000])
    lr = lambda s: np.array([float(s(int(k))) for k in t])  # noqa: E731
    np.testing.assert_allclose(lr(lrs.constant(1e-3)), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(lr(lrs(1e-3)), 1e-3, rtol=1e-6)
    exp = lrs.exponential(lr0=1e-3, decay_rate=0.9, decay_steps=1000, lr_end=1e-5)
    np.testing.assert_allclose(lr(exp), np.maximum(1e-5, 1e-3 * 0.9 ** (t / 1000)), rtol=1e-6)
    cos = lrs.cosine(total_steps=5000, lr0=1e-3, lr_end=1e-6)
    cosine = lambda f: 1e-6 + (1e-3 - 1e-6) * (1 + np.cos(np.pi * np.minimum(f, 1))) / 2  # noqa: E731
    np.testing.assert_allclose(lr(cos), cosine(t / 5000), rtol=1e-5)
    warm = lrs.warmup_cosine(total_steps=5000, warmup_steps=500, lr0=1e-3, lr_end=1e-6)
    expected = np.where(t < 500, 1e-3 * (t + 1) / 500, cosine((t - 500) / 4500))
    np.testing.assert_allclose(lr(warm), expected, rtol=1e-5)
    pw = lrs.piecewise_constant(boundaries=[1000, 3000], values=[1e-3, 5e-4, 1e-4])
    np.testing.assert_allclose(
        lr(pw), np.select([t < 1000, t < 3000], [1e-3, 5e-4], 1e-4), rtol=1e-6
    )
    # "All factories - built-in and custom - accept min_lr and max_lr"
    clamped = lrs.exponential(1e-3, 0.5, 100, min_lr=2e-4, max_lr=5e-4)
    np.testing.assert_allclose(lr(clamped), np.clip(1e-3 * 0.5 ** (t / 100), 2e-4, 5e-4))
    custom = lrs(lambda epoch, losses: 1e-2 / (1 + epoch), min_lr=1e-5, max_lr=1e-3)
    np.testing.assert_allclose(lr(custom), np.clip(1e-2 / (1 + t), 1e-5, 1e-3), rtol=1e-6)


# ------------------------------------------------------------------ Adaptive Loss Weights
def test_relobralo_weights_and_trackers_in_tensorboard(tmp_path):
    net = new_net()
    net.optimizer(optax.adam(1)).scale(lrs.exponential(1e-3, 0.9, 2000, 1e-5))
    domain = Interval(0.0, 1.0)
    pde, bc = poisson(net, domain.interior(24), domain.boundary(2))
    w0, w1 = jno.fn.adaptive.relobralo(
        [pde, bc],
        alpha=0.99,  # exponential moving average factor
        tau=0.1,  # temperature for softmax normalisation
        expected_rho=0.999,  # target ratio for balancing
        seed=42,
    )
    with pytest.raises(TypeError, match="no value outside the training step"):
        float(w0)
    logdir = tmp_path / "runs" / "poisson"
    crux = core(
        [w0 * pde, w1 * bc, w0.tracker(), w1.tracker()],
        logdir=str(logdir),
        log_every=1,
        progress=False,
    )
    history = crux.solve(12)

    reference = ReLoBRaLo(2, alpha=0.99, tau=0.1, expected_rho=0.999, seed=42)
    expected = feed(reference, logged_losses(history))
    weights = np.stack([history["weight/pde"], history["weight/bc"]], 1)
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    assert not np.allclose(weights[-1], 1.0, atol=1e-4)
    np.testing.assert_array_equal(history["tracker/w_pde"], history["weight/pde"])
    np.testing.assert_array_equal(history["tracker/w_bc"], history["weight/bc"])

    events = EventAccumulator(str(logdir))
    events.Reload()
    for tag in ("weight/pde", "weight/bc", "tracker/w_pde", "tracker/w_bc", "lr", "loss/pde"):
        logged = events.Scalars(tag)
        np.testing.assert_array_equal([e.step for e in logged], np.arange(1, 13))
        np.testing.assert_allclose([e.value for e in logged], history[tag], rtol=1e-6)
    tb_lr = np.array([e.value for e in events.Scalars("lr")])
    np.testing.assert_allclose(tb_lr, 1e-3 * 0.9 ** (np.arange(12) / 2000), rtol=1e-6)


def test_available_balancers_and_modes():
    net = new_net()
    net.optimizer(optax.adam(1e-3))
    domain = Interval(0.0, 1.0)
    pde, bc = poisson(net, domain.interior(24), domain.boundary(2))
    sa = jno.fn.adaptive.softadapt([pde, bc], mode="minmax")
    dw = jno.fn.adaptive.dwa([pde, bc], mode="l2")
    lb = jno.fn.adaptive.lbpinns_loss_balancing(
        [pde, bc],
        init_s=0.0,  # initial log-variance (per loss, or scalar broadcast)
        lr_s=1e-2,  # learning rate for the log-variance parameters
    )
    rl = jno.fn.adaptive.rlw([pde, bc], mode="raw")
    groups = {"softadapt": sa, "dwa": dw, "lbpinns": lb, "rlw": rl}
    loss = [w[0] * pde + w[1] * bc for w in groups.values()]
    trackers = [
        w[i].tracker(f"{g}_{t}") for g, w in groups.items() for i, t in enumerate(["pde", "bc"])
    ]
    history = core(loss + trackers, log_every=1, progress=False).solve(8)

    losses = logged_losses(history)
    references = {
        "softadapt": SoftAdapt(2, mode="minmax"),
        "dwa": DWA(2, mode="l2"),
        "lbpinns": LbPINNsLossBalancing(2, init_s=0.0, lr_s=1e-2),
        "rlw": RLW(2, mode="raw"),
    }
    total = 0.0
    for name, ref in references.items():
        expected = feed(ref, losses)
        got = np.stack([history[f"tracker/{name}_pde"], history[f"tracker/{name}_bc"]], 1)
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=name)
        assert not np.allclose(got[2:], 1.0, atol=1e-5), name
        total = total + got
    # One coefficient per term: the sum of the four balancers' weights.
    np.testing.assert_allclose(history["weight/pde"], total[:, 0], rtol=1e-6)
    np.testing.assert_allclose(history["weight/bc"], total[:, 1], rtol=1e-6)
    assert math.isclose(
        history["loss/total"][-1], float(np.dot(total[-1], losses[-1])), rel_tol=1e-5
    )
