"""Learning-rate schedules: ``LearningRateSchedule``, its factories and ``as_schedule``.

A schedule maps ``(step, losses)`` to a scalar learning rate of the default float dtype
(float32, float64 under ``jax_enable_x64``). The factories
(:meth:`LearningRateSchedule.constant`, ``exponential``, ``cosine``, ``warmup_cosine``,
``piecewise_constant``) and ``LearningRateSchedule(fn)`` are pure: calling them changes
nothing, so each one is also a valid optax schedule. The loss-adaptive schedules
:class:`~jno.nnx.schedules.adaptive.DLRS` and
:class:`~jno.nnx.schedules.adaptive.ReduceOnPlateau` (subclasses in
:mod:`jno.nnx.schedules.adaptive`, built by :meth:`LearningRateSchedule.dlrs` and
``reduce_on_plateau``) keep their state on the
device in :class:`~jno.nnx.state.ScheduleState` variables and update it in place on each
call, eagerly or inside ``nnx.jit`` / ``nnx.scan``; being ordinary NNX state it survives
``nnx.split``/``nnx.merge`` and is checkpointed with the model. Both react to the total
loss ``sum(losses)``; a call whose total loss is NaN or infinite leaves the state
untouched and returns the current rate. Their update rules are in
:mod:`jno.nnx.schedules._adaptive_rules`, those of the pure factories in
:mod:`jno.nnx.schedules._rules`.

Every initial rate must be a finite number > 0 (``lr``, ``lr0``, the number given to
``LearningRateSchedule(...)``, ``values[0]`` of ``piecewise_constant``, ``max_lr``):
a zero or negative one raises a ``ValueError`` naming the argument and the value. Rates
reached later may be 0 (``lr_end``, ``min_lr``, later ``piecewise_constant`` values).

Example:
    >>> import optax
    >>> from jno.nnx.schedules import LearningRateSchedule as lrs
    >>> sched = lrs.cosine(total_steps=100, lr0=1e-3)
    >>> float(sched(0)), float(sched(100))
    (0.0010000000474974513, 0.0)
    >>> tx = optax.adam(sched)  # usable wherever optax expects a schedule
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._checks import is_real
from jno.nnx._dtype import default_float
from jno.nnx.schedules._args import accepts_two_positional, check_bounds, check_rate, fn_name
from jno.nnx.schedules._rules import (
    cosine_rule,
    exponential_rule,
    piecewise_constant_rule,
    warmup_cosine_rule,
)

__all__ = ["LearningRateSchedule", "as_schedule"]

_JNP_WHERE_HINT = (
    "Inside the compiled step a schedule sees traced values, so it must branch with "
    "jnp.where or jax.lax.cond instead of a Python `if`, e.g. "
    "lrs(lambda step, losses: jnp.where(losses[0] > 1e-2, 1e-3, 1e-5))"
)


class LearningRateSchedule(nnx.Module):
    """A learning rate as a function of ``(step, losses)``, clamped to ``[min_lr, max_lr]``.

    ``schedule(step, losses=None)`` returns a scalar ``jax.Array`` of the default float
    dtype. ``step`` may be a Python int or a traced integer array; ``losses`` is the 1-D
    array of per-term losses (or None, which is how optax calls a schedule). Calling a
    ``LearningRateSchedule`` changes nothing, so it works eagerly, under ``jax.jit`` and
    as an optax schedule.

    Inside a compiled step ``fn`` sees traced values: branch with ``jnp.where`` or
    ``jax.lax.cond``. A Python ``if`` on a traced value raises a ``TypeError`` that says
    so; called eagerly with concrete values a Python ``if`` works.

    Args:
        fn: a number (constant rate) or a callable ``(step, losses) -> scalar``.
        min_lr: lower clamp of the output (None: no lower clamp).
        max_lr: upper clamp of the output (None: no upper clamp).

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.schedules import LearningRateSchedule as lrs
        >>> s = lrs(lambda step, losses: jnp.where(losses[0] > 1e-2, 1e-3, 1e-5))
        >>> float(s(0, jnp.array([0.5, 0.1]))), float(s(0, jnp.array([1e-3, 0.1])))
        (0.0010000000474974513, 9.999999747378752e-06)
        >>> float(lrs(0.5, max_lr=0.1)(7))
        0.10000000149011612
    """

    stateful: bool = False

    def __init__(
        self,
        fn: float | Callable[[Any, Any], Any],
        *,
        min_lr: float | None = None,
        max_lr: float | None = None,
    ) -> None:
        self.min_lr, self.max_lr = check_bounds(min_lr, max_lr)
        if is_real(fn):
            value = check_rate("fn", fn, positive=True)
            self._fn = lambda step, losses: value
            self._kind, self._params = "constant", (("lr", value),)
        elif callable(fn):
            if accepts_two_positional(fn) is False:
                raise TypeError(
                    f"fn must accept (step, losses), got {fn_name(fn)} that takes fewer "
                    "positional arguments; wrap one-argument schedules with as_schedule(fn)"
                )
            self._fn = fn
            self._kind, self._params = "custom", (("fn", fn_name(fn)),)
        else:
            raise TypeError(
                f"fn must be a number or a callable (step, losses) -> scalar, got {fn!r}"
            )

    @classmethod
    def _make(cls, fn: Callable, kind: str, params: dict, min_lr: Any, max_lr: Any):
        sched = LearningRateSchedule(fn, min_lr=min_lr, max_lr=max_lr)
        sched._kind = kind
        # Tuples, not a dict: static module attributes must be hashable for nnx.jit.
        sched._params = tuple(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()
        )
        return sched

    def clamp(self, lr: jax.Array) -> jax.Array:
        """``lr`` clamped to ``[min_lr, max_lr]`` (a bound that is None is not applied)."""
        if self.min_lr is not None:
            lr = jnp.maximum(lr, jnp.asarray(self.min_lr, default_float()))
        if self.max_lr is not None:
            lr = jnp.minimum(lr, jnp.asarray(self.max_lr, default_float()))
        return lr

    def _evaluate(self, step: Any, losses: Any) -> jax.Array:
        try:
            out = self._fn(step, losses)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError) as e:
            raise TypeError(
                f"learning-rate schedule {fn_name(self._fn)} converted a traced value to a "
                f"Python value. {_JNP_WHERE_HINT}"
            ) from e
        out = jnp.asarray(out, dtype=default_float())
        if out.size != 1:
            raise ValueError(
                f"schedule fn {fn_name(self._fn)} must return a scalar, got shape {out.shape}"
            )
        return out.reshape(())

    def __call__(self, step: Any, losses: Any = None) -> jax.Array:
        """Return the learning rate at ``step`` (default float scalar), clamped."""
        if losses is not None:
            losses = jnp.atleast_1d(jnp.asarray(losses))
        return self.clamp(self._evaluate(step, losses))

    def config(self) -> dict[str, Any]:
        """Kind and constructor arguments, JSON-serialisable (for hyper-parameter logs).

        Example:
            >>> LearningRateSchedule.cosine(100, 1e-3, max_lr=5e-4).config()["max_lr"]
            0.0005
        """
        cfg: dict[str, Any] = {"kind": self._kind}
        cfg.update((k, list(v) if isinstance(v, tuple) else v) for k, v in self._params)
        cfg.update(min_lr=self.min_lr, max_lr=self.max_lr)
        return cfg

    # ------------------------------------------------------------------ factories
    @classmethod
    def constant(
        cls, lr: float, *, min_lr: float | None = None, max_lr: float | None = None
    ) -> LearningRateSchedule:
        """Constant rate ``lr`` (same as ``LearningRateSchedule(lr)``).

        Example:
            >>> float(LearningRateSchedule.constant(1e-3)(10))
            0.0010000000474974513
        """
        value = check_rate("lr", lr, positive=True)
        return cls._make(lambda step, losses: value, "constant", {"lr": value}, min_lr, max_lr)

    @classmethod
    def exponential(
        cls,
        lr0: float,
        decay_rate: float,
        decay_steps: int,
        lr_end: float = 0.0,
        staircase: bool = False,
        *,
        min_lr: float | None = None,
        max_lr: float | None = None,
    ) -> LearningRateSchedule:
        """Exponential decay ``max(lr_end, lr0 * decay_rate ** (t / decay_steps))``.

        With ``staircase=True`` the exponent is ``floor(t / decay_steps)``.

        Example:
            >>> s = LearningRateSchedule.exponential(1.0, 0.5, 10, staircase=True)
            >>> [float(s(t)) for t in (0, 9, 10, 25)]
            [1.0, 1.0, 0.5, 0.25]
        """
        fn, params = exponential_rule(lr0, decay_rate, decay_steps, lr_end, staircase)
        return cls._make(fn, "exponential", params, min_lr, max_lr)

    @classmethod
    def cosine(
        cls,
        total_steps: int,
        lr0: float,
        lr_end: float = 0.0,
        *,
        min_lr: float | None = None,
        max_lr: float | None = None,
    ) -> LearningRateSchedule:
        """Cosine decay ``lr_end + (lr0 - lr_end) * (1 + cos(pi * min(t / T, 1))) / 2``.

        ``T = total_steps``; negative steps count as 0.

        Example:
            >>> s = LearningRateSchedule.cosine(100, 1.0, 0.5)
            >>> [float(s(t)) for t in (0, 50, 100, 200)]
            [1.0, 0.75, 0.5, 0.5]
        """
        fn, params = cosine_rule(total_steps, lr0, lr_end)
        return cls._make(fn, "cosine", params, min_lr, max_lr)

    @classmethod
    def warmup_cosine(
        cls,
        total_steps: int,
        warmup_steps: int,
        lr0: float = 1e-3,
        lr_end: float = 1e-6,
        *,
        min_lr: float | None = None,
        max_lr: float | None = None,
    ) -> LearningRateSchedule:
        """Linear warm-up ``lr0 * (t + 1) / warmup_steps`` for ``t < warmup_steps``, then
        cosine decay from ``lr0`` at ``warmup_steps`` to ``lr_end`` at ``total_steps``.

        Example:
            >>> s = LearningRateSchedule.warmup_cosine(20, 10, lr0=1.0, lr_end=0.0)
            >>> [round(float(s(t)), 4) for t in (0, 4, 9, 10, 15, 20)]
            [0.1, 0.5, 1.0, 1.0, 0.5, 0.0]
        """
        fn, params = warmup_cosine_rule(total_steps, warmup_steps, lr0, lr_end)
        return cls._make(fn, "warmup_cosine", params, min_lr, max_lr)

    @classmethod
    def piecewise_constant(
        cls,
        boundaries: Sequence[int],
        values: Sequence[float],
        *,
        min_lr: float | None = None,
        max_lr: float | None = None,
    ) -> LearningRateSchedule:
        """``values[#{b in boundaries : t >= b}]``: ``values[0]`` before the first boundary.

        ``values[0]``, the initial rate, must be > 0; later values may be 0 (a phase that
        freezes the network), never negative.

        Example:
            >>> s = LearningRateSchedule.piecewise_constant([10, 20], [1.0, 0.5, 0.25])
            >>> [float(s(t)) for t in (0, 9, 10, 19, 20, 99)]
            [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
        """
        fn, params = piecewise_constant_rule(boundaries, values)
        return cls._make(fn, "piecewise_constant", params, min_lr, max_lr)

    @classmethod
    def reduce_on_plateau(
        cls,
        lr0: float,
        factor: float = 0.5,
        patience: int = 100,
        cooldown: int = 0,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
        max_lr: float | None = None,
    ) -> LearningRateSchedule:
        """Loss-adaptive: a :class:`ReduceOnPlateau` (see its docstring for the rule).

        Example:
            >>> s = LearningRateSchedule.reduce_on_plateau(1e-3, patience=5)
            >>> s.stateful
            True
        """
        # The loss-adaptive subclasses live in their own module, which imports this one.
        from jno.nnx.schedules.adaptive import ReduceOnPlateau

        return ReduceOnPlateau(
            lr0, factor=factor, patience=patience, cooldown=cooldown, threshold=threshold,
            min_lr=min_lr, max_lr=max_lr,
        )  # fmt: skip

    @classmethod
    def dlrs(
        cls,
        lr0: float = 1e-3,
        window: int = 10,
        decremental_factor: float = 0.5,
        stagnation_factor: float = 0.1,
        increment_factor: float = 0.1,
        min_lr: float = 1e-10,
        max_lr: float = 1.0,
        eps: float = 1e-12,
    ) -> LearningRateSchedule:
        """Loss-adaptive: a :class:`DLRS` (see its docstring for the rule).

        Example:
            >>> float(LearningRateSchedule.dlrs(lr0=1e-3, window=4)(0, [1.0]))
            0.0010000000474974513
        """
        from jno.nnx.schedules.adaptive import DLRS

        return DLRS(
            lr0=lr0, window=window, decremental_factor=decremental_factor,
            stagnation_factor=stagnation_factor, increment_factor=increment_factor,
            min_lr=min_lr, max_lr=max_lr, eps=eps,
        )  # fmt: skip


def as_schedule(obj: Any) -> LearningRateSchedule:
    """Turn anything accepted as a learning rate into a :class:`LearningRateSchedule`.

    A ``LearningRateSchedule`` (``DLRS`` and ``ReduceOnPlateau`` included) is returned as
    is; a number becomes a constant; a callable that takes two positional arguments is
    called as ``obj(step, losses)``; a callable of one argument (an optax schedule, a
    function of ``count``) is called as ``obj(step)``.

    Raises:
        TypeError: for anything else, naming the value.

    Example:
        >>> import optax
        >>> s = as_schedule(optax.linear_schedule(1.0, 0.0, 10))
        >>> float(s(5, None)), float(as_schedule(2e-3)(0))
        (0.5, 0.0020000000949949026)
    """
    if isinstance(obj, LearningRateSchedule):
        return obj
    if is_real(obj):
        return LearningRateSchedule.constant(obj)
    if callable(obj):
        two = accepts_two_positional(obj)
        if two is None:
            raise TypeError(f"cannot inspect the signature of schedule {obj!r}")
        if two:
            return LearningRateSchedule(obj)
        sched = LearningRateSchedule(lambda step, losses: obj(step))
        sched._kind, sched._params = "callable", (("fn", fn_name(obj)),)
        return sched
    raise TypeError(
        "a learning rate must be a LearningRateSchedule, a number or a callable "
        f"(step) -> lr / (step, losses) -> lr, got {obj!r}"
    )
