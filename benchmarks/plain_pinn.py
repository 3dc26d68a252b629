"""Plain-JAX PINN training loops: the baselines of the benchmarks.

Nothing here imports jno: a baseline that shared the library's code could not see its
cost. Parameters are a list of ``(W, b)``; the network is a tanh MLP. Two ways to take
the input derivatives a residual needs:

* :func:`vmap_derivs`: the network on one point, each derivative a nested ``jax.jvp``,
  ``jax.vmap`` over the points (the textbook formulation);
* :func:`taylor_derivs`: every derivative propagated forward through the layers in one
  batched pass that shares the primal activations, the Laplacian propagated as such
  (hand-written Taylor mode; the fastest formulation known to us on CPU).

Problems: ``poisson`` (``lap u + f``), ``helmholtz`` (``lap u + k^2 u - q``),
``burgers`` (``u_t + u u_x - nu u_xx``), ``klein_gordon`` (``u_tt - u_xx + u^3``), each
with ``u = 0`` on the boundary points and, for the time-dependent ones,
``u + sin(pi x) = 0`` on the initial points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

HIDDEN = [64, 64, 64, 64]
N_RES, N_BND = 4096, 256
NU = 0.01 / np.pi
PROBLEMS = ("poisson", "helmholtz", "burgers", "klein_gordon")


def points(problem: str, dtype, n_res: int = N_RES, n_bnd: int = N_BND, seed: int = 0):
    """Fixed residual, boundary (and initial) points of ``problem``, as ``dtype`` arrays."""
    rng = np.random.default_rng(seed)
    lo, hi = (0.0, 1.0) if problem == "poisson" else (-1.0, 1.0)
    if problem in ("burgers", "klein_gordon"):
        interior = np.stack([rng.uniform(-1, 1, n_res), rng.uniform(0, 1, n_res)], 1)
        boundary = np.stack(
            [np.where(np.arange(n_bnd) % 2, 1.0, -1.0), rng.uniform(0, 1, n_bnd)], 1
        )
        initial = np.stack([rng.uniform(-1, 1, n_bnd), np.zeros(n_bnd)], 1)
        pts = {"interior": interior, "boundary": boundary, "initial": initial}
    else:
        interior = rng.uniform(lo, hi, (n_res, 2))
        t = rng.uniform(lo, hi, n_bnd)
        side = np.arange(n_bnd) % 4
        boundary = np.stack(
            [
                np.where(side == 0, lo, np.where(side == 1, hi, t)),
                np.where(side == 2, lo, np.where(side == 3, hi, t)),
            ],
            1,
        )
        pts = {"interior": interior, "boundary": boundary}
    return {k: jnp.asarray(v, dtype) for k, v in pts.items()}


def source(problem: str, x: jax.Array) -> jax.Array:
    if problem == "poisson":
        return 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])
    # Helmholtz: q = (k^2 - pi^2 - 16 pi^2) sin(pi x) sin(4 pi y), k = 1.
    return (1.0 - 17 * jnp.pi**2) * jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(4 * jnp.pi * x[:, 1])


def init_params(key, dtype, hidden=HIDDEN):
    """Glorot-normal kernels, zero biases: a list of ``(W, b)``."""
    sizes = [2, *hidden, 1]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append(
            (jax.random.normal(sub, (a, b), dtype) * np.sqrt(2 / (a + b)), jnp.zeros(b, dtype))
        )
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _name(key) -> str:
    return "d" + "".join(map(str, key))


def _point_derivs(params, xi, need):
    """Per point: value and the requested derivatives with nested jvp."""
    f = lambda y: mlp(params, y)[0]
    e = jnp.eye(2, dtype=xi.dtype)
    out = {"u": f(xi)}
    if "lap" in need:
        need = ((0, 0), (1, 1))
    for key in need:
        if len(key) == 1:
            out[_name(key)] = jax.jvp(f, (xi,), (e[key[0]],))[1]
        else:
            i, j = key
            di = lambda y, i=i: jax.jvp(f, (y,), (e[i],))[1]
            out[_name(key)] = jax.jvp(di, (xi,), (e[j],))[1]
    return out


def taylor_derivs(params, x, need):
    """Batched: value, first and second derivatives in one forward pass.

    ``"lap"`` in ``need`` propagates the Laplacian itself (sum of the second
    derivatives along each axis) rather than each second derivative.
    """
    lap = "lap" in need
    need = [k for k in need if k != "lap"]
    firsts = sorted({k for key in need for k in key} | ({0, 1} if lap else set()))
    seconds = [key for key in need if len(key) == 2]
    h, first, second, lap_h, is_input = x, None, None, None, True
    for w, b in params[:-1]:
        z = h @ w + b
        if is_input:
            zf = {i: w[i] for i in firsts}  # e_i @ W: one row, shared by all points
            zs = {k: 0.0 for k in seconds}
            zl = 0.0
        else:
            zf = {i: first[i] @ w for i in firsts}
            zs = {k: second[k] @ w for k in seconds}
            zl = lap_h @ w if lap else 0.0
        t = jnp.tanh(z)
        d1 = 1 - t * t
        d2 = -2 * t * d1
        h = t
        first = {i: d1 * zf[i] for i in firsts}
        second = {(i, j): d2 * zf[i] * zf[j] + d1 * zs[(i, j)] for (i, j) in seconds}
        if lap:
            lap_h = d2 * sum(zf[i] * zf[i] for i in firsts) + d1 * zl
        is_input = False
    w, b = params[-1]
    out = {"u": (h @ w + b)[:, 0]}
    for key in need:
        src = first[key[0]] if len(key) == 1 else second[key]
        out[_name(key)] = (src @ w)[:, 0]
    if lap:
        out["lap"] = (lap_h @ w)[:, 0]
    return out


def _laplacian(d):
    return d["lap"] if "lap" in d else d["d00"] + d["d11"]


NEEDS = {
    "poisson": ("lap",),
    "helmholtz": ("lap",),
    "burgers": ((0,), (1,), (0, 0)),
    "klein_gordon": ((0, 0), (1, 1)),
}


def loss_fn(problem: str, derivs_fn):
    need = NEEDS[problem]

    def loss(params, batch):
        x = batch["interior"]
        d = derivs_fn(params, x, need)
        if problem == "poisson":
            r = _laplacian(d) + source(problem, x)
        elif problem == "helmholtz":
            r = _laplacian(d) + d["u"] - source(problem, x)
        elif problem == "burgers":
            r = d["d1"] + d["u"] * d["d0"] - NU * d["d00"]
        else:
            r = d["d11"] - d["d00"] + d["u"] ** 3
        total = jnp.mean(r**2) + jnp.mean(mlp(params, batch["boundary"]) ** 2)
        if "initial" in batch:
            x0 = batch["initial"]
            total = total + jnp.mean((mlp(params, x0)[:, 0] + jnp.sin(jnp.pi * x0[:, 0])) ** 2)
        return total

    return loss


def vmap_derivs(params, x, need):
    return jax.vmap(lambda xi: _point_derivs(params, xi, need))(x)


def make_loop(problem: str, points, derivs_fn, steps: int, dtype, hidden=HIDDEN, fused=True):
    """A training loop of ``steps`` Adam (1e-3) steps per call; returns ``block()``.

    ``fused``: all steps in one jitted ``fori_loop``; otherwise one jitted call per step
    (what most scripts do). Each ``block()`` continues from the previous one.
    """
    loss = loss_fn(problem, derivs_fn)
    tx = optax.adam(1e-3)
    params = init_params(jax.random.PRNGKey(0), dtype, hidden)

    def step(carry):
        p, s = carry
        g = jax.grad(loss)(p, points)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    state = [(params, tx.init(params))]
    if fused:
        run = jax.jit(lambda c: jax.lax.fori_loop(0, steps, lambda _, c: step(c), c))
    else:
        one = jax.jit(step)

        def run(c):
            for _ in range(steps):
                c = one(c)
            return c

    def block():
        state[0] = run(state[0])
        return state[0]

    return block
