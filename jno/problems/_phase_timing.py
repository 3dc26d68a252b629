"""How long one step of a trainer takes with another optimizer, the trainer left as it
was: what :meth:`QuasiNewtonRecipe.sized_to` measures for each phase."""

from __future__ import annotations

import time
from typing import Any

import jax

from jno.problems._recipe_parts import set_optimizer

__all__ = ["step_seconds"]


def step_seconds(trainer: Any, tx: Any, schedule: Any, steps: int) -> float:
    """Seconds per step of ``trainer`` with ``tx`` set, over ``steps`` fused steps after
    one compiled warm-up call; the trainer is left as it was."""
    nets = trainer.nets
    saved = (trainer.trained.joint, [n.optimizer_spec for n in nets])
    opt_states = list(trainer.trained.opt_states)
    try:
        set_optimizer(trainer, tx, schedule)
        compiled = trainer.compile()
        state = trainer.initial_state()
        fixed = trainer.fixed_points()
        empty = compiled.metrics.empty()
        jax.block_until_ready(compiled.run(state, empty, fixed, steps))  # compiles
        start = time.perf_counter()
        jax.block_until_ready(compiled.run(state, empty, fixed, steps))
        return (time.perf_counter() - start) / steps
    finally:
        trainer.trained.joint = saved[0]
        for net, spec in zip(nets, saved[1]):
            net.optimizer_spec = spec
        if saved[0] is not None or None not in saved[1]:
            trainer.trained.refresh()  # back to the trainer's own optimizers and states
            trainer.trained.opt_states = opt_states
