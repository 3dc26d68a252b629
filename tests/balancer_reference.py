"""NumPy (float64) transcriptions of the balancer formulas, used as test oracles.

Each ``ref_*`` function takes the sequence of preprocessed losses (one row per call)
and returns the sequence of weights the formula prescribes.
"""

from __future__ import annotations

import jax
import numpy as np

SEQ = np.array(
    [
        [1.0, 0.5, 2.0],
        [0.8, 0.6, 1.5],
        [0.9, 0.45, 1.6],
        [0.6, 0.5, 1.2],
        [0.7, 0.3, 1.3],
        [0.4, 0.35, 1.25],
        [0.5, 0.2, 0.9],
    ]
)


def normalize(seq: np.ndarray, mode: str, eps: float = 1e-8) -> np.ndarray:
    seq = np.asarray(seq, np.float64)
    if mode == "raw":
        return seq.copy()
    if mode == "l2":
        return np.stack([row / (np.linalg.norm(row) + eps) for row in seq])
    assert mode == "minmax"
    out, lo, hi = [], np.full(seq.shape[1], np.inf), np.full(seq.shape[1], -np.inf)
    for row in seq:
        lo, hi = np.minimum(lo, row), np.maximum(hi, row)
        span = hi - lo
        out.append(np.where(span > 0, (row - lo) / np.where(span > 0, span, 1.0), 1.0))
    return np.stack(out)


def n_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return len(z) * e / e.sum()


def ref_softadapt(xs: np.ndarray, beta: float, eps: float = 1e-8) -> np.ndarray:
    out = [np.ones(xs.shape[1])]
    for prev, x in zip(xs[:-1], xs[1:]):
        out.append(n_softmax(x / (prev + eps) / beta))
    return np.stack(out)


def ref_dwa(xs: np.ndarray, temperature: float, eps: float = 1e-8) -> np.ndarray:
    out = [np.ones(xs.shape[1])] * min(2, len(xs))
    for t in range(2, len(xs)):
        out.append(n_softmax(xs[t - 1] / (xs[t - 2] + eps) / temperature))
    return np.stack(out)


def ref_relobralo(xs, alpha, tau, rhos, eps: float = 1e-8) -> np.ndarray:
    """``rhos[t]`` is the Bernoulli draw of call t (the first call's is unused)."""

    def w_hat(x, ref):
        return n_softmax(x / (tau * ref + eps))

    lam = np.ones(xs.shape[1])
    out = [lam]
    for t in range(1, len(xs)):
        x, rho = xs[t], rhos[t]
        lam = alpha * (rho * lam + (1 - rho) * w_hat(x, xs[0])) + (1 - alpha) * w_hat(x, xs[t - 1])
        out.append(lam)
    return np.stack(out)


def ref_lbpinns(xs, init_s, lr_s) -> np.ndarray:
    b1, b2, adam_eps = 0.9, 0.999, 1e-8
    s = np.broadcast_to(np.asarray(init_s, np.float64), (xs.shape[1],)).copy()
    m, v = np.zeros_like(s), np.zeros_like(s)
    out = []
    for t, x in enumerate(xs, start=1):
        g = 1.0 - 0.5 * np.exp(-s) * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        s = np.clip(s - lr_s * m_hat / (np.sqrt(v_hat) + adam_eps), -20.0, 20.0)
        out.append(0.5 * np.exp(-s))
    return np.stack(out)


def subkeys(seed: int, calls: int) -> list:
    """The documented RNG stream: every call splits the stored key and draws from the
    second half."""
    key = jax.random.key(seed, impl="threefry2x32")
    out = []
    for _ in range(calls):
        key, sub = jax.random.split(key)
        out.append(sub)
    return out


def ref_rho(seed: int, calls: int, expected_rho: float) -> np.ndarray:
    return np.array([float(jax.random.bernoulli(k, expected_rho)) for k in subkeys(seed, calls)])


def ref_rlw(num_losses: int, alpha: float, seed: int, calls: int) -> np.ndarray:
    out = []
    for k in subkeys(seed, calls):
        if alpha == 1.0:
            e = np.asarray(jax.random.exponential(k, (num_losses,), np.float32), np.float64)
            out.append(num_losses * e / e.sum())
        else:
            conc = np.full(num_losses, alpha, np.float32)
            out.append(num_losses * np.asarray(jax.random.dirichlet(k, conc), np.float64))
    return np.stack(out)
