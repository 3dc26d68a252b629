"""Argument validators shared by every layer of jno.

Each validator takes the argument's ``name`` and its ``value``, returns the value in a
canonical Python type, and raises

- ``TypeError`` when the value has the wrong type (a ``bool`` is never a number here,
  a string never a number, an array only when it is a 0-d array of the right kind);
- ``ValueError`` when it has the right type but a bad value (out of range, NaN or
  infinite, not among the choices);

always with the message ``"<name> must be <rule>, got <value!r>"``. The range
validators derive ``<rule>`` from their bounds (``">= 1"``, ``"in [0, 1)"``,
``"finite and > 0"``); a caller whose users know a different wording passes its own
``rule`` (it replaces ``<rule>`` in the ``ValueError`` message only).

This module lives in the lowest layer (:mod:`jno.nnx` imports nothing outside itself)
so that every other layer can import it.

Example:
    >>> from jno.nnx._checks import check_int, check_real
    >>> check_int("steps", 10, minimum=0)
    10
    >>> check_real("alpha", 0.5, minimum=0.0, maximum=1.0)
    0.5
    >>> check_real("alpha", 1.5, minimum=0.0, maximum=1.0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be in [0, 1], got 1.5
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_index",
    "check_int",
    "check_positive_int",
    "check_real",
    "check_seed",
    "is_real",
]

T = TypeVar("T")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for a real number known on the host: a Python or numpy int or float, or a
    0-d integer or floating numpy / jax array. False for bools, strings, complex numbers,
    arrays of other shapes and traced values.

    Example:
        >>> import numpy as np
        >>> [is_real(v) for v in (1, 2.5, np.float32(1), np.array(3.0))]
        [True, True, True, True]
        >>> [is_real(v) for v in (True, "1", 1j, np.ones(2), None)]
        [False, False, False, False, False]
    """
    if _is_bool(value):
        return False
    if isinstance(value, numbers.Real):
        return True
    if _traced(value):
        return False
    return (
        isinstance(value, (np.ndarray, jax.Array))
        and value.ndim == 0
        and (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating))
    )


def _traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _fmt(bound: float) -> str:
    return f"{bound:g}"


def _range_rule(
    low: Any, high: Any, low_open: bool, high_open: bool, fmt: Any = str, prefix: str = ""
) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{fmt(low)}, {fmt(high)}{')' if high_open else ']'}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {fmt(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {fmt(high)}")
    return prefix + " and ".join(parts)


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    rule: str | None = None,
) -> int:
    """``value`` as an ``int`` inside ``[minimum, maximum]`` (a None bound is no bound).

    Accepts Python and numpy integers and anything else :func:`operator.index` accepts
    (a 0-d integer array), never a ``bool`` or a float, even an integral one.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: it is out of range; ``rule`` (if given) describes the range.

    Example:
        >>> check_int("log_every", 10, minimum=1)
        10
        >>> check_int("log_every", 0, minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: log_every must be >= 1, got 0
        >>> check_int("nodes", 400, minimum=2, maximum=300)
        Traceback (most recent call last):
        ...
        ValueError: nodes must be in [2, 300], got 400
        >>> check_int("steps", 2.0)
        Traceback (most recent call last):
        ...
        TypeError: steps must be an int, got 2.0
    """
    if _is_bool(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        rule = rule or _range_rule(minimum, maximum, False, False)
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return int(v)


def check_positive_int(name: str, value: Any) -> int:
    """A count: an ``int`` >= 1 (``num_chunks``, ``update_every``, a layer width).

    Example:
        >>> check_positive_int("update_every", 5)
        5
        >>> check_positive_int("update_every", 0)
        Traceback (most recent call last):
        ...
        ValueError: update_every must be an integer >= 1, got 0
    """
    return check_int(name, value, minimum=1, rule="an integer >= 1")


def check_index(name: str, value: Any, size: int, *, rule: str | None = None) -> int:
    """An index into ``size`` entries, negative ones counting from the end, returned in
    ``[0, size)``.

    Example:
        >>> check_index("time_axis", -1, 3)
        2
        >>> check_index("i", 2, 2)
        Traceback (most recent call last):
        ...
        ValueError: i must be in [-2, 2), got 2
    """
    v = check_int(name, value)
    if not -size <= v < size:
        raise ValueError(f"{name} must be {rule or f'in [{-size}, {size})'}, got {value!r}")
    return v % size


def check_real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    rule: str | None = None,
) -> float:
    """``value`` as a finite ``float`` inside the given bounds.

    ``minimum`` / ``maximum`` are inclusive unless ``min_open`` / ``max_open``; NaN and
    infinities are always rejected. Accepts what :func:`is_real` accepts.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is NaN, infinite or out of range; ``rule`` (if given) describes
            the accepted values.

    Example:
        >>> check_real("scale", 2)
        2.0
        >>> check_real("scale", 0.0, minimum=0.0, min_open=True)
        Traceback (most recent call last):
        ...
        ValueError: scale must be finite and > 0, got 0.0
        >>> check_real("delta", 1.5, minimum=0.0, maximum=1.0, min_open=True)
        Traceback (most recent call last):
        ...
        ValueError: delta must be in (0, 1], got 1.5
        >>> check_real("k", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: k must be finite, got nan
        >>> check_real("k", "2")
        Traceback (most recent call last):
        ...
        TypeError: k must be a real number, got '2'
    """
    if not is_real(value):
        what = "a concrete real number, not traced" if _traced(value) else "a real number"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if minimum is not None:
        ok = ok and (v > minimum if min_open else v >= minimum)
    if maximum is not None:
        ok = ok and (v < maximum if max_open else v <= maximum)
    if not ok:
        if rule is None:
            rule = (
                _range_rule(minimum, maximum, min_open, max_open, _fmt, "finite and ")
                if minimum is not None or maximum is not None
                else "finite"
            )
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool``; only ``True`` and ``False`` (numpy's included) pass.

    Example:
        >>> check_bool("resample", True)
        True
        >>> check_bool("resample", 1)
        Traceback (most recent call last):
        ...
        TypeError: resample must be a bool, got 1
    """
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[T]) -> T:
    """``value`` if it is one of ``choices`` (same type and equal), else ValueError.

    Example:
        >>> check_choice("mode", "l2", ("raw", "minmax", "l2"))
        'l2'
        >>> check_choice("mode", "L1", ("raw", "minmax", "l2"))
        Traceback (most recent call last):
        ...
        ValueError: mode must be one of ('raw', 'minmax', 'l2'), got 'L1'
    """
    for choice in choices:
        if type(choice) is type(value) and choice == value:
            return choice
    raise ValueError(f"{name} must be one of {tuple(choices)!r}, got {value!r}")


def check_seed(name: str, value: Any) -> int | None:
    """An RNG seed: an integer (see :func:`check_int`) as an ``int``; None when it is a
    traced 0-d integer (a module created inside ``nnx.vmap`` over seeds, whose seed is
    known only on the device).

    Example:
        >>> check_seed("seed", 3)
        3
        >>> check_seed("seed", 1.5)
        Traceback (most recent call last):
        ...
        TypeError: seed must be an int, got 1.5
    """
    if _traced(value) and value.ndim == 0 and jnp.issubdtype(value.dtype, jnp.integer):
        return None
    return check_int(name, value)
