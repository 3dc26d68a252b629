"""The update rules behind the loss-adaptive schedules ``DLRS`` and ``ReduceOnPlateau``.

Each ``*_update`` takes the current state arrays and the total loss of the call and
returns the new state, pure and traceable; a non-finite total loss leaves the state as
it was. The classes in :mod:`jno.nnx.schedules` read and write their
:class:`~jno.nnx.state.ScheduleState` variables around these functions, and clamp the
rate with their own ``[min_lr, max_lr]`` (passed in as ``clamp``).

Example:
    >>> import jax.numpy as jnp
    >>> from jno.nnx.schedules._adaptive_rules import plateau_update
    >>> state = (jnp.inf, 0, 0, 1.0)  # best, plateau count, cooldown count, rate
    >>> for loss in (2.0, 2.0, 2.0):
    ...     state = plateau_update(
    ...         *state, jnp.asarray(loss), factor=0.5, patience=2, cooldown=0,
    ...         threshold=0.0, min_lr=0.0, clamp=lambda lr: lr,
    ...     )
    >>> float(state[3])
    0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._dtype import default_float
from jno.nnx.state import ScheduleState

__all__ = ["dlrs_update", "plateau_update", "read", "total_loss"]

Clamp = Callable[[jax.Array], jax.Array]

# Powers of ten over the float32 range, for the decade of the current rate. A rate within
# a relative 1e-6 below a power of ten (float rounding, e.g. float32(1e-4) < 1e-4)
# counts in that power's decade, so the result does not hinge on the last bit. Kept in
# float64 here and rounded to the default float dtype at call time.
_DECADE_EXP = np.arange(-45, 39)
_DECADE_BASE = 10.0**_DECADE_EXP
_DECADE_LOW = 10.0**_DECADE_EXP * (1.0 - 1e-6)


def _decade(lr: jax.Array) -> jax.Array:
    """``10 ** floor(log10(lr))`` for a positive ``lr``, robust to rounding."""
    dtype = default_float()
    idx = jnp.sum(lr >= jnp.asarray(_DECADE_LOW, dtype)) - 1
    return jnp.asarray(_DECADE_BASE, dtype)[jnp.clip(idx, 0, _DECADE_BASE.size - 1)]


def read(var: ScheduleState) -> jax.Array:
    """The value of ``var`` as a jax array (restored state may hold numpy arrays)."""
    return jnp.asarray(var.get_value())


def total_loss(name: str, losses: Any) -> jax.Array:
    """``sum(losses)`` in the default float dtype; ``losses=None`` raises, naming ``name``."""
    if losses is None:
        raise ValueError(
            f"{name} is loss-adaptive: call it as schedule(step, losses) with the per-term "
            "losses, got losses=None"
        )
    return jnp.sum(jnp.asarray(losses, default_float()))


def dlrs_update(
    buf: jax.Array,
    count: jax.Array,
    lr: jax.Array,
    total: jax.Array,
    *,
    window: int,
    decremental_factor: float,
    stagnation_factor: float,
    increment_factor: float,
    eps: float,
    clamp: Clamp,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One DLRS call: the new ``(window of losses, count, rate)`` after loss ``total``."""
    held = jnp.minimum(count, window)
    appended = jnp.where(
        held < window,
        buf.at[jnp.minimum(held, window - 1)].set(total),
        jnp.roll(buf, -1).at[-1].set(total),
    )
    new_held = jnp.minimum(held + 1, window)
    valid = jnp.arange(window) < new_held
    mean = jnp.sum(jnp.where(valid, appended, 0.0)) / new_held
    slope = (total - appended[0]) / jnp.maximum(mean, eps)
    factor = jnp.where(
        slope > 1.0,
        decremental_factor,
        jnp.where(slope > 0.0, stagnation_factor, -increment_factor),
    )
    updated = clamp(lr - jnp.asarray(factor, default_float()) * _decade(lr))
    new_lr = jnp.where(count == 0, lr, updated)

    finite = jnp.isfinite(total)
    saturated = count == jnp.iinfo(jnp.int32).max
    return (
        jnp.where(finite, appended, buf),
        jnp.where(finite & ~saturated, count + 1, count),
        jnp.where(finite, new_lr, lr),
    )


def plateau_update(
    best: jax.Array,
    plateau: jax.Array,
    cooling: jax.Array,
    lr: jax.Array,
    total: jax.Array,
    *,
    factor: float,
    patience: int,
    cooldown: int,
    threshold: float,
    min_lr: float,
    clamp: Clamp,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One reduce-on-plateau call: the new ``(best, plateau count, cooldown count, rate)``."""
    improved = total < best * (1.0 - threshold)
    in_cooldown = cooling > 0
    plateau_new = jnp.where(improved | in_cooldown, 0, plateau + 1)
    reduce = ~improved & ~in_cooldown & (plateau_new >= patience)
    lr_new = jnp.where(reduce, jnp.maximum(lr * factor, min_lr), lr)
    cooling_new = jnp.where(reduce, cooldown, jnp.maximum(cooling - 1, 0))

    finite = jnp.isfinite(total)
    return (
        jnp.where(finite & improved, total, best),
        jnp.where(finite, jnp.where(reduce, 0, plateau_new), plateau),
        jnp.where(finite, cooling_new, cooling).astype(jnp.int32),
        jnp.where(finite, clamp(lr_new), lr),
    )
