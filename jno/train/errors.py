"""Exceptions raised by the training engine."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN or Inf during training.

    The trainer's parameters, optimizer, schedule and balancer state are those of the
    last good step (the step that diverged was not applied), and the last checkpoint
    written stays intact.

    Attributes:
        step: Index of the step that produced the non-finite value (0-based: the
            number of steps completed before it).
        terms: Names of the loss terms that were non-finite; ``("gradient",)`` when
            every loss was finite but the gradient was not, ``("learning rate",)`` when
            a schedule returned a non-finite rate.

    Example:
        >>> err = TrainingDiverged(12, ["pde"])
        >>> str(err)
        "training diverged at step 12: non-finite value in ['pde']"
    """

    def __init__(self, step: int, terms: Sequence[str]):
        self.step = int(step)
        self.terms = tuple(terms)
        super().__init__(
            f"training diverged at step {self.step}: non-finite value in {list(terms)}"
        )
