"""Weight sequences of every balancer against NumPy transcriptions of the formulas,
eagerly, under nnx.jit and under nnx.scan; seeded randomness; qualitative behaviour."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from balancer_reference import (
    SEQ,
    normalize,
    ref_dwa,
    ref_lbpinns,
    ref_relobralo,
    ref_rho,
    ref_rlw,
    ref_softadapt,
)
from flax import nnx

from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt

MODES = ["raw", "minmax", "l2"]
TOL = {"rtol": 2e-5, "atol": 2e-6}


def run_eager(balancer, seq):
    return np.stack([np.asarray(balancer(jnp.asarray(row, jnp.float32))) for row in seq])


@nnx.jit
def _jit_call(balancers, losses):
    return {name: b(losses) for name, b in balancers.items()}


def run_jit(balancers, seq):
    """One compiled single-step program for all the balancers of the dict, called per row."""
    rows = [_jit_call(balancers, jnp.asarray(row, jnp.float32)) for row in seq]
    return {name: np.stack([np.asarray(r[name]) for r in rows]) for name in balancers}


@nnx.jit
def _scan_all(balancers, seq):
    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))
    def body(bs, losses):
        return bs, {name: b(losses) for name, b in bs.items()}

    _, weights = body(balancers, seq)
    return weights


def run_scan(balancers, seq):
    """All the balancers of the dict stepped through ``seq`` in one nnx.scan."""
    out = _scan_all(balancers, jnp.asarray(seq, jnp.float32))
    return {name: np.asarray(w) for name, w in out.items()}


def scan_one(balancer, seq):
    return run_scan({"b": balancer}, seq)["b"]


CASES = {
    "relobralo_rho1": (
        lambda mode: ReLoBRaLo(3, alpha=0.9, tau=0.1, expected_rho=1.0, mode=mode),
        lambda xs: ref_relobralo(xs, 0.9, 0.1, np.ones(len(xs))),
    ),
    "relobralo_rho0": (
        lambda mode: ReLoBRaLo(3, alpha=0.9, tau=0.5, expected_rho=0.0, mode=mode),
        lambda xs: ref_relobralo(xs, 0.9, 0.5, np.zeros(len(xs))),
    ),
    "softadapt": (
        lambda mode: SoftAdapt(3, beta=0.2, mode=mode),
        lambda xs: ref_softadapt(xs, 0.2),
    ),
    "dwa": (lambda mode: DWA(3, temperature=0.5, mode=mode), lambda xs: ref_dwa(xs, 0.5)),
    "lbpinns": (
        lambda mode: LbPINNsLossBalancing(3, init_s=[0.0, 0.5, -1.0], lr_s=0.1, mode=mode),
        lambda xs: ref_lbpinns(xs, [0.0, 0.5, -1.0], 0.1),
    ),
    "rlw": (lambda mode: RLW(3, seed=5, mode=mode), lambda xs: ref_rlw(3, 1.0, 5, len(xs))),
    "rlw_dirichlet": (
        lambda mode: RLW(3, alpha=0.7, seed=5, mode=mode),
        lambda xs: ref_rlw(3, 0.7, 5, len(xs)),
    ),
}
# Compiled runs cover raw mode (the modes are checked eagerly here and compiled in
# test_normalize.py); the Dirichlet path (gamma sampler) is slow to compile and runs
# eagerly only.
COMPILED_CASES = [c for c in CASES if c != "rlw_dirichlet"]


@pytest.fixture(scope="module")
def compiled_runs():
    """Every compiled case stepped through SEQ, scanned in one program and single-step
    jitted in another, so the whole table costs two compilations."""
    scanned = {c: CASES[c][0]("raw") for c in COMPILED_CASES}
    jitted = {c: CASES[c][0]("raw") for c in COMPILED_CASES}
    return {
        "scan": (run_scan(scanned, SEQ), scanned),
        "jit": (run_jit(jitted, SEQ), jitted),
    }


def _check(got, balancer, expected):
    assert got.dtype == np.float32 and got.shape == SEQ.shape
    np.testing.assert_allclose(got, expected, **TOL)
    np.testing.assert_allclose(np.asarray(balancer.last_weights[...]), expected[-1], **TOL)
    assert int(balancer.calls[...]) == len(SEQ)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_sequence_matches_formula_eager(case, mode):
    make, reference = CASES[case]
    balancer = make(mode)
    _check(run_eager(balancer, SEQ), balancer, reference(normalize(SEQ, mode)))


@pytest.mark.parametrize("runner", ["jit", "scan"])
@pytest.mark.parametrize("case", COMPILED_CASES)
def test_weight_sequence_matches_formula_compiled(compiled_runs, case, runner):
    weights, balancers = compiled_runs[runner]
    _check(weights[case], balancers[case], CASES[case][1](SEQ))


def test_first_calls_return_ones_and_remember_losses():
    seq = jnp.asarray(SEQ, jnp.float32)
    r, s, d = ReLoBRaLo(3), SoftAdapt(3), DWA(3)
    for b in (r, s):
        np.testing.assert_array_equal(b(seq[0]), np.ones(3))
        np.testing.assert_array_equal(b.prev_losses[...], seq[0])
    np.testing.assert_array_equal(r.initial_losses[...], seq[0])
    r(seq[1])
    np.testing.assert_array_equal(r.initial_losses[...], seq[0])
    np.testing.assert_array_equal(r.prev_losses[...], seq[1])
    np.testing.assert_array_equal(d(seq[0]), np.ones(3))
    np.testing.assert_array_equal(d(seq[1]), np.ones(3))
    assert not np.allclose(d(seq[2]), 1.0)
    np.testing.assert_array_equal(d.prev_losses[...], seq[2])
    np.testing.assert_array_equal(d.prev_prev_losses[...], seq[1])


def test_sequence_of_scalars_equals_array():
    a, b = SoftAdapt(3), SoftAdapt(3)
    for row in SEQ:
        wa = a(jnp.asarray(row, jnp.float32))
        wb = b([jnp.float32(row[0]), float(row[1]), jnp.asarray([row[2]], jnp.float32)])
        np.testing.assert_array_equal(wa, wb)


# --------------------------------------------------------------------------- randomness


def _drift(steps):
    """Losses that change every call, so a fresh lookback always moves the weights."""
    t = np.arange(steps, dtype=np.float64)[:, None]
    return np.exp(-np.array([0.002, 0.0005, 0.001]) * t) * np.array([1.0, 2.0, 0.5])


def test_relobralo_draws_one_bernoulli_per_call_with_the_right_mean():
    steps, p = 1500, 0.7
    seq = _drift(steps)
    weights = scan_one(ReLoBRaLo(3, alpha=1.0, tau=1.0, expected_rho=p, seed=3), seq)
    # alpha = 1: rho = 1 keeps lam bit for bit, rho = 0 replaces it by w_hat(L_0).
    kept = np.all(weights[2:] == weights[1:-1], axis=1)
    x = seq.astype(np.float32).astype(np.float64)
    w_hat0 = np.stack([3 * np.exp(r / x[0]) / np.exp(r / x[0]).sum() for r in x[2:]])
    np.testing.assert_allclose(weights[2:][~kept], w_hat0[~kept], rtol=1e-5)
    rho = kept.astype(np.float64)
    assert abs(rho.mean() - p) < 4 * np.sqrt(p * (1 - p) / rho.size)
    np.testing.assert_array_equal(rho, ref_rho(3, steps, p)[2:])


def _vmapped(make, seeds, seq):
    """A batch of balancers created with nnx.vmap over seeds, scanned over ``seq``."""
    balancers = nnx.vmap(make, in_axes=0, out_axes=0)(jnp.asarray(seeds))

    @nnx.jit
    def run(bs, seq):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))
        def body(bs, losses):
            return bs, nnx.vmap(lambda b: b(losses), in_axes=0, out_axes=0)(bs)

        return body(bs, seq)[1]

    return np.asarray(run(balancers, jnp.asarray(seq, jnp.float32)))  # (steps, seeds, N)


def test_relobralo_same_seed_same_sequence_other_seed_other_sequence():
    seq = _drift(40)
    make = lambda seed: ReLoBRaLo(3, alpha=0.5, expected_rho=0.5, seed=seed)
    w = _vmapped(make, [11, 11, 12], seq)
    np.testing.assert_array_equal(w[:, 0], w[:, 1])
    assert not np.array_equal(w[:, 0], w[:, 2])
    rhos = ref_rho(11, len(seq), 0.5)
    xs = seq.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(w[:, 0], ref_relobralo(xs, 0.5, 0.1, rhos), **TOL)
    np.testing.assert_allclose(run_eager(make(11), seq[:6]), w[:6, 0], **TOL)


def test_rlw_moments_and_reproducibility():
    n, steps = 3, 4000
    w = _vmapped(lambda seed: RLW(n, seed=seed), [0, 0, 1], np.ones((steps, n)))
    np.testing.assert_array_equal(w[:, 0], w[:, 1])
    assert not np.array_equal(w[:, 0], w[:, 2])
    w = np.concatenate([w[:, 0], w[:, 2]])  # seeds 0 and 1
    np.testing.assert_allclose(w.sum(axis=1), n, rtol=1e-5)
    assert np.all(w >= 0)
    # N * Dirichlet(1): mean 1, variance N^2 (1/N)(1 - 1/N) / (N + 1) = 0.5
    var = n**2 * (1 / n) * (1 - 1 / n) / (n + 1)
    np.testing.assert_allclose(w.mean(axis=0), 1.0, atol=4 * np.sqrt(var / len(w)))
    np.testing.assert_allclose(w.var(axis=0), var, rtol=0.1)


def test_rlw_key_is_plain_uint32_data_split_each_call():
    b = RLW(2, seed=9)
    assert b.key[...].dtype == jnp.uint32
    key = jax.random.key(9, impl="threefry2x32")
    np.testing.assert_array_equal(b.key[...], jax.random.key_data(key))
    for _ in range(2):
        b(jnp.ones(2))
        key = jax.random.split(key)[0]
        np.testing.assert_array_equal(b.key[...], jax.random.key_data(key))


# --------------------------------------------------------------------------- qualitative


def _stall_seq(steps=8):
    """Loss 0 falls fast, loss 1 stalls, loss 2 falls slowly."""
    t = np.arange(steps, dtype=np.float64)[:, None]
    return np.array([0.5, 1.0, 0.9]) ** t


@pytest.mark.parametrize(
    "make",
    [
        lambda: SoftAdapt(3),
        lambda: DWA(3),
        lambda: ReLoBRaLo(3, expected_rho=1.0),
        lambda: ReLoBRaLo(3, expected_rho=0.0),
    ],
    ids=["softadapt", "dwa", "relobralo_rho1", "relobralo_rho0"],
)
def test_stalling_loss_gains_weight(make):
    w = run_eager(make(), _stall_seq())[-1]
    assert w[1] > w[2] > w[0]
    assert w[1] > 1.0 > w[0]


def test_relobralo_weight_of_stalling_loss_grows_with_the_ema():
    w = run_eager(ReLoBRaLo(3, alpha=0.9, expected_rho=1.0), _stall_seq(10))
    assert np.all(np.diff(w[1:, 1]) > 0)
    assert np.all(np.diff(w[1:, 0]) < 0)


def test_lbpinns_weights_settle_at_inverse_losses():
    losses = np.array([100.0, 1.0, 0.01])
    w = scan_one(LbPINNsLossBalancing(3, lr_s=0.02), np.tile(losses, (2000, 1)))
    np.testing.assert_allclose(w[-100:].mean(axis=0) * losses, 1.0, rtol=0.03)


def test_lbpinns_zero_losses_drive_s_to_its_clip():
    b = LbPINNsLossBalancing(2, init_s=-19.95, lr_s=1.0)
    for _ in range(3):
        w = b(jnp.array([0.0, 0.0]))
    np.testing.assert_array_equal(b.s[...], [-20.0, -20.0])
    np.testing.assert_allclose(w, 0.5 * np.exp(20.0), rtol=1e-6)


def test_rlw_ignores_losses():
    a = run_eager(RLW(3, seed=4), SEQ[:3])
    b = run_eager(RLW(3, seed=4), SEQ[::-1][:3] * 100)
    np.testing.assert_array_equal(a, b)
