"""Gradient-based balancers against float64 NumPy transcriptions of their formulas, on
the per-term gradients of a small tanh network: eagerly, under nnx.jit, under nnx.scan
and jax.lax.scan over split state; the NaN guard, argument errors, config and
split/merge round trips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jno.nnx.gradient_balancers import (
    GradientBalancer,
    GradNorm,
    GradNormBalancer,
    LRAnnealing,
    per_term_gradients,
)
from jno.nnx.state import BalancerState

TOL = {"rtol": 1e-5, "atol": 1e-6}
STEPS = 5

# ------------------------------------------------------------------ a tiny fixed problem

_X = jnp.asarray(np.linspace(-1.0, 1.0, 16).reshape(8, 2), jnp.float32)
_XB = jnp.asarray([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], jnp.float32)


def _init_params():
    rng = np.random.default_rng(0)
    return {
        "w1": jnp.asarray(rng.normal(size=(2, 8)), jnp.float32),
        "b1": jnp.asarray(0.1 * rng.normal(size=(8,)), jnp.float32),
        "w2": jnp.asarray(0.5 * rng.normal(size=(8, 1)), jnp.float32),
        "b2": jnp.zeros((1,), jnp.float32),
    }


def _net(p, x):
    return (jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]


def loss_vector(p):
    """Three terms of very different scales: a residual, a boundary and a data term."""
    u = _net(p, _X)
    return jnp.stack(
        [
            jnp.mean((u - jnp.sin(jnp.pi * _X[:, 0])) ** 2),
            10.0 * jnp.mean(_net(p, _XB) ** 2),
            0.01 * jnp.mean((u - 1.0) ** 2),
        ]
    )


def _trajectory():
    """Params after 0..STEPS-1 gradient steps on the summed loss; losses and (N, P) grads."""
    p = _init_params()
    params, losses, jacs = [], [], []
    jac_fn = jax.jit(jax.jacrev(loss_vector))
    for _ in range(STEPS):
        params.append(p)
        losses.append(np.asarray(loss_vector(p)))
        jacs.append(jac_fn(p))
        p = jax.tree.map(lambda a, j: a - 0.3 * j.sum(axis=0), p, jacs[-1])
    grads = np.stack([np.asarray(per_term_gradients(j, 3)) for j in jacs])
    return params, jacs, np.stack(losses), grads


PARAMS, JACS, LOSSES, GRADS = _trajectory()
L64, G64 = LOSSES.astype(np.float64), GRADS.astype(np.float64)

# ------------------------------------------------------------------ NumPy references


def ref_gnb(ls, gs, momentum, eps=1e-8):
    w, out = np.ones(gs.shape[1]), []
    for g in gs:
        n = np.linalg.norm(g, axis=1)
        w = momentum * w + (1 - momentum) * n.mean() / (n + eps)
        out.append(w)
    return np.stack(out)


def ref_lra(ls, gs, reference, beta, weighted, eps=1e-8):
    lam, out = np.ones(gs.shape[1]), []
    for g in gs:
        denom = np.abs(g).mean(axis=1) * (lam if weighted else 1.0)
        lam = (1 - beta) * lam + beta * np.abs(g[reference]).max() / (denom + eps)
        lam[reference] = 1.0
        out.append(lam)
    return np.stack(out)


def ref_gradnorm(ls, gs, alpha, lr, mode="raw", eps=1e-8):
    n_terms = gs.shape[1]
    w, m, v, out, x0 = np.ones(n_terms), np.zeros(n_terms), np.zeros(n_terms), [], None
    for t, (x, g) in enumerate(zip(ls, gs), start=1):
        if mode == "l2":
            x = x / (np.linalg.norm(x) + eps)
        x0 = x if x0 is None else x0
        n = np.linalg.norm(g, axis=1)
        gw = w * n
        ratio = x / (x0 + eps)
        target = gw.mean() * (ratio / (ratio.mean() + eps)) ** alpha
        grad = np.sign(gw - target) * n
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        w = np.maximum(w - lr * step, 1e-6)
        w = n_terms * w / w.sum()
        out.append(w)
    return np.stack(out)


CASES = {  # name: (balancer factory, reference, reference arguments after ls, gs)
    "gradnorm_balancer": (lambda: GradNormBalancer(3, momentum=0.6), ref_gnb, (0.6,)),
    "lra": (
        lambda: LRAnnealing(3, reference=0, beta=0.9, weighted_gradients=False),
        ref_lra,
        (0, 0.9, False),
    ),
    "lra_weighted_ref1": (
        lambda: LRAnnealing(3, reference=1, beta=0.5, weighted_gradients=True),
        ref_lra,
        (1, 0.5, True),
    ),
    "gradnorm_alpha0": (lambda: GradNorm(3, alpha=0.0, lr=0.05), ref_gradnorm, (0.0, 0.05)),
    "gradnorm_alpha1.5": (lambda: GradNorm(3, alpha=1.5, lr=0.05), ref_gradnorm, (1.5, 0.05)),
    "gradnorm_l2": (
        lambda: GradNorm(3, alpha=1.5, lr=0.05, mode="l2"),
        ref_gradnorm,
        (1.5, 0.05, "l2"),
    ),
}


def expected_weights(case):
    _, ref, args = CASES[case]
    return ref(L64, G64, *args)


# ------------------------------------------------------------------ runners


def run_eager(b):
    """Eager calls with the jacrev output pytree of each parameter set."""
    return np.stack([b(jnp.asarray(x), j) for x, j in zip(LOSSES, JACS)])


@nnx.jit
def _jit_step(b, p):
    return b(loss_vector(p), jax.jacrev(loss_vector)(p))


def run_jit(b):
    """One compiled step that computes losses and per-term gradients itself."""
    return np.stack([_jit_step(b, p) for p in PARAMS])


@nnx.jit
def _scan(b, ls, gs):
    @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))
    def body(b, losses, g):
        return b, b(losses, g)

    return body(b, ls, gs)[1]


def run_scan(b):
    """The (N, P) matrices of the whole trajectory scanned in one program."""
    return np.asarray(_scan(b, jnp.asarray(LOSSES), jnp.asarray(GRADS)))


def run_lax_scan(b):
    """jax.lax.scan over the split state, merging the balancer inside the body."""
    graphdef, state = nnx.split(b)

    @jax.jit
    def run(state, ls, gs):
        def body(state, xs):
            bal = nnx.merge(graphdef, state)
            w = bal(*xs)
            return nnx.split(bal)[1], w

        return jax.lax.scan(body, state, (ls, gs))

    state, w = run(state, jnp.asarray(LOSSES), jnp.asarray(GRADS))
    nnx.update(b, state)
    return np.asarray(w)


@pytest.mark.parametrize("runner", [run_eager, run_jit, run_scan, run_lax_scan])
@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_match_formula(case, runner):
    b = CASES[case][0]()
    got = runner(b)
    expected = expected_weights(case)
    assert got.dtype == np.float32 and got.shape == (STEPS, 3)
    np.testing.assert_allclose(got, expected, **TOL)
    np.testing.assert_allclose(b.last_weights[...], expected[-1], **TOL)
    assert int(b.calls[...]) == STEPS
    # The trajectory is not trivial: the weights move away from ones and between calls.
    assert np.abs(expected - 1).max() > 1e-2 and np.abs(np.diff(expected, axis=0)).max() > 1e-4


def test_update_every_pattern_with_nnx_cond():
    """Update on every second step of one scanned program, reuse last_weights otherwise."""
    b = GradNorm(3, alpha=1.5, lr=0.05)

    @nnx.jit
    def run(b, ls, gs):
        @nnx.scan(in_axes=(nnx.Carry, 0, 0, 0), out_axes=(nnx.Carry, 0))
        def body(b, step, losses, g):
            update, reuse = (lambda b, x, g: b(x, g)), (lambda b, x, g: b.last_weights[...])
            return b, nnx.cond(step % 2 == 0, update, reuse, b, losses, g)

        return body(b, jnp.arange(STEPS), ls, gs)[1]

    got = np.asarray(run(b, jnp.asarray(LOSSES), jnp.asarray(GRADS)))
    ref = ref_gradnorm(L64[::2], G64[::2], 1.5, 0.05)
    np.testing.assert_allclose(got, np.repeat(ref, 2, axis=0)[:STEPS], **TOL)
    assert int(b.calls[...]) == len(ref)


def test_vmap_over_split_state():
    graphdef, state = nnx.split(GradNorm(3, alpha=1.5, lr=0.05))
    states = jax.tree.map(lambda a: jnp.stack([a, a]), state)
    gs = jnp.stack([jnp.asarray(GRADS[0]), 2.0 * jnp.asarray(GRADS[1])])

    @jax.jit
    @jax.vmap
    def call(state, g):
        return nnx.merge(graphdef, state)(jnp.asarray(LOSSES[0]), g)

    got = np.asarray(call(states, gs))
    for i in range(2):
        np.testing.assert_allclose(
            got[i], ref_gradnorm(L64[:1], np.asarray(gs[i : i + 1]), 1.5, 0.05)[0], **TOL
        )


# ------------------------------------------------------------------ per_term_gradients


def test_per_term_gradients_layouts_agree():
    p = PARAMS[1]
    grad_i = [lambda q, i=i: jax.grad(lambda r: loss_vector(r)[i])(q) for i in range(3)]
    per_loss = jax.jit(lambda q: [f(q) for f in grad_i])(p)
    # Hand flattening: leaves in jax.tree.leaves order (sorted dict keys b1, b2, w1, w2).
    expected = np.stack(
        [np.concatenate([np.ravel(g[k]) for k in ("b1", "b2", "w1", "w2")]) for g in per_loss]
    )
    assert expected.shape == (3, 8 + 1 + 16 + 8)
    for grads in (per_loss, tuple(per_loss), JACS[1], expected):
        got = per_term_gradients(grads, 3)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_per_term_gradients_of_an_nnx_state_and_stop_gradient():
    from jno.nnx.models import MLP

    graphdef, state = nnx.split(MLP(2, [4], 1, rngs=nnx.Rngs(0)), nnx.Param)

    def vec(s):
        y = nnx.merge(graphdef, s)(_X)
        return jnp.stack([jnp.mean(y**2), jnp.mean(y)])

    jac = jax.jit(jax.jacrev(vec))(state)
    got = np.asarray(per_term_gradients(jac, 2))
    leaves = jax.tree.leaves(jac)
    assert got.shape == (2, sum(leaf[0].size for leaf in leaves)) == (2, 4 * 2 + 4 + 4 + 1)
    np.testing.assert_array_equal(got[1], np.concatenate([np.ravel(x[1]) for x in leaves]))
    # The matrix is a constant for autodiff.
    d = jax.grad(lambda a: jnp.sum(per_term_gradients(a * jnp.ones((2, 3)), 2)))(1.0)
    assert float(d) == 0.0


@pytest.mark.parametrize(
    "grads, match",
    [
        ([jnp.ones(3), jnp.ones(3)], "num_losses=3 gradient pytrees.*got 2"),
        (jnp.ones((2, 4)), r"leading axis num_losses=3, got a leaf of shape \(2, 4\)"),
        ({"a": jnp.ones((3, 2)), "b": jnp.ones((4,))}, r"shape \(4,\)"),
        ({"a": jnp.ones((3, 2)), "b": jnp.float32(1.0)}, r"shape \(\)"),
        ([jnp.ones(2), jnp.ones(3), jnp.ones(2)], r"same size, got sizes \[2, 3\]"),
        ({}, "no parameters"),
    ],
)
def test_per_term_gradients_errors(grads, match):
    with pytest.raises(ValueError, match=match):
        per_term_gradients(grads, 3)


def test_wrong_number_of_gradients_at_call():
    with pytest.raises(ValueError, match="num_losses=3"):
        GradNormBalancer(3)(jnp.ones(3), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="num_losses=3"):
        LRAnnealing(3)(jnp.ones(2), jnp.ones((3, 5)))


# ------------------------------------------------------------------ NaN / Inf guard


def _state(b):
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(b, BalancerState)))


def _assert_same_state(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("case", ["gradnorm_balancer", "lra_weighted_ref1", "gradnorm_alpha1.5"])
def test_nonfinite_inputs_keep_weights_and_state(case):
    expected = expected_weights(case)
    b = CASES[case][0]()
    for t in range(2):
        b(LOSSES[t], GRADS[t])
    before, last = _state(b), np.asarray(b.last_weights[...])
    np.testing.assert_allclose(last, expected[1], **TOL)
    bad_loss = LOSSES[2].copy()
    bad_loss[1] = np.nan
    bad_grads = [GRADS[2].copy() for _ in range(3)]
    bad_grads[0][0, 3] = np.inf
    bad_grads[1][2, 0] = -np.inf
    bad_grads[2][1, 5] = np.nan
    inputs = [(bad_loss, GRADS[2]), (np.array([1.0, np.inf, 1.0]), GRADS[2])]
    inputs += [(LOSSES[2], g) for g in bad_grads]
    step = nnx.jit(lambda b, x, g: b(x, g))
    for i, (x, g) in enumerate(inputs):
        w = b(x, g) if i % 2 else step(b, jnp.asarray(x), jnp.asarray(g))
        np.testing.assert_array_equal(w, last)
        _assert_same_state(_state(b), before)
        assert int(b.calls[...]) == 2
    # The bad calls left no trace: the run continues as if they never happened.
    for t in range(2, STEPS):
        np.testing.assert_allclose(b(LOSSES[t], GRADS[t]), expected[t], **TOL)


def test_nonfinite_on_first_call_then_gradnorm_remembers_the_next_losses():
    b = GradNorm(3, alpha=1.5, lr=0.05)
    g = GRADS[0].copy()
    g[0, 0] = np.nan
    np.testing.assert_array_equal(b(LOSSES[0], g), np.ones(3))
    assert int(b.calls[...]) == 0
    np.testing.assert_array_equal(b.initial_losses[...], np.ones(3))
    for t in range(STEPS):
        b(LOSSES[t], GRADS[t])
    np.testing.assert_allclose(b.initial_losses[...], LOSSES[0], rtol=1e-7)
    np.testing.assert_allclose(b.last_weights[...], ref_gradnorm(L64, G64, 1.5, 0.05)[-1], **TOL)


# ------------------------------------------------------------------ qualitative behaviour


def _repeat(b, g, steps):
    """``steps`` calls with the same gradients and unit losses, scanned."""
    n = g.shape[0]
    return np.asarray(_scan(b, jnp.ones((steps, n)), jnp.broadcast_to(g, (steps, *g.shape))))


def test_gradnorm_balancer_weighs_up_the_term_with_the_smaller_gradient():
    b = GradNormBalancer(2, momentum=0.9)
    g = jnp.array([[6.0, -8.0, 0.0], [0.0, 0.5, 0.0]])  # norms 10 and 0.5
    ws = _repeat(b, g, 30)
    assert np.all(ws[:, 1] > 1.0) and np.all(ws[:, 0] < 1.0)
    assert np.all(np.diff(ws[:, 1]) > 0)
    # EMA towards w_hat = mean / n = [0.525, 10.5].
    w_hat = np.array([0.525, 10.5])
    np.testing.assert_allclose(ws[-1], w_hat + 0.9**30 * (1 - w_hat), rtol=1e-6)


@pytest.mark.parametrize("weighted, fixed_point", [(False, 10.0), (True, np.sqrt(10.0))])
def test_lr_annealing_weighs_up_a_term_with_10x_smaller_gradients(weighted, fixed_point):
    b = LRAnnealing(2, weighted_gradients=weighted)
    g = jnp.array([[1.0, -0.5, 0.2, 0.0], [0.1, -0.1, 0.1, -0.1]])  # max |g_0| = 10 mean |g_1|
    ws = _repeat(b, g, 80)
    np.testing.assert_array_equal(ws[:, 0], 1.0)
    assert np.all(ws[:, 1] > 1.0)
    # Unweighted: lam -> 0.1 lam + 9, monotone. Weighted: lam -> 0.1 lam + 9 / lam, whose
    # slope -0.8 at sqrt(10) makes it overshoot and spiral in.
    steps = np.diff(ws[:8, 1])
    assert np.all(steps > 0) if not weighted else np.all(steps[:-1] * steps[1:] < 0)
    np.testing.assert_allclose(ws[-1, 1], fixed_point, rtol=1e-5)


def test_gradnorm_equalises_weighted_gradient_norms_with_alpha_zero():
    b = GradNorm(2, alpha=0.0, lr=0.02)
    g = jnp.array([[3.0, 0.0], [0.0, 1.0]])
    w = _repeat(b, g, 100)[-1]
    np.testing.assert_allclose(w, [0.5, 1.5], atol=0.03)  # w * n equal, sum(w) = 2
    assert abs(w.sum() - 2.0) < 1e-5


# ------------------------------------------------------------------ arguments and config


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: GradNormBalancer(2, momentum=1.0), ValueError, r"momentum.*1\.0"),
        (lambda: GradNormBalancer(2, momentum=-0.1), ValueError, "momentum"),
        (lambda: GradNormBalancer(2, update_every=0), ValueError, "update_every.*0"),
        (lambda: GradNormBalancer(2, update_every=1.5), TypeError, r"update_every.*1\.5"),
        (lambda: LRAnnealing(2, beta=0), ValueError, "beta.*0"),
        (lambda: LRAnnealing(2, beta=1.5), ValueError, "beta"),
        (lambda: LRAnnealing(2, reference=2), ValueError, "reference.*2"),
        (lambda: LRAnnealing(2, reference=-1), ValueError, "reference.*-1"),
        (lambda: LRAnnealing(2, reference=0.0), TypeError, r"reference.*0\.0"),
        (lambda: LRAnnealing(2, reference=True), TypeError, "reference"),
        (lambda: LRAnnealing(2, update_every=0), ValueError, "update_every"),
        (lambda: LRAnnealing(2, weighted_gradients="yes"), TypeError, "weighted_gradients"),
        (lambda: GradNorm(2, alpha=-0.5), ValueError, r"alpha.*-0\.5"),
        (lambda: GradNorm(2, lr=0.0), ValueError, "lr.*0"),
        (lambda: GradNorm(2, lr=-1e-3), ValueError, "lr"),
        (lambda: GradNorm(2, update_every=1.5), TypeError, "update_every"),
        (lambda: GradNorm(0), ValueError, "num_losses"),
        (lambda: GradNorm(2, mode="log"), ValueError, "mode"),
        (lambda: GradNorm(2, eps=0.0), ValueError, "eps"),
    ],
)
def test_bad_arguments_raise_naming_them(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_config_and_requires():
    tail = {"mode": "raw", "eps": 1e-8}
    assert GradNormBalancer(2).config() == {
        "class": "GradNormBalancer",
        "num_losses": 2,
        "momentum": 0.9,
        "update_every": 100,
        **tail,
    }
    assert LRAnnealing(3, reference=2, beta=0.5, weighted_gradients=True).config() == {
        "class": "LRAnnealing", "num_losses": 3, "reference": 2, "beta": 0.5,
        "weighted_gradients": True, "update_every": 10, **tail
    }  # fmt: skip
    assert GradNorm(2, alpha=0, lr=1, mode="l2", eps=1e-6).config() == {
        "class": "GradNorm", "num_losses": 2, "alpha": 0.0, "lr": 1.0, "update_every": 1,
        "mode": "l2", "eps": 1e-6
    }  # fmt: skip
    for cls in (GradientBalancer, GradNormBalancer, LRAnnealing, GradNorm):
        assert cls.requires == "grads"
    assert [GradNormBalancer(2).update_every, LRAnnealing(2).update_every] == [100, 10]
    assert GradNorm(2, update_every=7).update_every == 7


@pytest.mark.parametrize("case", ["gradnorm_balancer", "lra", "gradnorm_alpha1.5"])
def test_split_merge_round_trip_continues_identically(case):
    straight, split = CASES[case][0](), CASES[case][0]()
    for t in range(2):
        straight(LOSSES[t], GRADS[t])
        split(LOSSES[t], GRADS[t])
    graphdef, state = nnx.split(split)
    assert set(nnx.to_pure_dict(nnx.state(split, nnx.Param))) == set()
    merged = nnx.merge(graphdef, jax.tree.map(jnp.array, state))
    assert merged.config() == straight.config() and merged.update_every == straight.update_every
    for t in range(2, STEPS):
        np.testing.assert_array_equal(merged(LOSSES[t], GRADS[t]), straight(LOSSES[t], GRADS[t]))
    _assert_same_state(_state(merged), _state(straight))
