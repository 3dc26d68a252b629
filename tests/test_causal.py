"""Causal chunk losses and causal weights against NumPy transcriptions of the formulas,
eagerly and compiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jno.nnx.balancers.causal import CausalWeights, chunk_losses

TOL = {"rtol": 2e-5, "atol": 1e-6}

# ---------------------------------------------------------------- chunk_losses

T_MIN, T_MAX, M = -1.0, 3.0, 8  # chunk width 0.5


def _times_and_residual(seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(T_MIN, T_MAX, 60).astype(np.float32)
    t = t[(t < 1.5) | (t >= 2.0)]  # chunk 5 = [1.5, 2.0) stays empty
    t = np.concatenate([t, [T_MIN, T_MAX, -0.5, 0.0, 1.0, 2.0, 2.5]]).astype(np.float32)
    r = rng.normal(size=t.shape).astype(np.float32)
    return r, t


def _np_index(t):
    return np.clip(np.floor((t.astype(np.float64) - T_MIN) / (T_MAX - T_MIN) * M), 0, M - 1).astype(
        int
    )


def test_chunk_index_reference_puts_boundaries_in_the_later_chunk():
    np.testing.assert_array_equal(
        _np_index(np.array([-1.0, -0.5, 0.0, 1.0, 2.0, 2.5, 3.0])), [0, 1, 2, 4, 6, 7, 7]
    )


def test_chunk_losses_match_numpy_and_gradient():
    r, t = _times_and_residual()
    idx = _np_index(t)
    want = np.array([np.mean(r[idx == k] ** 2) if np.any(idx == k) else 0.0 for k in range(M)])
    assert want[5] == 0.0 and np.all(want[[0, 1, 2, 3, 4, 6, 7]] > 0)
    got = chunk_losses(jnp.asarray(r), jnp.asarray(t), M, T_MIN, T_MAX)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    got_col = chunk_losses(jnp.asarray(r)[:, None], jnp.asarray(t)[:, None], M, T_MIN, T_MAX)
    np.testing.assert_allclose(np.asarray(got_col), np.asarray(got), rtol=1e-6)

    coef = np.arange(1.0, M + 1)
    weighted = lambda rr: jnp.sum(coef * chunk_losses(rr, jnp.asarray(t), M, T_MIN, T_MAX))
    grad = jax.jit(jax.grad(weighted))(jnp.asarray(r))
    counts = np.bincount(idx, minlength=M)
    np.testing.assert_allclose(np.asarray(grad), coef[idx] * 2 * r / counts[idx], rtol=1e-5)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_chunk_losses_by_hand():
    @jax.jit  # both cases in one program
    def cases():
        # Chunks of [0, 1]: t=0 -> 0; t=0.5 (the boundary) and t=1 (t_max) -> 1.
        two = chunk_losses(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 0.5, 1.0]), 2, 0.0, 1.0)
        one_point = chunk_losses(jnp.array([[2.0]]), jnp.array([[7.0]]), 3, 5.0, 8.0)
        return two, one_point

    two, one_point = cases()
    assert two.tolist() == [1.0, 6.5]
    assert one_point.tolist() == [0.0, 0.0, 4.0]


def test_chunk_losses_bad_arguments():
    r, t = jnp.ones(4), jnp.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="num_chunks must be an integer >= 1, got 0"):
        chunk_losses(r, t, 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="t_max must be > t_min"):
        chunk_losses(r, t, 2, 1.0, 1.0)
    with pytest.raises(ValueError, match="same number of points, got 4 and 3"):
        chunk_losses(r, t[:3], 2, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"residual must have shape \(n,\) or \(n, 1\)"):
        chunk_losses(jnp.ones((4, 2)), t, 2, 0.0, 1.0)


# ---------------------------------------------------------------- CausalWeights


def ref_causal(seq, epsilons, delta):
    """Weights and rung after each call, with the ladder of the paper."""
    rung, ws, rungs = 0, [], []
    for losses in np.asarray(seq, np.float64):
        before = np.concatenate([[0.0], np.cumsum(losses)[:-1]])
        w = np.exp(-epsilons[rung] * before)
        if w.min() > delta and rung < len(epsilons) - 1:
            rung += 1
        ws.append(w)
        rungs.append(rung)
    return np.stack(ws), np.array(rungs)


EPS_LADDER = (1.0, 10.0, 100.0)
SCRIPT = np.array(
    [
        [1.0, 1.0, 1.0, 1.0],  # min w = e^-3: stays on rung 0
        [0.05, 0.05, 0.01, 5.0],  # min w = e^-0.11 = 0.896 < 0.9: stays
        [0.05, 0.05, 0.0, 5.0],  # min w = e^-0.10 = 0.905 > 0.9: next rung
        [0.05, 0.05, 0.0, 5.0],  # eps 10: min w = e^-1: stays
        [1e-4, 1e-4, 1e-4, 1e-4],  # tiny: rung 2
        [1e-5, 1e-5, 1e-5, 1e-5],  # tiny, but at the last rung: stays 2
        [2.0, 0.0, 0.0, 0.0],
    ],
    np.float32,
)


def test_reference_ladder_script_moves_as_annotated():
    assert ref_causal(SCRIPT, EPS_LADDER, 0.9)[1].tolist() == [0, 0, 1, 1, 2, 2, 2]


@nnx.jit
def _causal_jit(cw, losses):
    return cw(losses), cw.rung[...], cw.epsilon


def test_causal_weights_and_ladder_eager_and_jit_match_reference():
    want_w, want_rung = ref_causal(SCRIPT, EPS_LADDER, 0.9)
    eager, jitted = (
        CausalWeights(4, epsilons=EPS_LADDER, delta=0.9),
        CausalWeights(4, epsilons=EPS_LADDER, delta=0.9),
    )
    for k, row in enumerate(SCRIPT):
        w = eager(jnp.asarray(row))
        np.testing.assert_allclose(np.asarray(w), want_w[k], **TOL)
        assert int(eager.rung[...]) == want_rung[k]
        assert float(eager.epsilon) == EPS_LADDER[want_rung[k]]
        np.testing.assert_allclose(float(eager.min_weight[...]), want_w[k].min(), **TOL)
        wj, rung, eps = _causal_jit(jitted, jnp.asarray(row))
        np.testing.assert_allclose(np.asarray(wj), want_w[k], **TOL)
        assert int(rung) == want_rung[k] and float(eps) == EPS_LADDER[want_rung[k]]
    assert int(jitted.calls[...]) == len(SCRIPT)


def test_causal_weights_with_default_ladder_and_large_losses():
    seq = np.random.default_rng(0).uniform(0.0, 30.0, (3, 6)).astype(np.float32)
    cw = CausalWeights(6)
    want_w, want_rung = ref_causal(seq, (1e-2, 1e-1, 1.0, 1e1, 1e2), 0.99)
    for k, row in enumerate(seq):
        np.testing.assert_allclose(np.asarray(cw(row)), want_w[k], **TOL)
    assert int(cw.rung[...]) == want_rung[-1] == 0
    # A huge later loss does not erase the earlier ones from the exclusive sum.
    w = CausalWeights(3, epsilons=1.0)(jnp.array([1.0, 1e10, 1.0]))
    np.testing.assert_allclose(np.asarray(w), [1.0, np.exp(-1.0), 0.0], **TOL)


def test_causal_loss_value_gradient_and_state():
    r, t = _times_and_residual(3)
    cw = CausalWeights(M, epsilons=(0.5, 5.0), delta=0.9)
    idx = _np_index(t)
    counts = np.bincount(idx, minlength=M)
    L = np.array(
        [np.mean(r[idx == k].astype(np.float64) ** 2) if counts[k] else 0.0 for k in range(M)]
    )
    w = np.exp(-0.5 * np.concatenate([[0.0], np.cumsum(L)[:-1]]))

    causal = lambda rr, c: c.loss(rr, jnp.asarray(t), T_MIN, T_MAX)
    loss, grad = nnx.jit(nnx.value_and_grad(causal))(jnp.asarray(r), cw)
    np.testing.assert_allclose(float(loss), np.mean(w * L), rtol=1e-5)
    safe = np.maximum(counts[idx], 1)
    np.testing.assert_allclose(np.asarray(grad), w[idx] * 2 * r / safe / M, rtol=1e-5, atol=1e-8)
    assert int(cw.calls[...]) == 1 and int(cw.rung[...]) == 0
    np.testing.assert_allclose(np.asarray(cw.last_weights[...]), w, **TOL)


@pytest.mark.parametrize("via_loss", [False, True])
def test_causal_non_finite_chunk_losses_leave_state_unchanged(via_loss):
    cw = CausalWeights(3, epsilons=(1.0, 10.0), delta=0.5)
    w0 = cw(jnp.array([0.1, 0.1, 0.1]))  # advances to rung 1
    state_before = {k: np.asarray(v) for k, v in nnx.to_flat_state(nnx.state(cw))}
    if via_loss:
        cw.loss(jnp.array([1.0, np.nan, 1.0]), jnp.array([0.0, 0.5, 0.9]), 0.0, 1.0)
        w = cw.last_weights[...]
    else:
        w = cw(jnp.array([0.1, np.inf, 0.1]))
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w0))
    state_after = {k: np.asarray(v) for k, v in nnx.to_flat_state(nnx.state(cw))}
    assert state_after.keys() == state_before.keys()
    for k in state_before:
        np.testing.assert_array_equal(state_after[k], state_before[k])
    assert int(cw.rung[...]) == 1 and int(cw.calls[...]) == 1


def test_causal_bad_arguments():
    for eps, msg in [
        ((), "epsilons must not be empty, got ()"),
        ([1.0, -1.0], "epsilons must be positive and finite, got [1.0, -1.0]"),
        ([1.0, float("inf")], "epsilons must be positive and finite"),
        (0.0, "epsilons must be positive and finite, got 0.0"),
        ((1.0, 0.1), "epsilons must be non-decreasing, got (1.0, 0.1)"),
    ]:
        with pytest.raises(ValueError) as info:
            CausalWeights(3, epsilons=eps)
        assert msg in str(info.value)
    with pytest.raises(TypeError, match="epsilons"):
        CausalWeights(3, epsilons="1,2")
    with pytest.raises(TypeError, match="epsilons"):
        CausalWeights(3, epsilons=[1.0, None])
    for delta in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=f"delta must be in \\(0, 1\\], got {delta}"):
            CausalWeights(3, delta=delta)
    with pytest.raises(ValueError, match="num_chunks must be an integer >= 1, got 0"):
        CausalWeights(0)
    with pytest.raises(TypeError, match="num_chunks"):
        CausalWeights(2.0)
    with pytest.raises(ValueError, match="expected num_losses=3 losses, got 2"):
        CausalWeights(3)(jnp.ones(2))


def test_causal_config_and_split_merge_round_trip():
    cw = CausalWeights(3, epsilons=[0.1, 1.0], delta=0.95)
    assert cw.update_every == 1 and cw.num_chunks == 3 and CausalWeights.requires == "losses"
    assert cw.config() == {
        "class": "CausalWeights",
        "num_chunks": 3,
        "epsilons": [0.1, 1.0],
        "delta": 0.95,
        "mode": "raw",
        "eps": 1e-8,
    }
    assert CausalWeights(2, epsilons=5).config()["epsilons"] == [5.0]
    cfg = dict(cw.config())
    assert cfg.pop("class") == "CausalWeights"
    assert CausalWeights(**cfg).config() == cw.config()
    cw(jnp.array([0.01, 0.01, 0.01]))  # advances to rung 1
    graphdef, state = nnx.split(cw)
    other = nnx.merge(graphdef, state, copy=True)
    assert int(other.rung[...]) == 1 and other.config() == cw.config()
    row = jnp.array([0.2, 0.1, 0.3])
    np.testing.assert_array_equal(np.asarray(other(row)), np.asarray(cw(row)))
