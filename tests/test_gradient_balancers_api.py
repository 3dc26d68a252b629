"""Gradient-based balancers, the parts around the formulas: per_term_gradients layouts and
errors, the NaN / Inf guard, argument errors, config and split/merge round trips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gradient_reference import (
    CASES,
    G64,
    GRADS,
    JACS,
    L64,
    LOSSES,
    STEPS,
    TOL,
    X,
    expected_weights,
    ref_gradnorm,
)

from jno.nnx.balancers.gradient import (
    GradientBalancer,
    GradNorm,
    GradNormBalancer,
    LRAnnealing,
    per_term_gradients,
)
from jno.nnx.state import BalancerState

# ------------------------------------------------------------------ per_term_gradients


def test_per_term_gradients_layouts_agree():
    # One gradient pytree per loss: the rows of the jacrev output.
    per_loss = [jax.tree.map(lambda a, i=i: a[i], JACS[1]) for i in range(3)]
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
    from jno.nnx.networks.mlp import MLP

    graphdef, state = nnx.split(MLP(2, [4], 1, rngs=nnx.Rngs(0)), nnx.Param)

    def vec(s):
        y = nnx.merge(graphdef, s)(X)
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
