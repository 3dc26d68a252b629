"""The loss preprocessing modes against hand computations, eager and compiled."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from balancer_reference import SEQ, normalize
from flax import nnx

from jno.nnx.balancers.normalize import MODES, LossNormalizer
from jno.nnx.state import BalancerState


def test_raw_is_identity_and_stateless():
    norm = LossNormalizer(3)
    x = jnp.array([0.5, 0.0, 7.0])
    np.testing.assert_array_equal(norm(x), x)
    assert len(nnx.state(norm, BalancerState)) == 0


def test_l2_hand_values():
    norm = LossNormalizer(2, mode="l2", eps=1e-8)
    np.testing.assert_allclose(norm(jnp.array([3.0, 4.0])), [0.6, 0.8], rtol=1e-6)
    # eps enters the denominator: |(1e-8, 0)| + 1e-8 = 2e-8
    np.testing.assert_allclose(norm(jnp.array([1e-8, 0.0])), [0.5, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(norm(jnp.zeros(2)), [0.0, 0.0])


def test_l2_large_losses_do_not_overflow():
    norm = LossNormalizer(3, mode="l2")
    np.testing.assert_allclose(norm(jnp.array([3e38, 3e38, 3e38])), [3**-0.5] * 3, rtol=1e-6)
    np.testing.assert_allclose(norm(jnp.array([1e38, 0.0, 0.0])), [1.0, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(norm(jnp.array([3e20, 4e20, 0.0])), [0.6, 0.8, 0.0], rtol=1e-6)


def test_minmax_hand_values_and_running_range():
    norm = LossNormalizer(2, mode="minmax")
    # First call: a single observed value per loss, so the range is degenerate -> 1.
    np.testing.assert_array_equal(norm(jnp.array([4.0, 1.0])), [1.0, 1.0])
    np.testing.assert_array_equal(norm.min[...], [4.0, 1.0])
    np.testing.assert_array_equal(norm.max[...], [4.0, 1.0])
    # Loss 0 hits a new minimum (0), loss 1 a new maximum (1).
    np.testing.assert_array_equal(norm(jnp.array([2.0, 3.0])), [0.0, 1.0])
    np.testing.assert_array_equal(norm(jnp.array([3.0, 2.0])), [0.5, 0.5])
    np.testing.assert_array_equal(norm(jnp.array([5.0, 1.5])), [1.0, 0.25])
    np.testing.assert_array_equal(norm.min[...], [2.0, 1.0])
    np.testing.assert_array_equal(norm.max[...], [5.0, 3.0])


def test_minmax_constant_and_zero_losses_stay_finite():
    norm = LossNormalizer(2, mode="minmax")
    for _ in range(3):
        np.testing.assert_array_equal(norm(jnp.array([0.0, 2.0])), [1.0, 1.0])
    np.testing.assert_array_equal(norm(jnp.array([1e-30, 2.0])), [1.0, 1.0])
    np.testing.assert_array_equal(norm(jnp.array([0.0, 2.0])), [0.0, 1.0])


def test_minmax_tiny_losses_use_their_own_range():
    norm = LossNormalizer(1, mode="minmax", eps=1e-3)
    norm(jnp.array([4e-10]))
    norm(jnp.array([2e-10]))
    np.testing.assert_allclose(norm(jnp.array([3e-10])), [0.5], rtol=1e-5)


@nnx.jit
def _scan_normalizers(norms, seq):
    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))
    def body(ns, losses):
        return ns, {mode: n(losses) for mode, n in ns.items()}

    return body(norms, seq)[1]


def test_compiled_modes_match_numpy_sequence():
    norms = {mode: LossNormalizer(3, mode=mode) for mode in MODES}
    out = _scan_normalizers(norms, jnp.asarray(SEQ, jnp.float32))
    for mode in MODES:
        np.testing.assert_allclose(out[mode], normalize(SEQ, mode), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(norms["minmax"].min[...], SEQ.min(axis=0).astype(np.float32))
    np.testing.assert_array_equal(norms["minmax"].max[...], SEQ.max(axis=0).astype(np.float32))


@pytest.mark.parametrize("mode", ["L2", "max", "", None, 2])
def test_unknown_mode_names_the_value(mode):
    with pytest.raises(ValueError, match=f"mode must be one of .*got {mode!r}"):
        LossNormalizer(2, mode=mode)


@pytest.mark.parametrize("eps", [0.0, -1e-8, float("nan"), float("inf")])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        LossNormalizer(2, mode="l2", eps=eps)
