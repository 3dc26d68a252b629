"""NTK diagonals and NTK balancing against NumPy transcriptions of the formulas, eagerly
and compiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from jno.nnx.balancers.ntk import NTKBalancer, ntk_diagonal
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

    @jax.jit  # the four diagonals in one program
    def diagonals(params):
        ntk = lambda f: ntk_diagonal(f, params)
        return ntk(lambda p: (fa(p), fb(p))), ntk(fa), ntk(fb), ntk(lambda p: fb(p) / 3)

    both, da, db, db_third = (np.asarray(d) for d in diagonals(params))
    np.testing.assert_allclose(both, np.concatenate([da, db]), rtol=1e-6)
    np.testing.assert_allclose(db, 9.0 * db_third, rtol=1e-5)

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
    other = NTKBalancer(3, momentum=0.1, update_every=4, mode="minmax")
    cfg = dict(other.config())
    assert cfg.pop("class") == "NTKBalancer"
    assert NTKBalancer(**cfg).config() == other.config()


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
