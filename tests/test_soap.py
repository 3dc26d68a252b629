"""jno.optim.soap against a numpy transcription of SOAP (Vyas et al. 2024)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jno.optim import soap


def numpy_soap(params, grad_fn, steps, first_bases, lr, b1, b2, sb, eps, wd, freq):
    """SOAP written out with numpy, one tensor at a time (2-D: both sides; 1-D: Adam).

    The factors of a single gradient are singular, and the eigenvectors of their null
    space are arbitrary: the first bases are given (``first_bases``), every later
    basis is computed here.
    """
    params = {k: np.array(v) for k, v in params.items()}
    state = {
        k: {"t": 0, "m": np.zeros_like(v), "v": np.zeros_like(v), "f": None}
        for k, v in params.items()
    }
    for _ in range(steps):
        grads = grad_fn(params)
        for k, g in grads.items():
            s, w = state[k], params[k]
            two_d = g.ndim == 2
            if s["f"] is None:  # first call: the factors and their eigenbases only
                if two_d:
                    s["f"] = [(1 - sb) * g @ g.T, (1 - sb) * g.T @ g]
                    s["q"] = [np.array(q) for q in first_bases[k]]
                    for f, q in zip(s["f"], s["q"]):  # eigenvectors, largest first
                        values = np.diag(q.T @ f @ q)
                        np.testing.assert_allclose(f @ q, q * values, atol=1e-12)
                        assert np.all(np.diff(values) <= 1e-12)
                else:
                    s["f"] = []
                continue

            def rot(x, s=s, two_d=two_d):
                return s["q"][0].T @ x @ s["q"][1] if two_d else x

            def back(x, s=s, two_d=two_d):
                return s["q"][0] @ x @ s["q"][1].T if two_d else x

            s["t"] += 1
            gp = rot(g)
            s["m"] = b1 * s["m"] + (1 - b1) * gp
            s["v"] = b2 * s["v"] + (1 - b2) * gp**2
            size = lr * np.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"])
            w = w - size * back(s["m"] / (np.sqrt(s["v"]) + eps))
            w = w - lr * wd * w
            params[k] = w
            if two_d:
                m = back(s["m"])
                s["f"] = [sb * s["f"][0] + (1 - sb) * g @ g.T, sb * s["f"][1] + (1 - sb) * g.T @ g]
                if s["t"] % freq == 0:
                    for axis in (0, 1):
                        f, q = s["f"][axis], s["q"][axis]
                        order = np.argsort(-np.diag(q.T @ f @ q))
                        s["v"] = np.take(s["v"], order, axis=axis)
                        s["q"][axis] = np.linalg.qr(f @ q[:, order])[0]
                s["m"] = rot(m)
    return params


def test_soap_matches_numpy_over_refreshes_of_the_bases():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(16, 3))
        y = np.sin(x @ rng.normal(size=(3, 1)))
        params = {
            "w1": rng.normal(size=(3, 5)) / 2,
            "b1": np.zeros(5),
            "w2": rng.normal(size=(5, 1)) / 2,
        }

        def loss(p):
            h = jnp.tanh(x @ p["w1"] + p["b1"])
            return jnp.mean((h @ p["w2"] - y) ** 2)

        grad = jax.jit(jax.grad(loss))
        grad_np = lambda p: {k: np.asarray(v) for k, v in grad(p).items()}  # noqa: E731
        hyper = dict(lr=0.05, b1=0.9, b2=0.99, sb=0.95, eps=1e-8, wd=0.01, freq=4)
        tx = soap(
            learning_rate=hyper["lr"],
            b1=hyper["b1"],
            b2=hyper["b2"],
            shampoo_beta=hyper["sb"],
            eps=hyper["eps"],
            weight_decay=hyper["wd"],
            precondition_frequency=hyper["freq"],
        )
        p = {k: jnp.asarray(v) for k, v in params.items()}
        state = tx.init(p)
        step = jax.jit(lambda p, s: tx.update(grad(p), s, p))
        for i in range(14):  # three refreshes of the bases (updates 4, 8 and 12)
            updates, state = step(p, state)
            p = optax.apply_updates(p, updates)
            if i == 0:
                first = {k: state.bases[k] for k in ("w1", "w2")}
        expected = numpy_soap(params, grad_np, 14, first, **hyper)
        assert int(state.count) == 14
        for k in params:
            # float64; XLA's and numpy's eigendecompositions round differently.
            np.testing.assert_allclose(p[k], expected[k], rtol=1e-8, atol=1e-12)
        # The bases stay orthonormal through the refreshes.
        for q in state.bases["w1"]:
            np.testing.assert_allclose(q.T @ q, np.eye(q.shape[0]), atol=1e-12)


def test_soap_trains_with_a_schedule_and_rejects_bad_settings():
    # Rates 0.1, 0.09, ..., 0 exactly (optax.linear_schedule's end rounds to +-1.5e-9).
    schedule = lambda count: 0.01 * jnp.maximum(10 - count, 0)  # noqa: E731
    tx = soap(learning_rate=schedule, weight_decay=0.0)
    p = {"w": jnp.ones((2, 2))}
    state = tx.init(p)
    loss = lambda p: jnp.sum((p["w"] - 3.0) ** 2)  # noqa: E731
    for _ in range(12):  # the first call builds the bases; then rates 0.1, 0.09, ..., 0
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
    assert float(jnp.abs(updates["w"]).max()) == 0.0  # the schedule reached 0
    assert loss(p) < loss({"w": jnp.ones((2, 2))})
    with pytest.raises(ValueError, match="b1"):
        soap(b1=1.0)
    with pytest.raises(ValueError, match="precondition_frequency"):
        soap(precondition_frequency=0)
    with pytest.raises(ValueError, match="weight_decay"):
        soap(weight_decay=-1.0)
