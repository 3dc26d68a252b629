"""The rate functions behind the pure factories of ``LearningRateSchedule``.

Each ``*_rule`` checks the factory's arguments (raising the errors the factory documents)
and returns ``(fn, params)``: ``fn(step, losses)`` the rate (default float dtype), pure and
traceable, and ``params`` the checked arguments for ``config()``. The clamping to
``[min_lr, max_lr]`` stays with the schedule.

Example:
    >>> from jno.nnx.schedules._rules import cosine_rule
    >>> fn, params = cosine_rule(100, 1.0, 0.5)
    >>> float(fn(50, None)), params
    (0.75, {'total_steps': 100, 'lr0': 1.0, 'lr_end': 0.5})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_int, check_real, is_real
from jno.nnx._dtype import default_float
from jno.nnx.schedules._args import check_rate

__all__ = ["cosine_rule", "exponential_rule", "piecewise_constant_rule", "warmup_cosine_rule"]

Rule = tuple[Callable[[Any, Any], jax.Array], dict[str, Any]]


def _cosine(frac: jax.Array, lr0: float, lr_end: float) -> jax.Array:
    frac = jnp.clip(frac, 0.0, 1.0)
    # (1 + cos(pi f)) / 2 == sin(pi (1 - f) / 2) ** 2: exact at both ends and free of
    # float32 cancellation near f = 1.
    return lr_end + (lr0 - lr_end) * jnp.square(jnp.sin(0.5 * jnp.pi * (1.0 - frac)))


def exponential_rule(
    lr0: float, decay_rate: float, decay_steps: int, lr_end: float, staircase: bool
) -> Rule:
    """``max(lr_end, lr0 * decay_rate ** (t / decay_steps))``, floored exponent if staircase."""
    lr0, lr_end = check_rate("lr0", lr0, positive=True), check_rate("lr_end", lr_end)
    decay_rate = check_real(
        "decay_rate", decay_rate, minimum=0.0, min_open=True, rule="a finite number > 0"
    )
    decay_steps = check_int("decay_steps", decay_steps, minimum=1)
    staircase = bool(staircase)

    def fn(step, losses):
        p = jnp.asarray(step, default_float()) / decay_steps
        if staircase:
            p = jnp.floor(p)
        return jnp.maximum(lr_end, lr0 * jnp.power(jnp.asarray(decay_rate, default_float()), p))

    params = dict(
        lr0=lr0, decay_rate=decay_rate, decay_steps=decay_steps, lr_end=lr_end,
        staircase=staircase,
    )  # fmt: skip
    return fn, params


def cosine_rule(total_steps: int, lr0: float, lr_end: float) -> Rule:
    """Cosine decay from ``lr0`` at step 0 to ``lr_end`` at ``total_steps`` and after."""
    total_steps = check_int("total_steps", total_steps, minimum=1)
    lr0, lr_end = check_rate("lr0", lr0, positive=True), check_rate("lr_end", lr_end)

    def fn(step, losses):
        return _cosine(jnp.asarray(step, default_float()) / total_steps, lr0, lr_end)

    return fn, dict(total_steps=total_steps, lr0=lr0, lr_end=lr_end)


def warmup_cosine_rule(total_steps: int, warmup_steps: int, lr0: float, lr_end: float) -> Rule:
    """Linear warm-up to ``lr0``, then cosine decay to ``lr_end`` at ``total_steps``."""
    total_steps = check_int("total_steps", total_steps, minimum=1)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps must be <= total_steps, got warmup_steps={warmup_steps} > "
            f"total_steps={total_steps}"
        )
    lr0, lr_end = check_rate("lr0", lr0, positive=True), check_rate("lr_end", lr_end)
    decay_len = total_steps - warmup_steps

    def fn(step, losses):
        t = jnp.asarray(step, default_float())
        warm = lr0 * (t + 1.0) / max(warmup_steps, 1)
        # A zero-length decay phase means lr_end right after the warm-up.
        frac = (t - warmup_steps) / decay_len if decay_len > 0 else jnp.ones_like(t)
        return jnp.where(t < warmup_steps, warm, _cosine(frac, lr0, lr_end))

    return fn, dict(total_steps=total_steps, warmup_steps=warmup_steps, lr0=lr0, lr_end=lr_end)


def piecewise_constant_rule(boundaries: Sequence[int], values: Sequence[float]) -> Rule:
    """``values[#{b in boundaries : t >= b}]``, boundaries strictly increasing.

    ``values[0]`` is the initial rate and must be > 0; later values may be 0 (a phase
    that freezes the network), never negative.
    """
    boundaries, values = list(boundaries), list(values)
    for b in boundaries:
        if not is_real(b) or not math.isfinite(b):
            raise ValueError(f"boundaries must be finite numbers, got {boundaries!r}")
    if any(b1 <= b0 for b0, b1 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"boundaries must be strictly increasing, got {boundaries!r}")
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"values must have len(boundaries) + 1 = {len(boundaries) + 1} entries, "
            f"got {len(values)}: values={values!r}"
        )
    # The first value is the initial rate (> 0); later pieces may be 0 (>= 0).
    values = [check_rate(f"values[{i}]", v, positive=i == 0) for i, v in enumerate(values)]
    bounds = [float(b) for b in boundaries]

    def fn(step, losses):
        t = jnp.asarray(step, default_float())
        idx = jnp.sum(t >= jnp.asarray(bounds, default_float()))
        return jnp.asarray(values, default_float())[idx]

    as_given = [int(b) if isinstance(b, (int, np.integer)) else float(b) for b in boundaries]
    return fn, dict(boundaries=as_given, values=values)
