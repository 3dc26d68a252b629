"""The shared argument validators of jno.nnx._checks: accepted values, rejected ones,
the exception type and the message (argument name and value, ``"<name> must be ...,
got <value!r>"``)."""

from __future__ import annotations

import argparse
import fractions
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno.nnx._checks import (
    check_bool,
    check_choice,
    check_index,
    check_int,
    check_positive_int,
    check_real,
    check_seed,
    is_real,
)


def _message(name: str, rule: str, value: object) -> str:
    return "^" + re.escape(f"{name} must be {rule}, got {value!r}") + "$"


# --------------------------------------------------------------------------- check_int


@pytest.mark.parametrize(
    "value", [3, np.int32(3), np.int64(3), np.array(3), jnp.asarray(3, jnp.int32)]
)
def test_int_accepts_integers_and_returns_a_python_int(value):
    got = check_int("n", value)
    assert got == 3 and type(got) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 2.0, 2.5, "3", None, [3], np.ones(2)])
def test_int_rejects_other_types(value):
    with pytest.raises(TypeError, match=_message("n", "an int", value)):
        check_int("n", value)


@pytest.mark.parametrize(
    "kwargs, value, rule",
    [
        ({"minimum": 1}, 0, ">= 1"),
        ({"minimum": 0}, -1, ">= 0"),
        ({"maximum": 5}, 6, "<= 5"),
        ({"minimum": 2, "maximum": 300}, 400, "in [2, 300]"),
        ({"minimum": 2, "maximum": 300}, 1, "in [2, 300]"),
        ({"minimum": 1, "rule": "a positive count"}, 0, "a positive count"),
    ],
)
def test_int_range(kwargs, value, rule):
    with pytest.raises(ValueError, match=_message("n", rule, value)):
        check_int("n", value, **kwargs)


def test_int_bounds_are_inclusive_and_optional():
    assert check_int("n", 2, minimum=2, maximum=300) == 2
    assert check_int("n", 300, minimum=2, maximum=300) == 300
    assert check_int("seed", -(2**40)) == -(2**40)


def test_positive_int():
    assert check_positive_int("update_every", 1) == 1
    for value in (0, -3):
        with pytest.raises(ValueError, match=_message("update_every", "an integer >= 1", value)):
            check_positive_int("update_every", value)
    with pytest.raises(TypeError, match=_message("update_every", "an int", 1.5)):
        check_positive_int("update_every", 1.5)


def test_index_wraps_negative_indices():
    assert [check_index("i", i, 3) for i in (-3, -1, 0, 2)] == [0, 2, 0, 2]
    for i in (3, -4):
        with pytest.raises(ValueError, match=_message("i", "in [-3, 3)", i)):
            check_index("i", i, 3)
    with pytest.raises(ValueError, match=_message("i", "in [-2, 2) of 2 axes", 5)):
        check_index("i", 5, 2, rule="in [-2, 2) of 2 axes")
    with pytest.raises(TypeError, match=_message("i", "an int", 1.0)):
        check_index("i", 1.0, 3)


# -------------------------------------------------------------------------- check_real


@pytest.mark.parametrize(
    "value",
    [
        2,
        2.0,
        np.float32(2.0),
        np.int64(2),
        np.array(2.0),
        jnp.asarray(2.0),
        fractions.Fraction(4, 2),
    ],
)
def test_real_accepts_real_numbers_and_returns_a_python_float(value):
    got = check_real("x", value)
    assert got == 2.0 and type(got) is float


@pytest.mark.parametrize(
    "value", [True, np.bool_(True), "1.0", b"1", None, 1j, [1.0], np.ones(2), jnp.ones((1,))]
)
def test_real_rejects_other_types(value):
    with pytest.raises(TypeError, match=_message("x", "a real number", value)):
        check_real("x", value)


def test_real_rejects_traced_values():
    @jax.jit
    def f(x):
        check_real("x", x)
        return x

    with pytest.raises(
        TypeError, match=r"^x must be a concrete real number, not traced, got \w*Tracer"
    ):
        f(1.0)


@pytest.mark.parametrize(
    "kwargs, value, rule",
    [
        ({}, float("nan"), "finite"),
        ({}, float("inf"), "finite"),
        ({}, -float("inf"), "finite"),
        ({"minimum": 0.0}, -0.5, "finite and >= 0"),
        ({"minimum": 0.0, "min_open": True}, 0.0, "finite and > 0"),
        ({"minimum": 0.0, "min_open": True}, float("inf"), "finite and > 0"),
        ({"maximum": 1.0}, 1.5, "finite and <= 1"),
        ({"maximum": 1.0, "max_open": True}, 1.0, "finite and < 1"),
        ({"minimum": 0.0, "maximum": 1.0}, 2, "in [0, 1]"),
        ({"minimum": 0.0, "maximum": 1.0, "min_open": True}, 0.0, "in (0, 1]"),
        ({"minimum": 0.0, "maximum": 1.0, "max_open": True}, 1.0, "in [0, 1)"),
        ({"minimum": -20.0, "maximum": 20.0}, float("nan"), "in [-20, 20]"),
        (
            {"minimum": 0.0, "min_open": True, "rule": "a finite number > 0"},
            0,
            "a finite number > 0",
        ),
        ({"rule": "a finite number"}, float("nan"), "a finite number"),
    ],
)
def test_real_range(kwargs, value, rule):
    with pytest.raises(ValueError, match=_message("x", rule, value)):
        check_real("x", value, **kwargs)


def test_real_closed_bounds_include_their_ends():
    assert check_real("x", 0, minimum=0.0, maximum=1.0) == 0.0
    assert check_real("x", 1.0, minimum=0.0, maximum=1.0) == 1.0
    assert check_real("x", 1e-300, minimum=0.0, min_open=True) == 1e-300
    assert check_real("x", -1e300) == -1e300


@pytest.mark.parametrize("value", [1, 1.5, np.float16(1), np.uint8(1), np.array(1), jnp.int32(1)])
def test_is_real_true(value):
    assert is_real(value)


@pytest.mark.parametrize("value", [True, "1", None, 1j, np.complex64(1), np.ones(1), (1.0,)])
def test_is_real_false(value):
    assert not is_real(value)


# ---------------------------------------------------------------- bool, choice and seed


def test_bool():
    assert check_bool("resample", True) is True
    assert check_bool("resample", np.bool_(False)) is False
    for value in (1, 0, "yes", None, np.array([True])):
        with pytest.raises(TypeError, match=_message("resample", "a bool", value)):
            check_bool("resample", value)


def test_choice():
    modes = ("raw", "minmax", "l2")
    assert check_choice("mode", "minmax", modes) == "minmax"
    for value in ("L2", "", None, 2, ["raw"]):
        with pytest.raises(ValueError, match=_message("mode", f"one of {modes!r}", value)):
            check_choice("mode", value, modes)
    # Equal but of another type is not a choice: True == 1, 1.0 == 1.
    with pytest.raises(ValueError, match=r"^k must be one of \(1, 2\), got True$"):
        check_choice("k", True, (1, 2))
    with pytest.raises(ValueError, match=r"^k must be one of \(1, 2\), got 1\.0$"):
        check_choice("k", 1.0, (1, 2))


def test_seed():
    assert check_seed("seed", 7) == 7
    assert check_seed("seed", np.int64(7)) == 7
    assert check_seed("seed", jnp.asarray(7)) == 7
    seen = []
    jax.vmap(lambda s: seen.append(check_seed("seed", s)) or s)(jnp.arange(3))
    assert seen == [None]  # traced: known only on the device
    for value in (1.5, "1", True, None, jnp.asarray(1.0)):
        with pytest.raises(TypeError, match=_message("seed", "an int", value)):
            check_seed("seed", value)


# ------------------------------------------------- the library's arguments, through them


def test_the_layers_report_in_the_same_words():
    from jno.app.train import positive_int
    from jno.domain import Box, Interval
    from jno.nnx import MLP, LossNormalizer
    from jno.nnx.balancers import ReLoBRaLo
    from jno.problems.base import real_parameter
    from jno.train import Trainer

    with pytest.raises(ValueError, match=_message("alpha", "in [0, 1]", 1.5)):
        ReLoBRaLo(2, alpha=1.5)
    with pytest.raises(TypeError, match=_message("n", "an int", 2.5)):
        Box([0.0], [1.0]).interior(2.5)
    with pytest.raises(TypeError, match=_message("a", "a real number", "0")):
        Interval("0", 1.0)
    with pytest.raises(ValueError, match=_message("in_features", ">= 1", 0)):
        MLP(0, [4], 1, rngs=__import__("flax").nnx.Rngs(0))
    with pytest.raises(ValueError, match=_message("mode", "one of ('raw', 'minmax', 'l2')", "x")):
        LossNormalizer(2, mode="x")
    with pytest.raises(ValueError, match=_message("nu", "a finite number > 0", 0.0)):
        real_parameter("nu", 0.0, positive=True)
    with pytest.raises(ValueError, match=_message("log_every", ">= 1", 0)):
        Trainer(
            jno.nn(MLP(1, [2], 1, rngs=nnx.Rngs(0))), points={"x": np.ones((2, 1))}, log_every=0
        )
    with pytest.raises(argparse.ArgumentTypeError, match="value must be an integer >= 1, got 0"):
        positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got 'x'"):
        positive_int("x")
