"""NaN/Inf and zero losses, wrong lengths, bad hyper-parameters, config()."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from balancer_reference import SEQ
from flax import nnx

from jno.nnx.balancers import (
    DWA,
    RLW,
    Balancer,
    LbPINNsLossBalancing,
    LossNormalizer,
    ReLoBRaLo,
    SoftAdapt,
)
from jno.nnx.state import BalancerState

MAKERS = {
    "relobralo": lambda mode="raw": ReLoBRaLo(3, expected_rho=0.5, mode=mode),
    "softadapt": lambda mode="raw": SoftAdapt(3, mode=mode),
    "dwa": lambda mode="raw": DWA(3, mode=mode),
    "lbpinns": lambda mode="raw": LbPINNsLossBalancing(3, mode=mode),
    "rlw": lambda mode="raw": RLW(3, mode=mode),
}
MODES = ["raw", "minmax", "l2"]


def state_values(balancer):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(balancer, BalancerState))]


def assert_same_state(a, b):
    for x, y in zip(state_values(a), state_values(b), strict=True):
        np.testing.assert_array_equal(x, y)


@nnx.jit
def _jit_call(balancers, losses):
    return {name: b(losses) for name, b in balancers.items()}


def _call(balancers, losses, *_):
    return {name: b(losses) for name, b in balancers.items()}


BAD = [
    [np.nan, 1.0, 1.0],
    [1.0, np.inf, 1.0],
    [1.0, 1.0, -np.inf],
    [np.nan, np.nan, np.nan],
]


@pytest.mark.parametrize("mode", MODES)
def test_non_finite_losses_keep_weights_and_state(mode):
    """A clean balancer and one that also sees NaN/Inf calls stay identical, eager and
    compiled; the NaN calls return the previous weights."""
    clean = {name: make(mode) for name, make in MAKERS.items()}
    dirty = {name: make(mode) for name, make in MAKERS.items()}
    seq = jnp.asarray(SEQ[:4], jnp.float32)
    # l2 mode has no state of its own: eager only, to save a compilation.
    call = (
        _call
        if mode == "l2"
        else lambda bs, x, step: _jit_call(bs, x) if step % 2 else _call(bs, x)
    )
    for step, row in enumerate(seq):
        expected = {name: b(row) for name, b in clean.items()}
        got = call(dirty, row, step)
        for bad in BAD[: 1 + step]:
            again = call(dirty, jnp.asarray(bad, jnp.float32), step)
            for name in MAKERS:
                np.testing.assert_array_equal(again[name], got[name])
        for name in MAKERS:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-6)
            assert int(dirty[name].calls[...]) == step + 1
            for x, y in zip(state_values(dirty[name]), state_values(clean[name]), strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_nan_on_first_call_returns_ones(name):
    b = MAKERS[name]()
    fresh = MAKERS[name]()
    np.testing.assert_array_equal(b(jnp.array([np.nan, 1.0, 1.0])), np.ones(3))
    assert_same_state(b, fresh)


ZERO_SEQS = [
    np.zeros((5, 3)),
    np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1e-30, 0]]),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seq", range(len(ZERO_SEQS)))
def test_zero_losses_give_finite_weights_and_state(mode, seq):
    balancers = {name: make(mode) for name, make in MAKERS.items()}
    call = _call if mode == "l2" else _jit_call
    for row in ZERO_SEQS[seq]:
        out = call(balancers, jnp.asarray(row, jnp.float32))
        for name, w in out.items():
            assert np.all(np.isfinite(w)) and np.all(np.asarray(w) >= 0), name
    for name, b in balancers.items():
        assert int(b.calls[...]) == len(ZERO_SEQS[seq]), name  # no call was rejected
        for x in state_values(b):
            assert np.all(np.isfinite(x)) if x.dtype.kind == "f" else True


def test_zero_losses_exact_values():
    s = SoftAdapt(2, beta=1.0)
    s(jnp.zeros(2))
    # ratios 0 / (0 + eps) = 0 and 1 / (0 + eps) = 1e8: all the weight on loss 1
    np.testing.assert_allclose(s(jnp.array([0.0, 1.0])), [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(s(jnp.zeros(2)), [1.0, 1.0])
    r = ReLoBRaLo(2, expected_rho=1.0)
    r(jnp.zeros(2))
    np.testing.assert_allclose(r(jnp.zeros(2)), [1.0, 1.0])


def test_huge_finite_losses_are_accepted():
    s = SoftAdapt(2)
    s(jnp.array([0.0, 0.0]))
    np.testing.assert_array_equal(s(jnp.array([3e38, 0.0])), [2.0, 0.0])
    assert int(s.calls[...]) == 2
    b = LbPINNsLossBalancing(2)
    w = b(jnp.array([3e38, 1.0]))
    assert np.all(np.isfinite(w)) and int(b.calls[...]) == 1


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_wrong_length_raises_naming_both(name):
    b = MAKERS[name]()
    with pytest.raises(ValueError, match=r"num_losses=3.*got 2"):
        b(jnp.ones(2))
    with pytest.raises(ValueError, match=r"num_losses=3.*got 4"):
        b([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"num_losses=3.*got 4"):
        nnx.jit(lambda b, x: b(x))(b, jnp.ones(4))
    with pytest.raises(ValueError, match=r"1-D.*shape \(3, 1\)"):
        b(jnp.ones((3, 1)))
    with pytest.raises(ValueError, match=r"losses\[1\] must be a scalar"):
        b([1.0, jnp.ones(2), 3.0])
    assert int(b.calls[...]) == 0


# --------------------------------------------------------------------------- arguments

BAD_ARGS = [
    (ReLoBRaLo, {"alpha": -0.1}, "alpha"),
    (ReLoBRaLo, {"alpha": 1.5}, "alpha"),
    (ReLoBRaLo, {"tau": 0.0}, "tau"),
    (ReLoBRaLo, {"tau": -1.0}, "tau"),
    (ReLoBRaLo, {"expected_rho": -0.01}, "expected_rho"),
    (ReLoBRaLo, {"expected_rho": 1.01}, "expected_rho"),
    (ReLoBRaLo, {"alpha": float("nan")}, "alpha"),
    (SoftAdapt, {"beta": 0.0}, "beta"),
    (SoftAdapt, {"beta": -0.1}, "beta"),
    (DWA, {"temperature": 0.0}, "temperature"),
    (DWA, {"temperature": -2.0}, "temperature"),
    (LbPINNsLossBalancing, {"lr_s": 0.0}, "lr_s"),
    (LbPINNsLossBalancing, {"lr_s": -1e-2}, "lr_s"),
    (LbPINNsLossBalancing, {"init_s": [0.0, 1.0]}, "init_s"),
    (LbPINNsLossBalancing, {"init_s": 25.0}, "init_s"),
    (LbPINNsLossBalancing, {"init_s": [0.0, float("inf"), 0.0]}, "init_s[1]"),
    (RLW, {"alpha": 0.0}, "alpha"),
    (RLW, {"alpha": -1.0}, "alpha"),
    (SoftAdapt, {"mode": "L1"}, "mode"),
    (DWA, {"eps": 0.0}, "eps"),
]


@pytest.mark.parametrize(("cls", "kwargs", "arg"), BAD_ARGS)
def test_bad_hyper_parameter_raises_naming_it(cls, kwargs, arg):
    value = next(iter(kwargs.values()))
    if isinstance(value, list) and arg.endswith("]"):
        value = value[int(arg[-2])]
    with pytest.raises(
        ValueError, match="^" + re.escape(arg) + " must .*got " + re.escape(repr(value))
    ):
        cls(3, **kwargs)


@pytest.mark.parametrize("num_losses", [0, -1, 2.5, 3.0, "3", True, None])
@pytest.mark.parametrize("cls", [ReLoBRaLo, SoftAdapt, DWA, LbPINNsLossBalancing, RLW])
def test_bad_num_losses(cls, num_losses):
    with pytest.raises(
        ValueError, match=rf"num_losses must be an integer >= 1, got {num_losses!r}"
    ):
        cls(num_losses)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(ReLoBRaLo, {"seed": 1.5}), (RLW, {"seed": "1"}), (SoftAdapt, {"beta": "0.1"})],
)
def test_wrong_types_raise_type_error(cls, kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        cls(2, **kwargs)


def test_boundary_values_are_accepted():
    ReLoBRaLo(1, alpha=0.0, expected_rho=0.0)
    ReLoBRaLo(1, alpha=1.0, expected_rho=1.0)
    LbPINNsLossBalancing(2, init_s=[-20.0, 20.0])
    LbPINNsLossBalancing(2, init_s=np.float32(0.5))


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "balancer",
    [
        ReLoBRaLo(2, alpha=0.9, tau=0.2, expected_rho=0.5, seed=3, mode="minmax", eps=1e-6),
        SoftAdapt(2, beta=0.3, mode="l2"),
        DWA(2, temperature=1.5),
        LbPINNsLossBalancing(2, init_s=[0.5, -0.5], lr_s=0.05),
        LbPINNsLossBalancing(2, init_s=1.0),
        RLW(2, alpha=0.5, seed=7),
    ],
    ids=lambda b: type(b).__name__,
)
def test_config_is_json_and_rebuilds_the_balancer(balancer):
    config = json.loads(json.dumps(balancer.config()))
    cls = {c.__name__: c for c in (ReLoBRaLo, SoftAdapt, DWA, LbPINNsLossBalancing, RLW)}
    rebuilt = cls[config.pop("class")](**config)
    assert rebuilt.config() == balancer.config()
    assert_same_state(rebuilt, balancer)


def test_config_values():
    assert ReLoBRaLo(3).config() == {
        "class": "ReLoBRaLo",
        "num_losses": 3,
        "alpha": 0.99,
        "tau": 0.1,
        "expected_rho": 0.999,
        "seed": 42,
        "mode": "raw",
        "eps": 1e-8,
    }
    assert LbPINNsLossBalancing(2, init_s=(1, 2)).config()["init_s"] == [1.0, 2.0]


def test_all_state_is_balancer_state_never_param():
    for make in MAKERS.values():
        for mode in MODES:
            b = make(mode)
            assert len(nnx.state(b, nnx.Param)) == 0
            everything = jax.tree.leaves(nnx.state(b))
            assert len(everything) == len(jax.tree.leaves(nnx.state(b, BalancerState)))
    assert isinstance(SoftAdapt(2).normalizer, LossNormalizer)
    assert issubclass(SoftAdapt, Balancer)
