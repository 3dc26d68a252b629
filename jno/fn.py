"""Functional front end: ``jno.fn.adaptive`` holds the factories of adaptive components.

``jno.fn.adaptive`` is a namespace (a class of static methods, never instantiated).
Each factory builds one adaptive module whose state lives on the device; today it holds
the loss-adaptive learning-rate schedules, and the loss-balancer factories join it.

Example:
    >>> import jno
    >>> s = jno.fn.adaptive.dlrs(lr0=1e-3, window=10)
    >>> type(s).__name__, s.stateful
    ('DLRS', True)
"""

from __future__ import annotations

from jno.nnx.schedules import DLRS, ReduceOnPlateau

__all__ = ["adaptive"]


class adaptive:  # noqa: N801 - a lower-case namespace, used as jno.fn.adaptive.<factory>
    """Factories of adaptive components (``jno.fn.adaptive.<name>(...)``).

    Add a factory as a ``staticmethod`` whose arguments mirror the constructor it wraps,
    with a docstring and a doctest.
    """

    def __init__(self) -> None:
        raise TypeError("jno.fn.adaptive is a namespace of factories; call its functions")

    @staticmethod
    def dlrs(
        lr0: float = 1e-3,
        window: int = 10,
        decremental_factor: float = 0.5,
        stagnation_factor: float = 0.1,
        increment_factor: float = 0.1,
        min_lr: float | None = 1e-10,
        max_lr: float | None = 1.0,
        eps: float = 1e-12,
    ) -> DLRS:
        """Dynamic Learning Rate Scheduler: a :class:`~jno.nnx.schedules.DLRS`.

        Pass it to ``net.optimizer(optax.adam(1)).scale(...)``; each step's losses move
        the rate up or down from the recent loss trend (see ``DLRS`` for the rule).

        Example:
            >>> import jno
            >>> s = jno.fn.adaptive.dlrs(lr0=1e-3, window=5, min_lr=1e-6, max_lr=1e-2)
            >>> s.config()["window"], float(s(0, [2.0]))
            (5, 0.0010000000474974513)
        """
        return DLRS(
            lr0=lr0, window=window, decremental_factor=decremental_factor,
            stagnation_factor=stagnation_factor, increment_factor=increment_factor,
            min_lr=min_lr, max_lr=max_lr, eps=eps,
        )  # fmt: skip

    @staticmethod
    def reduce_on_plateau(
        lr0: float,
        factor: float = 0.5,
        patience: int = 100,
        cooldown: int = 0,
        threshold: float = 1e-4,
        min_lr: float | None = 0.0,
        max_lr: float | None = None,
    ) -> ReduceOnPlateau:
        """Reduce-on-plateau schedule: a :class:`~jno.nnx.schedules.ReduceOnPlateau`.

        Example:
            >>> import jno
            >>> s = jno.fn.adaptive.reduce_on_plateau(1e-3, factor=0.1, patience=50)
            >>> s.config()["factor"]
            0.1
        """
        return ReduceOnPlateau(
            lr0, factor=factor, patience=patience, cooldown=cooldown, threshold=threshold,
            min_lr=min_lr, max_lr=max_lr,
        )  # fmt: skip
