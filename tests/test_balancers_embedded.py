"""Balancers inside user models and NNX transforms: nnx.Optimizer(wrt=nnx.Param),
gradients, split/merge and checkpoint round trips, nnx.vmap, fori_loop, and an
end-to-end training where balancing changes the result."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from balancer_reference import SEQ
from flax import nnx

from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt
from jno.nnx.state import BalancerState

X = jnp.linspace(-1.0, 1.0, 16)[:, None]
# Noise orthogonal to 1 and x (Walsh pattern): it sets an irreducible floor of 64 on
# each mean squared error without moving the least-squares slope.
NOISE = 8.0 * jnp.tile(jnp.array([1.0, -1.0, -1.0, 1.0]), 4)[:, None]
Y_A = 2.0 * X + 10.0 + NOISE  # measured in units 10x smaller: loss scaled by 100
Y_B = 2.0 * X + NOISE


class Regressor(nnx.Module):
    def __init__(self, balancer, rngs):
        self.net = nnx.Linear(1, 1, rngs=rngs)
        self.balancer = balancer

    def losses(self):
        return jnp.stack(
            [100.0 * jnp.mean((self.net(X) - Y_A) ** 2), jnp.mean((self.net(X) - Y_B) ** 2)]
        )

    def weights(self, losses):
        return jnp.ones_like(losses) if self.balancer is None else self.balancer(losses)


@nnx.jit(static_argnums=2)
def train(model, optimizer, steps):
    def step(i, carry):
        model, optimizer = carry

        def loss_fn(model):
            losses = model.losses()
            return jnp.sum(model.weights(losses) * losses)

        grads = nnx.grad(loss_fn)(model)
        optimizer.update(model, grads)
        return model, optimizer

    nnx.fori_loop(0, steps, step, (model, optimizer))
    return model.losses()


def test_end_to_end_balancing_changes_the_fit():
    """Fixed weights converge to the weighted least-squares intercept 1000/101 ~ 9.9,
    dominated by the large loss. LbPINNs drives w_i * L_i -> 1, i.e. minimises
    sum_i log L_i = log(100((c - 10)^2 + 64)) + log(c^2 + 64), whose minimum is the
    symmetric c = 5 (stable because the noise floor 64 > 5^2)."""
    results = {}
    for name, balancer in [("fixed", None), ("lbpinns", LbPINNsLossBalancing(2, lr_s=0.1))]:
        model = Regressor(balancer, nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)
        losses = train(model, optimizer, 400)
        results[name] = (float(model.net.bias[...][0]), np.asarray(losses), model)
    c_fixed, losses_fixed, _ = results["fixed"]
    c_bal, losses_bal, model = results["lbpinns"]
    assert abs(c_fixed - 1000.0 / 101.0) < 0.05
    assert abs(c_bal - 5.0) < 1.0
    assert losses_bal[1] < 0.7 * losses_fixed[1]
    assert int(model.balancer.calls[...]) == 400
    np.testing.assert_allclose(float(model.net.kernel[...][0, 0]), 2.0, atol=0.05)


def test_design_embedding_example_optimizer_never_touches_balancer_state():
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.net = nnx.Linear(1, 1, rngs=rngs)
            self.balancer = SoftAdapt(3)

    model = Model(nnx.Rngs(1))
    optimizer = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)
    targets = jnp.array([0.0, 1.0, 3.0])

    @nnx.jit
    def step(model, optimizer, batch):
        def loss_fn(model):
            losses = jnp.mean((model.net(batch) - targets) ** 2, axis=0)  # (3,)
            return jnp.sum(model.balancer(losses) * losses), losses

        (loss, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return losses

    opt_leaves = jax.tree.leaves(nnx.state(optimizer, nnx.OptState))
    assert "balancer" not in str(nnx.state(optimizer, nnx.OptState))
    assert len(jax.tree.leaves(nnx.state(model, nnx.Param))) == 2
    reference = SoftAdapt(3)
    for _ in range(4):
        losses = step(model, optimizer, X)
        reference(losses)
        np.testing.assert_array_equal(model.balancer.prev_losses[...], losses)
    np.testing.assert_allclose(model.balancer.last_weights[...], reference.last_weights[...])
    assert int(model.balancer.calls[...]) == 4
    assert len(jax.tree.leaves(nnx.state(optimizer, nnx.OptState))) == len(opt_leaves)


@pytest.mark.parametrize(
    "make", [lambda: ReLoBRaLo(3), lambda: LbPINNsLossBalancing(3)], ids=["relobralo", "lbpinns"]
)
def test_no_gradient_flows_through_the_weights(make):
    """grad of sum(w(L(p)) * L(p)) equals grad of sum(w * L(p)) with w held fixed."""
    warm = make()
    warm(jnp.array([1.0, 2.0, 3.0]))
    graphdef, state = nnx.split(warm)
    p = jnp.array([0.3, -0.7, 1.1])
    loss_of = lambda p: jnp.array([1.0, 2.0, 3.0]) * (1.0 + p**2)

    def total(p):
        b = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
        losses = loss_of(p)
        return jnp.sum(b(losses) * losses)

    w = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))(loss_of(p))
    assert not np.allclose(w, 1.0)
    grad = jax.grad(total)(p)
    fixed = jax.grad(lambda p: jnp.sum(w * loss_of(p)))(p)
    np.testing.assert_allclose(grad, fixed, rtol=1e-6)


# --------------------------------------------------------------------------- transforms

MAKERS = [
    lambda: ReLoBRaLo(3, expected_rho=0.5),
    lambda: SoftAdapt(3),
    lambda: DWA(3),
    lambda: LbPINNsLossBalancing(3),
    lambda: RLW(3),
]
IDS = ["relobralo", "softadapt", "dwa", "lbpinns", "rlw"]


def _eager(balancer, rows):
    return np.stack([np.asarray(balancer(jnp.asarray(r, jnp.float32))) for r in rows])


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_split_merge_and_checkpoint_round_trip_continue_identically(make):
    seq = jnp.asarray(SEQ, jnp.float32)
    original = make()
    _eager(original, seq[:3])
    graphdef, state = nnx.split(original)
    # A checkpoint: every leaf as a plain NumPy array (the RNG key is uint32 data).
    saved = jax.tree.map(np.array, state)
    assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(saved))
    restored = make()
    nnx.update(restored, jax.tree.map(jnp.asarray, saved))
    clone = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
    expected = _eager(original, seq[3:])
    np.testing.assert_array_equal(_eager(restored, seq[3:]), expected)
    np.testing.assert_array_equal(_eager(clone, seq[3:]), expected)


def test_lax_fori_loop_over_split_state_matches_eager():
    seq = jnp.asarray(SEQ, jnp.float32)
    balancers = [m() for m in MAKERS]
    graphdef, state = nnx.split(balancers)

    @jax.jit
    def run(state):
        def body(i, state):
            bs = nnx.merge(graphdef, state)
            for b in bs:
                b(seq[i])
            return nnx.state(bs)

        return jax.lax.fori_loop(0, len(SEQ), body, state)

    final = nnx.merge(graphdef, run(state))
    for make, b in zip(MAKERS, final):
        expected = _eager(make(), seq)[-1]
        np.testing.assert_allclose(b.last_weights[...], expected, rtol=1e-5, atol=1e-6)
        assert int(b.calls[...]) == len(SEQ)


def test_vmap_over_stacked_independent_balancers():
    """Three SoftAdapt balancers with different histories, stacked along a batch axis
    and called under nnx.vmap, behave like three separate balancers."""
    seq = np.asarray(SEQ, np.float32)
    singles = [SoftAdapt(3, mode="minmax") for _ in range(3)]
    for k, b in enumerate(singles):
        _eager(b, seq[: k + 1] * (k + 1))
    graphdef, *_ = nnx.split(singles[0])
    states = [nnx.state(b) for b in singles]
    stacked = nnx.merge(graphdef, jax.tree.map(lambda *xs: jnp.stack(xs), *states))

    @nnx.jit
    def call(bs, losses):
        return nnx.vmap(lambda b, x: b(x), in_axes=(0, 0))(bs, losses)

    batch = jnp.asarray(seq[3:6])  # one loss vector per balancer
    for _ in range(2):
        got = call(stacked, batch)
        expected = np.stack([np.asarray(b(row)) for b, row in zip(singles, batch)])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(stacked.calls[...], [3, 4, 5])
    np.testing.assert_array_equal(
        stacked.normalizer.max[...], np.stack([b.normalizer.max[...] for b in singles])
    )


def test_balancer_state_filter_selects_only_balancer_state():
    model = Regressor(ReLoBRaLo(2), nnx.Rngs(0))
    state = nnx.state(model, BalancerState)
    names = {str(path[-1]) for path, _ in nnx.to_flat_state(state)}
    assert names == {"calls", "last_weights", "initial_losses", "prev_losses", "key"}
    params = nnx.state(model, nnx.Param)
    assert {str(p[0]) for p, _ in nnx.to_flat_state(params)} == {"net"}
