"""Exceptions raised by the training engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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

    @classmethod
    def at(cls, bad_step: Any, bad: Any, term_names: Sequence[str]) -> TrainingDiverged:
        """The error of a step state's first non-finite step ``bad_step``, where ``bad``
        flags the non-finite losses (in the order of ``term_names``), then the gradient,
        then the learning rate.

        Example:
            >>> TrainingDiverged.at(7, [False, True, True, False], ["pde", "bc"]).terms
            ('bc',)
        """
        names = [*term_names, "gradient", "learning rate"]
        terms = [names[j] for j in np.flatnonzero(np.asarray(bad))]
        if any(t in term_names for t in terms):
            # A non-finite loss makes the gradient non-finite too: name the cause.
            terms = [t for t in terms if t in term_names]
        return cls(int(bad_step), terms)

    def __init__(self, step: int, terms: Sequence[str]):
        self.step = int(step)
        self.terms = tuple(terms)
        super().__init__(
            f"training diverged at step {self.step}: non-finite value in {list(terms)}"
        )
