"""The loss-adaptive learning-rate schedules, :class:`DLRS` and :class:`ReduceOnPlateau`.

Both subclass :class:`~jno.nnx.schedules.schedule.LearningRateSchedule` (whose ``dlrs`` and
``reduce_on_plateau`` factories build them) and keep their state on the device in
:class:`~jno.nnx.state.ScheduleState` variables, updated in place by each call. Both react
to the total loss ``sum(losses)``; a call whose total loss is NaN or infinite leaves the
state untouched and returns the current rate. The update rules are in
:mod:`jno.nnx.schedules._adaptive_rules`.

Example:
    >>> from jno.nnx.schedules import DLRS
    >>> s = DLRS(lr0=1e-3, window=3)
    >>> # falling losses (slope <= 0): each call adds increment_factor * 1e-3
    >>> [round(float(s(t, [loss])), 6) for t, loss in enumerate([1.0, 0.5, 0.25])]
    [0.001, 0.0011, 0.0012]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.schedules._adaptive_rules import dlrs_update, plateau_update, read, total_loss
from jno.nnx.schedules._args import check_bounds, check_rate
from jno.nnx.schedules.schedule import LearningRateSchedule
from jno.nnx.state import ScheduleState

__all__ = ["DLRS", "ReduceOnPlateau"]


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
        lr0: initial rate (> 0).
        window: number of losses in the window (>= 2).
        decremental_factor: step down, in units of ``base``, when the loss rises steeply.
        stagnation_factor: step down when the loss rises mildly.
        increment_factor: step up when the loss falls or stays flat.
        min_lr: lower clamp.
        max_lr: upper clamp (None: none).
        eps: floor of ``mean(window)`` in the slope.

    Example:
        >>> from jno.nnx.schedules import DLRS
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
        self.lr0 = check_rate("lr0", lr0, positive=True)
        self.window = check_int("window", window, minimum=2)
        self.decremental_factor = check_real("decremental_factor", decremental_factor, minimum=0.0)
        self.stagnation_factor = check_real("stagnation_factor", stagnation_factor, minimum=0.0)
        self.increment_factor = check_real("increment_factor", increment_factor, minimum=0.0)
        self.eps = check_real("eps", eps, minimum=0.0)
        lo, self.max_lr = check_bounds(min_lr, max_lr)
        self.min_lr = 0.0 if lo is None else lo
        self.losses = ScheduleState(jnp.zeros((self.window,), default_float()))
        self.count = ScheduleState(jnp.zeros((), jnp.int32))
        self.lr = ScheduleState(self.clamp(jnp.asarray(self.lr0, default_float())))

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
        self.lr.set_value(self.clamp(jnp.asarray(self.lr0, default_float())))

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """Record ``sum(losses)``, update the rate and return it (default float scalar)."""
        buf, count, lr = dlrs_update(
            read(self.losses), read(self.count), read(self.lr), total_loss("DLRS", losses),
            window=self.window, decremental_factor=self.decremental_factor,
            stagnation_factor=self.stagnation_factor, increment_factor=self.increment_factor,
            eps=self.eps, clamp=self.clamp,
        )  # fmt: skip
        self.losses.set_value(buf)
        self.count.set_value(count)
        self.lr.set_value(lr)
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
        lr0: initial rate (> 0).
        factor: multiplier of a reduction, in (0, 1).
        patience: calls without improvement that trigger a reduction (>= 0).
        cooldown: calls after a reduction during which no reduction happens (>= 0).
        threshold: relative improvement needed, in [0, 1).
        min_lr: lower clamp (None: 0).
        max_lr: upper clamp (None: none).

    Example:
        >>> from jno.nnx.schedules import ReduceOnPlateau
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
        self.lr0 = check_rate("lr0", lr0, positive=True)
        self.factor = check_real(
            "factor", factor, minimum=0.0, maximum=1.0, min_open=True, max_open=True
        )
        self.patience = check_int("patience", patience, minimum=0)
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        self.threshold = check_real("threshold", threshold, minimum=0.0, maximum=1.0, max_open=True)
        lo, self.max_lr = check_bounds(min_lr, max_lr)
        self.min_lr = 0.0 if lo is None else lo
        self.best = ScheduleState(jnp.asarray(jnp.inf, default_float()))
        self.plateau_count = ScheduleState(jnp.zeros((), jnp.int32))
        self.cooldown_count = ScheduleState(jnp.zeros((), jnp.int32))
        self.lr = ScheduleState(self.clamp(jnp.asarray(self.lr0, default_float())))

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
        self.lr.set_value(self.clamp(jnp.asarray(self.lr0, default_float())))

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """Record ``sum(losses)``, update the rate and return it (default float scalar)."""
        best, plateau, cooling, lr = plateau_update(
            read(self.best), read(self.plateau_count), read(self.cooldown_count),
            read(self.lr), total_loss("ReduceOnPlateau", losses),
            factor=self.factor, patience=self.patience, cooldown=self.cooldown,
            threshold=self.threshold, min_lr=self.min_lr, clamp=self.clamp,
        )  # fmt: skip
        self.best.set_value(best)
        self.plateau_count.set_value(plateau)
        self.cooldown_count.set_value(cooling)
        self.lr.set_value(lr)
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
