"""NTK diagonals and NTK balancing, causal chunk losses and causal weights, against NumPy
transcriptions of the formulas, eagerly and compiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from jno.nnx.causal import CausalWeights, chunk_losses
from jno.nnx.ntk import NTKBalancer, ntk_diagonal
from jno.nnx.state import BalancerState

TOL = {"rtol": 2e-5, "atol": 1e-6}
# Compiled once per residual function: op-by-op Jacobians are slow to dispatch.
jit_ntk = jax.jit(ntk_diagonal, static_argnums=0)


# ---------------------------------------------------------------- ntk_diagonal


def _tanh_params(seed=0, d=2, h=5):
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(size=(h, d)),
        "b1": rng.normal(size=(h,)),
        "w2": rng.normal(size=(h,)),
        "b2": np.array(0.3),
    }


def _tanh_net(p, x):
    return jnp.tanh(x @ p["w1"].T + p["b1"]) @ p["w2"] + p["b2"]


def _np_tanh_ntk(p, x):
    """||d u(x_p) / d theta||^2 from the Jacobian written by hand, in float64."""
    hid = np.tanh(x @ p["w1"].T + p["b1"])  # (n, h)
    dpre = p["w2"] * (1.0 - hid**2)  # d u / d b1, (n, h)
    jac = np.concatenate(
        [
            (dpre[:, :, None] * x[:, None, :]).reshape(len(x), -1),  # d u / d w1
            dpre,
            hid,  # d u / d w2
            np.ones((len(x), 1)),  # d u / d b2
        ],
        axis=1,
    )
    return np.sum(jac**2, axis=1)


def test_ntk_diagonal_of_tanh_net_matches_hand_jacobian():
    p64 = _tanh_params()
    x = np.random.default_rng(1).uniform(-1, 1, size=(7, 2))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p64)
    got = jit_ntk(lambda p: _tanh_net(p, jnp.asarray(x, jnp.float32)) - 1.0, params)
    assert got.shape == (7,)
    np.testing.assert_allclose(np.asarray(got), _np_tanh_ntk(p64, x), rtol=1e-5)


def test_ntk_diagonal_of_a_derivative_residual_matches_jacfwd():
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), _tanh_params(2, d=1))
    x = jnp.linspace(-1.0, 1.0, 6)[:, None]

    def residual(p):  # u'(x) - cos(x), shape (n, 1)
        du = jax.vmap(jax.grad(lambda xi: _tanh_net(p, xi[None])[0]))(x)
        return du - jnp.cos(x)

    flat, unravel = ravel_pytree(params)
    jac = jax.jit(jax.jacfwd(lambda f: residual(unravel(f)).reshape(-1)))(flat)  # (n, P)
    want = np.sum(np.asarray(jac, np.float64) ** 2, axis=1)
    np.testing.assert_allclose(np.asarray(jit_ntk(residual, params)), want, rtol=1e-5)


def test_ntk_diagonal_concatenates_tuple_residuals_and_reads_nnx_state():
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), _tanh_params(3))
    xa = jnp.asarray(np.random.default_rng(4).uniform(size=(4, 2)), jnp.float32)
    xb = jnp.asarray(np.random.default_rng(5).uniform(size=(3, 2)), jnp.float32)
    fa = lambda p: _tanh_net(p, xa)
    fb = lambda p: 3.0 * _tanh_net(p, xb)[:, None]
    both = jit_ntk(lambda p: (fa(p), fb(p)), params)
    want = np.concatenate([jit_ntk(fa, params), jit_ntk(fb, params)])
    np.testing.assert_allclose(np.asarray(both), want, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(jit_ntk(fb, params)),
        9.0 * np.asarray(jit_ntk(lambda p: fb(p) / 3, params)),
        rtol=1e-5,
    )

    # The nnx.Param state of a Linear layer: K(x, x) = ||x||^2 + 1 (the bias).
    graphdef, state = nnx.split(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), nnx.Param)
    diag = jit_ntk(lambda s: nnx.merge(graphdef, s)(xa), state)
    np.testing.assert_allclose(np.asarray(diag), np.sum(np.asarray(xa) ** 2, axis=1) + 1, rtol=1e-6)


# ---------------------------------------------------------------- NTKBalancer


def ref_ntk(traces_seq, momentum, eps=1e-8):
    lam, out = np.ones(traces_seq.shape[1]), []
    for tr in traces_seq.astype(np.float64):
        lam = momentum * lam + (1 - momentum) * tr.sum() / (tr + eps)
        out.append(lam)
    return np.stack(out)


LENGTHS = (3, 5, 2)
T = 5


def _diagonals(seed=0):
    """T calls of per-term NTK diagonals of different lengths and scales."""
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 30.0, 0.2])
    return [
        [(s * rng.uniform(0.5, 2.0, n)).astype(np.float32) for n, s in zip(LENGTHS, scales)]
        for _ in range(T)
    ]


LOSSES = np.random.default_rng(9).uniform(0.1, 2.0, (T, 3)).astype(np.float32)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_ntk_balancer_matches_formula_for_diagonals_and_traces(momentum):
    diags = _diagonals()
    traces = np.array([[d.sum() for d in row] for row in diags])
    want = ref_ntk(traces, momentum)
    b_diag, b_trace = NTKBalancer(3, momentum=momentum), NTKBalancer(3, momentum=momentum)
    for t in range(T):
        w_diag = b_diag(jnp.asarray(LOSSES[t]), [jnp.asarray(d) for d in diags[t]])
        w_trace = b_trace(list(LOSSES[t]), jnp.asarray(traces[t]))
        np.testing.assert_allclose(np.asarray(w_diag), want[t], **TOL)
        np.testing.assert_allclose(np.asarray(w_trace), want[t], **TOL)
        np.testing.assert_allclose(np.asarray(b_diag.traces[...]), traces[t], rtol=1e-6)
    assert int(b_diag.calls[...]) == T
    # A stacked (N, n) array of equal-length diagonals is read as N diagonals.
    eq = np.ones((3, 4), np.float32) * np.array([[1.0], [2.0], [5.0]], np.float32)
    np.testing.assert_allclose(
        np.asarray(NTKBalancer(3)(LOSSES[0], jnp.asarray(eq))), [32 / 4, 32 / 8, 32 / 20], **TOL
    )


@nnx.jit
def _ntk_jit(b, losses, diags):
    return b(losses, diags)


@nnx.jit
def _ntk_scan(b, losses, diags):
    @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))
    def body(bal, loss_row, diag_row):
        return bal, bal(loss_row, diag_row)

    return body(b, losses, diags)[1]


def test_ntk_balancer_eager_jit_and_scan_agree():
    diags = _diagonals(1)
    traces = np.array([[d.sum() for d in row] for row in diags])
    want = ref_ntk(traces, 0.5)
    eager, jitted, scanned = (NTKBalancer(3, momentum=0.5) for _ in range(3))
    w_eager = np.stack([eager(LOSSES[t], [jnp.asarray(d) for d in diags[t]]) for t in range(T)])
    w_jit = np.stack(
        [
            _ntk_jit(jitted, jnp.asarray(LOSSES[t]), [jnp.asarray(d) for d in diags[t]])
            for t in range(T)
        ]
    )
    stacked = [jnp.asarray(np.stack([row[i] for row in diags])) for i in range(3)]
    w_scan = np.asarray(_ntk_scan(scanned, jnp.asarray(LOSSES), stacked))
    for w in (w_eager, w_jit, w_scan):
        np.testing.assert_allclose(w, want, **TOL)
    for b in (jitted, scanned):
        np.testing.assert_allclose(np.asarray(b.last_weights[...]), want[-1], **TOL)
        assert int(b.calls[...]) == T


@pytest.mark.parametrize("bad", ["loss_nan", "diag_nan", "trace_inf"])
def test_ntk_balancer_non_finite_input_leaves_state_unchanged(bad):
    traces = np.array([[1.0, 3.0, 4.0], [2.0, 2.0, 6.0], [1.0, 1.0, 1.0]], np.float32)
    b = NTKBalancer(3, momentum=0.5)
    w0 = b(LOSSES[0], jnp.asarray(traces[0]))
    losses, diags = LOSSES[1].copy(), [jnp.asarray(traces[1, i : i + 1]) for i in range(3)]
    if bad == "loss_nan":
        losses[2] = np.nan
    elif bad == "diag_nan":
        diags[1] = jnp.array([1.0, np.nan])
    else:
        diags = jnp.array([1.0, np.inf, 2.0])
    w_bad = b(losses, diags)
    np.testing.assert_array_equal(np.asarray(w_bad), np.asarray(w0))
    assert int(b.calls[...]) == 1
    np.testing.assert_array_equal(np.asarray(b.traces[...]), traces[0])
    w2 = b(LOSSES[2], jnp.asarray(traces[2]))  # continues as if the bad call never happened
    np.testing.assert_allclose(np.asarray(w2), ref_ntk(traces[[0, 2]], 0.5)[-1], **TOL)


def test_ntk_balancer_arguments_and_config():
    b = NTKBalancer(2, momentum=0.25, update_every=7, mode="l2", eps=1e-6)
    assert NTKBalancer.requires == "ntk" and b.update_every == 7
    assert NTKBalancer(2).update_every == 100
    assert b.config() == {
        "class": "NTKBalancer",
        "num_losses": 2,
        "momentum": 0.25,
        "update_every": 7,
        "mode": "l2",
        "eps": 1e-6,
    }
    for value in (1.0, -0.1):
        with pytest.raises(ValueError, match=f"momentum must be in \\[0, 1\\), got {value}"):
            NTKBalancer(2, momentum=value)
    with pytest.raises(ValueError, match="momentum must be finite, got nan"):
        NTKBalancer(2, momentum=float("nan"))
    with pytest.raises(TypeError, match="momentum"):
        NTKBalancer(2, momentum="0.5")
    with pytest.raises(ValueError, match="update_every must be an integer >= 1, got 0"):
        NTKBalancer(2, update_every=0)
    with pytest.raises(TypeError, match="update_every"):
        NTKBalancer(2, update_every=2.0)
    with pytest.raises(ValueError, match="num_losses"):
        NTKBalancer(0)
    with pytest.raises(ValueError, match="expected num_losses=2 NTK diagonals, got 3"):
        b([1.0, 2.0], [jnp.ones(2)] * 3)
    with pytest.raises(ValueError, match=r"ntk_diagonals\[0\] must be a 1-D"):
        b([1.0, 2.0], [jnp.ones((2, 2)), jnp.ones(2)])
    with pytest.raises(ValueError, match="got shape \\(3,\\)"):
        b([1.0, 2.0], jnp.ones(3))


def test_ntk_balancer_split_merge_round_trip():
    b = NTKBalancer(2, momentum=0.5)
    b([1.0, 1.0], jnp.array([1.0, 3.0]))
    graphdef, state = nnx.split(b)
    assert {
        type(v)
        for v in jax.tree_util.tree_leaves(state, is_leaf=lambda v: isinstance(v, nnx.Variable))
    } == {BalancerState}
    c = nnx.merge(graphdef, state, copy=True)
    assert c.config() == b.config() and c.update_every == b.update_every
    np.testing.assert_array_equal(
        np.asarray(c([1.0, 1.0], jnp.array([2.0, 2.0]))),
        np.asarray(b([1.0, 1.0], jnp.array([2.0, 2.0]))),
    )


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
    # Chunks of [0, 1]: t=0 -> 0; t=0.5 (the boundary) and t=1 (t_max) -> 1.
    got = chunk_losses(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 0.5, 1.0]), 2, 0.0, 1.0)
    assert got.tolist() == [1.0, 6.5]
    got = chunk_losses(jnp.array([[2.0]]), jnp.array([[7.0]]), 3, 5.0, 8.0)  # one point
    assert got.tolist() == [0.0, 0.0, 4.0]


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
    for module in (cw, NTKBalancer(3, momentum=0.1, update_every=4, mode="minmax")):
        cfg = dict(module.config())
        cls = {"CausalWeights": CausalWeights, "NTKBalancer": NTKBalancer}[cfg.pop("class")]
        assert cls(**cfg).config() == module.config()
    cw(jnp.array([0.01, 0.01, 0.01]))  # advances to rung 1
    graphdef, state = nnx.split(cw)
    other = nnx.merge(graphdef, state, copy=True)
    assert int(other.rung[...]) == 1 and other.config() == cw.config()
    row = jnp.array([0.2, 0.1, 0.3])
    np.testing.assert_array_equal(np.asarray(other(row)), np.asarray(cw(row)))
