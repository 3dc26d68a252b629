"""Gradient-based balancers against float64 NumPy transcriptions of their formulas, on
the per-term gradients of a small tanh network (``gradient_reference``): eagerly, under
nnx.jit, under nnx.scan and jax.lax.scan over split state, with nnx.cond and jax.vmap;
and their qualitative behaviour on fixed gradients."""

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
    PARAMS,
    STEPS,
    TOL,
    expected_weights,
    loss_vector,
    ref_gradnorm,
)

from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing

NAMES = sorted(CASES)

# ------------------------------------------------------------------ runners
# Each runner drives a list of balancers, one per case, and returns their (STEPS, N)
# weights; the compiled runners hold every case in one program, compiled once.


def run_eager(bs):
    """Eager calls with the jacrev output pytree of each parameter set."""
    return [np.stack([b(jnp.asarray(x), j) for x, j in zip(LOSSES, JACS)]) for b in bs]


@nnx.jit
def _jit_step(bs, p):
    losses, jac = loss_vector(p), jax.jacrev(loss_vector)(p)
    return [b(losses, jac) for b in bs]


def run_jit(bs):
    """One compiled step that computes losses and per-term gradients itself."""
    rows = [_jit_step(bs, p) for p in PARAMS]
    return [np.stack([np.asarray(row[i]) for row in rows]) for i in range(len(bs))]


@nnx.jit
def _scan(bs, ls, gs):
    @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))
    def body(bs, losses, g):
        return bs, [b(losses, g) for b in bs]

    return body(bs, ls, gs)[1]


def run_scan(bs):
    """The (N, P) matrices of the whole trajectory scanned in one program."""
    return [np.asarray(w) for w in _scan(bs, jnp.asarray(LOSSES), jnp.asarray(GRADS))]


def run_lax_scan(bs):
    """jax.lax.scan over the split state, merging the balancers inside the body."""
    graphdef, state = nnx.split(bs)

    @jax.jit
    def run(state, ls, gs):
        def body(state, xs):
            bals = nnx.merge(graphdef, state)
            ws = [b(*xs) for b in bals]
            return nnx.split(bals)[1], ws

        return jax.lax.scan(body, state, (ls, gs))

    state, ws = run(state, jnp.asarray(LOSSES), jnp.asarray(GRADS))
    nnx.update(bs, state)
    return [np.asarray(w) for w in ws]


@pytest.mark.parametrize("runner", [run_eager, run_jit, run_scan, run_lax_scan])
def test_weights_match_formula(runner):
    bs = [CASES[name][0]() for name in NAMES]
    for name, b, got in zip(NAMES, bs, runner(bs)):
        expected = expected_weights(name)
        assert got.dtype == np.float32 and got.shape == (STEPS, 3), name
        np.testing.assert_allclose(got, expected, **TOL, err_msg=name)
        np.testing.assert_allclose(b.last_weights[...], expected[-1], **TOL, err_msg=name)
        assert int(b.calls[...]) == STEPS, name
        # The trajectory is not trivial: the weights move away from ones and between calls.
        assert np.abs(expected - 1).max() > 1e-2, name
        assert np.abs(np.diff(expected, axis=0)).max() > 1e-4, name


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


# ------------------------------------------------------------------ qualitative behaviour


def _repeat(b, g, steps):
    """``steps`` calls with the same gradients and unit losses, scanned."""
    n = g.shape[0]
    ws = _scan([b], jnp.ones((steps, n)), jnp.broadcast_to(g, (steps, *g.shape)))
    return np.asarray(ws[0])


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
