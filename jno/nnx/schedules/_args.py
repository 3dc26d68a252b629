"""Argument checks shared by the learning-rate schedules (errors name argument and value).

Built on :mod:`jno.nnx._checks`; what is here adds the meaning of a learning rate.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from jno.nnx._checks import check_real


def check_rate(
    name: str, value: Any, *, optional: bool = False, positive: bool = False
) -> float | None:
    """Validate a learning rate: a finite number, ``> 0`` if ``positive`` else ``>= 0``.

    ``positive`` is for a rate that training starts from (``lr0``, a constant rate,
    ``max_lr``): at 0 the network never moves and a loss-adaptive schedule has nothing to
    grow from. Rates reached later (``lr_end``, ``min_lr``) may be 0. With ``optional``,
    None passes through. Errors name the argument and the value.

    Example:
        >>> check_rate("lr_end", 0.0)
        0.0
        >>> check_rate("lr0", 0.0, positive=True)
        Traceback (most recent call last):
        ...
        ValueError: lr0 must be a finite number > 0 (at a rate of 0 nothing trains), got 0.0
    """
    if value is None and optional:
        return None
    if positive:
        rule = "a finite number > 0 (at a rate of 0 nothing trains)"
        return check_real(name, value, minimum=0.0, min_open=True, rule=rule)
    return check_real(name, value, minimum=0.0, rule="a finite number >= 0")


def check_bounds(min_lr: Any, max_lr: Any) -> tuple[float | None, float | None]:
    """``(min_lr, max_lr)`` checked: ``min_lr >= 0``, ``max_lr > 0``, ``min_lr <= max_lr``."""
    lo = check_rate("min_lr", min_lr, optional=True)
    hi = check_rate("max_lr", max_lr, optional=True, positive=True)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min_lr must be <= max_lr, got min_lr={min_lr!r} > max_lr={max_lr!r}")
    return lo, hi


def accepts_two_positional(fn: Callable) -> bool | None:
    """Whether ``fn`` can be called as ``fn(a, b)``; None if its signature is unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    positional = 0
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


def fn_name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
