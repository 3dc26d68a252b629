"""Loss-adaptive learning-rate schedules whose state lives on the device.

:class:`DLRS` and :class:`ReduceOnPlateau` keep everything they learn in
:class:`~jno.nnx.state.ScheduleState` variables and update it in place on each call,
eagerly or inside ``nnx.jit`` / ``nnx.scan``. Because the state is ordinary NNX state it
survives ``nnx.split``/``nnx.merge`` and ``nnx.state``/``nnx.update`` and is checkpointed
with the model. Both react to the total loss ``sum(losses)``; a call whose total loss is
NaN or infinite leaves the state untouched and returns the current rate.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno.nnx.adaptive_schedules import DLRS
    >>> s = DLRS(lr0=1e-3, window=3)
    >>> step = nnx.jit(lambda s, losses: s(0, losses))
    >>> [round(float(step(s, jnp.array([x]))), 6) for x in (1.0, 0.9, 0.8)]
    [0.001, 0.0011, 0.0012]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._dtype import default_float
from jno.nnx._schedule_args import check_bounds, check_int, is_number
from jno.nnx.schedules import LearningRateSchedule
from jno.nnx.state import ScheduleState

__all__ = ["DLRS", "ReduceOnPlateau"]

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


def _read(var: ScheduleState) -> jax.Array:
    # Restored state may hold numpy arrays; computing on jax arrays keeps `.at` available.
    return jnp.asarray(var.get_value())


def _factor(name: str, value: Any) -> float:
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _total_loss(name: str, losses: Any) -> jax.Array:
    if losses is None:
        raise ValueError(
            f"{name} is loss-adaptive: call it as schedule(step, losses) with the per-term "
            "losses, got losses=None"
        )
    return jnp.sum(jnp.asarray(losses, default_float()))


class DLRS(LearningRateSchedule):
    """Dynamic Learning Rate Scheduler (Dharanalakota, Raikar & Ghosh, 2025).

    Keeps a window of the last ``window`` total losses ``L = sum(losses)``. The first call
    records its loss and returns ``lr0`` (clamped). Every later call appends its loss (the
    window grows until it holds ``window`` losses, then slides) and, with
    ``slope = (L_last - L_first) / max(mean(window), eps)`` and
    ``base = 10 ** floor(log10(lr))``, updates the rate::

        slope > 1       ->  lr -= decremental_factor * base
        0 < slope <= 1  ->  lr -= stagnation_factor * base
        slope <= 0      ->  lr += increment_factor * base

    then clamps it to ``[min_lr, max_lr]`` and returns it. ``step`` is ignored: the rate
    depends on the sequence of calls. A call whose total loss is NaN/Inf changes nothing
    and returns the current rate. ``base`` treats a rate within 1e-6 (relative) below a
    power of ten as that power, so float rounding cannot drop it a decade. Keep
    ``min_lr > 0`` (a rate of 0 has no decade to grow from) and the losses non-negative.

    State (``ScheduleState``): ``losses`` (the window, oldest first), ``count`` (losses
    recorded, saturating), ``lr`` (current rate).

    Args:
        lr0: initial rate.
        window: number of losses in the window (>= 2).
        decremental_factor: step down, in units of ``base``, when the loss rises steeply.
        stagnation_factor: step down when the loss rises mildly.
        increment_factor: step up when the loss falls or stays flat.
        min_lr: lower clamp.
        max_lr: upper clamp (None: none).
        eps: floor of ``mean(window)`` in the slope.

    Example:
        >>> from jno.nnx.adaptive_schedules import DLRS
        >>> s = DLRS(lr0=1e-3, window=4)
        >>> [round(float(s(t, [x])), 6) for t, x in enumerate([1.0, 0.5, 2.0, 9.0])]
        [0.001, 0.0011, 0.001, 0.0005]
    """

    stateful: bool = True

    def __init__(
        self,
        lr0: float = 1e-3,
        window: int = 10,
        decremental_factor: float = 0.5,
        stagnation_factor: float = 0.1,
        increment_factor: float = 0.1,
        min_lr: float | None = 1e-10,
        max_lr: float | None = 1.0,
        eps: float = 1e-12,
    ) -> None:
        self.lr0 = _factor("lr0", lr0)
        self.window = check_int("window", window, minimum=2)
        self.decremental_factor = _factor("decremental_factor", decremental_factor)
        self.stagnation_factor = _factor("stagnation_factor", stagnation_factor)
        self.increment_factor = _factor("increment_factor", increment_factor)
        self.eps = _factor("eps", eps)
        lo, self.max_lr = check_bounds(min_lr, max_lr)
        self.min_lr = 0.0 if lo is None else lo
        self.losses = ScheduleState(jnp.zeros((self.window,), default_float()))
        self.count = ScheduleState(jnp.zeros((), jnp.int32))
        self.lr = ScheduleState(self._clamp(jnp.asarray(self.lr0, default_float())))

    def reset(self) -> None:
        """Forget the recorded losses and go back to ``lr0``.

        Example:
            >>> s = DLRS(lr0=1e-3, window=3)
            >>> _ = [s(0, [x]) for x in (1.0, 0.5)]
            >>> s.reset(); int(s.count[...]), round(float(s.lr[...]), 6)
            (0, 0.001)
        """
        self.losses.set_value(jnp.zeros((self.window,), default_float()))
        self.count.set_value(jnp.zeros((), jnp.int32))
        self.lr.set_value(self._clamp(jnp.asarray(self.lr0, default_float())))

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """Record ``sum(losses)``, update the rate and return it (default float scalar)."""
        total = _total_loss("DLRS", losses)
        buf, count, lr = _read(self.losses), _read(self.count), _read(self.lr)
        held = jnp.minimum(count, self.window)
        appended = jnp.where(
            held < self.window,
            buf.at[jnp.minimum(held, self.window - 1)].set(total),
            jnp.roll(buf, -1).at[-1].set(total),
        )
        new_held = jnp.minimum(held + 1, self.window)
        valid = jnp.arange(self.window) < new_held
        mean = jnp.sum(jnp.where(valid, appended, 0.0)) / new_held
        slope = (total - appended[0]) / jnp.maximum(mean, self.eps)
        factor = jnp.where(
            slope > 1.0,
            self.decremental_factor,
            jnp.where(slope > 0.0, self.stagnation_factor, -self.increment_factor),
        )
        updated = self._clamp(lr - jnp.asarray(factor, default_float()) * _decade(lr))
        new_lr = jnp.where(count == 0, lr, updated)

        finite = jnp.isfinite(total)
        self.losses.set_value(jnp.where(finite, appended, buf))
        saturated = count == jnp.iinfo(jnp.int32).max
        self.count.set_value(jnp.where(finite & ~saturated, count + 1, count))
        self.lr.set_value(jnp.where(finite, new_lr, lr))
        return self.lr.get_value()

    def config(self) -> dict[str, Any]:
        """Kind and constructor arguments (JSON-serialisable)."""
        return {
            "kind": "dlrs",
            "lr0": self.lr0,
            "window": self.window,
            "decremental_factor": self.decremental_factor,
            "stagnation_factor": self.stagnation_factor,
            "increment_factor": self.increment_factor,
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "eps": self.eps,
        }


class ReduceOnPlateau(LearningRateSchedule):
    """Multiply the rate by ``factor`` when the total loss stops improving.

    Each call sees the total loss ``L = sum(losses)`` and, in this order:

    1. ``improved = L < best * (1 - threshold)``; if improved, ``best = L`` (``best``
       starts at +inf, so the first finite loss is an improvement).
    2. If the cooldown counter is > 0, this is a cooldown call: the counter drops by
       one and the plateau count is set to 0 (no reduction can happen).
    3. Otherwise the plateau count becomes 0 if improved, else it grows by one; when
       the call did not improve and the count reaches ``patience``, the rate becomes
       ``max(lr * factor, min_lr)``, the count resets to 0 and the cooldown counter is
       set to ``cooldown``, so the next ``cooldown`` calls are cooldown calls.
    4. The rate is clamped to ``[min_lr, max_lr]`` and returned.

    So with ``patience=p >= 1`` the ``p``-th consecutive call without improvement
    reduces the rate (``patience=0`` reduces on every call without improvement), the
    same rule as ``optax.contrib.reduce_on_plateau`` with ``rtol=threshold``,
    ``atol=0`` and ``min_scale=min_lr / lr0``. A call whose total loss is NaN/Inf changes
    nothing and returns the current rate. ``step`` is ignored.

    State (``ScheduleState``): ``best``, ``plateau_count``, ``cooldown_count``, ``lr``.

    Args:
        lr0: initial rate.
        factor: multiplier of a reduction, in (0, 1).
        patience: calls without improvement that trigger a reduction (>= 0).
        cooldown: calls after a reduction during which no reduction happens (>= 0).
        threshold: relative improvement needed, in [0, 1).
        min_lr: lower clamp (None: 0).
        max_lr: upper clamp (None: none).

    Example:
        >>> from jno.nnx.adaptive_schedules import ReduceOnPlateau
        >>> s = ReduceOnPlateau(1.0, factor=0.5, patience=2)
        >>> [float(s(t, [x])) for t, x in enumerate([3.0, 2.0, 2.0, 2.0, 2.0, 2.0])]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    """

    stateful: bool = True

    def __init__(
        self,
        lr0: float,
        factor: float = 0.5,
        patience: int = 100,
        cooldown: int = 0,
        threshold: float = 1e-4,
        min_lr: float | None = 0.0,
        max_lr: float | None = None,
    ) -> None:
        self.lr0 = _factor("lr0", lr0)
        if not is_number(factor):
            raise TypeError(f"factor must be a number, got {factor!r}")
        if not 0.0 < float(factor) < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.factor = float(factor)
        self.patience = check_int("patience", patience, minimum=0)
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        threshold = _factor("threshold", threshold)
        if threshold >= 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
        self.threshold = threshold
        lo, self.max_lr = check_bounds(min_lr, max_lr)
        self.min_lr = 0.0 if lo is None else lo
        self.best = ScheduleState(jnp.asarray(jnp.inf, default_float()))
        self.plateau_count = ScheduleState(jnp.zeros((), jnp.int32))
        self.cooldown_count = ScheduleState(jnp.zeros((), jnp.int32))
        self.lr = ScheduleState(self._clamp(jnp.asarray(self.lr0, default_float())))

    def reset(self) -> None:
        """Forget the best loss and the counters and go back to ``lr0``.

        Example:
            >>> s = ReduceOnPlateau(1.0, patience=0)
            >>> _ = [s(0, [x]) for x in (1.0, 2.0)]
            >>> float(s.lr[...]), s.reset(), float(s.lr[...])
            (0.5, None, 1.0)
        """
        self.best.set_value(jnp.asarray(jnp.inf, default_float()))
        self.plateau_count.set_value(jnp.zeros((), jnp.int32))
        self.cooldown_count.set_value(jnp.zeros((), jnp.int32))
        self.lr.set_value(self._clamp(jnp.asarray(self.lr0, default_float())))

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """Record ``sum(losses)``, update the rate and return it (default float scalar)."""
        total = _total_loss("ReduceOnPlateau", losses)
        best, plateau = _read(self.best), _read(self.plateau_count)
        cooling, lr = _read(self.cooldown_count), _read(self.lr)

        improved = total < best * (1.0 - self.threshold)
        in_cooldown = cooling > 0
        plateau_new = jnp.where(improved | in_cooldown, 0, plateau + 1)
        reduce = ~improved & ~in_cooldown & (plateau_new >= self.patience)
        lr_new = jnp.where(reduce, jnp.maximum(lr * self.factor, self.min_lr), lr)
        cooling_new = jnp.where(reduce, self.cooldown, jnp.maximum(cooling - 1, 0))

        finite = jnp.isfinite(total)
        self.best.set_value(jnp.where(finite & improved, total, best))
        self.plateau_count.set_value(jnp.where(finite, jnp.where(reduce, 0, plateau_new), plateau))
        self.cooldown_count.set_value(jnp.where(finite, cooling_new, cooling).astype(jnp.int32))
        self.lr.set_value(jnp.where(finite, self._clamp(lr_new), lr))
        return self.lr.get_value()

    def config(self) -> dict[str, Any]:
        """Kind and constructor arguments (JSON-serialisable)."""
        return {
            "kind": "reduce_on_plateau",
            "lr0": self.lr0,
            "factor": self.factor,
            "patience": self.patience,
            "cooldown": self.cooldown,
            "threshold": self.threshold,
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
        }
