"""What the recipes share: reading a trainer's point sets and optimizer, and setting one
optimizer on it (one over all networks when there are several)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jno.nnx.networks.constraints import Constrained
from jno.resampling import RAD
from jno.train.optim import OptimizerSpec

__all__ = ["current_spec", "point_counts", "residual_set", "same", "set_optimizer", "size"]


def batch_sizes(problem: Any, points: int | None, boundary_points: int | None) -> dict[str, int]:
    """A recipe's points per set of ``problem``: ``points`` for the residual's set,
    ``boundary_points`` for every other; None keeps the problem's default."""
    defaults = problem.batch_sizes()
    sizes = {
        name: defaults[name] if boundary_points is None else boundary_points
        for name in problem.point_sets
    }
    if points is not None:
        sizes[problem.causal_points] = points
    return sizes


def core_network(module: Any) -> Any:
    """The network inside output transforms (:class:`~jno.nnx.Constrained`): what a
    recipe's network settings describe."""
    while isinstance(module, Constrained):
        module = module.module
    return module


def residual_set(trainer: Any) -> tuple[str | None, Any]:
    """The name of the residual's point set (a problem's, or the only RAD set) and the
    RAD sampler on it (None without one)."""
    rads = {k: v for k, v in trainer.points.items() if isinstance(v, RAD)}
    name = getattr(trainer, "causal_points", None)
    if name is None and len(rads) == 1:
        name = next(iter(rads))
    return name, rads.get(name) if len(rads) <= 1 else None


def size(points: Any) -> int:
    """Points per draw of a point set, a sampler or an array."""
    return int(points.n) if hasattr(points, "n") else int(np.shape(points)[0])


def current_spec(trainer: Any) -> OptimizerSpec | None:
    """The optimizer the trainer steps with: the joint one, or its one network's."""
    joint = trainer.trained.joint
    if joint is not None or len(trainer.nets) > 1:
        return joint
    return trainer.nets[0].optimizer_spec


def same(a: OptimizerSpec | None, b: OptimizerSpec) -> bool:
    """Whether ``a`` is configured as ``b`` (transformation and schedule)."""
    return a is not None and a.config() == b.config()


def set_optimizer(trainer: Any, tx: Any, schedule: Any = None) -> OptimizerSpec:
    """One network: its optimizer; several: one optimizer over all of them."""
    spec = trainer.nets[0].optimizer(tx) if len(trainer.nets) == 1 else trainer.optimizer(tx)
    if schedule is not None:
        spec.scale(schedule)
    return spec


def point_counts(
    trainer: Any, points: int | None, boundary_points: int | None
) -> tuple[list[str], Any]:
    """The recipe's point counts the trainer contradicts, each with the reason
    (``points`` for the residual set, ``boundary_points`` for every other set; None
    checks nothing), and the RAD sampler of the residual set (None without one)."""
    out = []
    name, rad = residual_set(trainer)
    if points is not None:
        if name is None:
            out.append(f"points={points}: the trainer has no residual point set")
        elif size(trainer.points[name]) != points:
            n = size(trainer.points[name])
            out.append(f"points={points}: its set {name!r} has {n} points")
    if boundary_points is not None:
        others = {k: size(v) for k, v in trainer.points.items() if k != name}
        wrong = {k: n for k, n in others.items() if n != boundary_points}
        if name is None or wrong:
            out.append(f"boundary_points={boundary_points}: its other sets have {wrong or others}")
    return out, rad
