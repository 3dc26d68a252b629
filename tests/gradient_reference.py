"""A tiny fixed problem and float64 NumPy transcriptions of the gradient-balancer formulas.

The problem is a small tanh network with three loss terms of very different scales;
``PARAMS``, ``JACS``, ``LOSSES`` and ``GRADS`` follow ``STEPS`` gradient steps on their
sum. Each ``ref_*`` function takes the loss and ``(N, P)`` gradient sequences (one row per
call) and returns the sequence of weights the formula prescribes; ``CASES`` pairs each
balancer configuration under test with its reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing, per_term_gradients

TOL = {"rtol": 1e-5, "atol": 1e-6}
STEPS = 5

# ------------------------------------------------------------------ a tiny fixed problem

X = jnp.asarray(np.linspace(-1.0, 1.0, 16).reshape(8, 2), jnp.float32)
XB = jnp.asarray([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], jnp.float32)


def init_params():
    rng = np.random.default_rng(0)
    return {
        "w1": jnp.asarray(rng.normal(size=(2, 8)), jnp.float32),
        "b1": jnp.asarray(0.1 * rng.normal(size=(8,)), jnp.float32),
        "w2": jnp.asarray(0.5 * rng.normal(size=(8, 1)), jnp.float32),
        "b2": jnp.zeros((1,), jnp.float32),
    }


def net(p, x):
    return (jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]


def loss_vector(p):
    """Three terms of very different scales: a residual, a boundary and a data term."""
    u = net(p, X)
    return jnp.stack(
        [
            jnp.mean((u - jnp.sin(jnp.pi * X[:, 0])) ** 2),
            10.0 * jnp.mean(net(p, XB) ** 2),
            0.01 * jnp.mean((u - 1.0) ** 2),
        ]
    )


def _trajectory():
    """Params after 0..STEPS-1 gradient steps on the summed loss; losses and (N, P) grads."""
    p = init_params()
    params, losses, jacs = [], [], []
    # One compiled program for the losses and their Jacobian, reused at every step.
    step_fn = jax.jit(lambda p: (loss_vector(p), jax.jacrev(loss_vector)(p)))
    for _ in range(STEPS):
        params.append(p)
        loss, jac = step_fn(p)
        losses.append(np.asarray(loss))
        jacs.append(jac)
        p = jax.tree.map(lambda a, j: a - 0.3 * j.sum(axis=0), p, jac)
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
