"""Optimizer specifications: ``net.optimizer(tx).scale(schedule)``.

An :class:`OptimizerSpec` pairs an optax transformation with an optional learning-rate
scale. The trainer evaluates the scale every step inside the compiled step and multiplies
the optax update by it, so ``optax.adam(1)`` with ``.scale(lrs.cosine(...))`` is Adam
with a cosine rate, and a loss-adaptive scale (``DLRS``) sees the current losses.
"""

from __future__ import annotations

from typing import Any

import optax

from jno.nnx.schedules import LearningRateSchedule, as_schedule

__all__ = ["OptimizerSpec"]


class OptimizerSpec:
    """An optax transformation plus an optional learning-rate scale.

    Created by :meth:`jno.train.network.Network.optimizer`; ``.scale(s)`` accepts a
    :class:`~jno.nnx.schedules.LearningRateSchedule` (``DLRS`` included), a number, an
    optax schedule ``(step) -> lr`` or a ``(step, losses) -> lr`` callable.

    Args:
        tx: Any optax ``GradientTransformation`` (``optax.lbfgs()`` included: the
            trainer passes it ``value``, ``grad`` and ``value_fn``).

    Example:
        >>> import optax
        >>> from jno import LearningRateSchedule as lrs
        >>> spec = OptimizerSpec(optax.adam(1)).scale(lrs.cosine(100, 1e-3))
        >>> float(spec.schedule(100))
        0.0
    """

    def __init__(self, tx: optax.GradientTransformation):
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(
                f"tx must be an optax GradientTransformation (e.g. optax.adam(1e-3)), got {tx!r}"
            )
        self.tx = tx
        self.schedule: LearningRateSchedule | None = None

    def scale(self, schedule: Any) -> OptimizerSpec:
        """Multiplies every update by ``schedule(step, losses)``; returns ``self``."""
        self.schedule = as_schedule(schedule)
        return self

    @property
    def uses_extra_args(self) -> bool:
        """Whether ``tx.update`` accepts ``value``/``grad``/``value_fn`` (L-BFGS needs them)."""
        return isinstance(self.tx, optax.GradientTransformationExtraArgs)

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description, for hyper-parameter logging."""
        desc: dict[str, Any] = {"tx": _describe_tx(self.tx)}
        if self.schedule is not None:
            desc["scale"] = self.schedule.config()
        return desc


def _describe_tx(tx: optax.GradientTransformation) -> str:
    # optax transformations are closures; their defining function's qualified name is
    # the most informative stable description available.
    init = getattr(tx, "init", None)
    name = getattr(init, "__qualname__", type(tx).__name__)
    return name.split(".<locals>")[0]
