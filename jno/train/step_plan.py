"""The static layout of a compiled step: what it computes and logs under which names.

Example:
    >>> plan = StepPlan(
    ...     term_names=("pde", "bc"), tracker_names=(), net_names=("u",), point_names=("x",),
    ...     resampled=(False,), scaled=(True,), raise_on_nonfinite=True,
    ... )
    >>> plan.lr_tags, plan.metrics().tags[:3]
    (('lr',), ('loss/total', 'loss/pde', 'loss/bc'))
"""

from __future__ import annotations

import dataclasses

from jno.train.metrics import StepMetrics
from jno.train.point_plan import AdaptiveSet
from jno.train.term_gradients import BalancerNeeds

__all__ = ["StepPlan"]


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """The static layout of a step: what is computed and logged under which names."""

    term_names: tuple[str, ...]
    tracker_names: tuple[str, ...]
    #: One name per optimizer: the network's, or one for a joint optimizer.
    net_names: tuple[str, ...]
    point_names: tuple[str, ...]
    resampled: tuple[bool, ...]
    scaled: tuple[bool, ...]
    raise_on_nonfinite: bool
    #: What the balancers need besides the losses, and how often.
    needs: BalancerNeeds = BalancerNeeds()
    #: Residual entry p depends on point p alone (per-point NTK gradients are then cheap).
    pointwise_residuals: bool = True
    #: ``(point-set name, component slot, loss term)`` of each residual-adaptive set.
    adaptive: tuple[AdaptiveSet, ...] = ()
    #: The step counter advances on every step, also after a divergence (ensembles:
    #: the counter is then one value for all members, outside their vectorised axis).
    uniform_step: bool = False

    @property
    def lr_tags(self) -> tuple[str, ...]:
        if len(self.net_names) == 1:
            return ("lr",) if self.scaled[0] else ()
        return tuple(f"lr/{n}" for n, s in zip(self.net_names, self.scaled) if s)

    def metrics(self) -> StepMetrics:
        return StepMetrics(
            mean_tags=["loss/total", *(f"loss/{t}" for t in self.term_names), "grad_norm"],
            last_tags=[
                *(f"weight/{t}" for t in self.term_names),
                *self.lr_tags,
                *(f"tracker/{t}" for t in self.tracker_names),
                *(f"grad_norm/{t}" for t in self.term_names if self.needs.gradients),
            ],
            sum_tags=["skipped_steps"],
        )
