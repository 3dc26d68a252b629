"""The point plan of a trainer: which point sets are fixed, resampled or residual-adaptive,
the key they are drawn with, and the fixed sets as trained on.

A :class:`PointPlan` is one part of a :class:`~jno.train.trainer.Trainer`: it owns the
point sets and the sampling key, draws the fixed sets once (sharded over the mesh's
``data`` axis), gives the stand-in batch the losses are first evaluated on, and names
the component slot of each residual-adaptive set (:mod:`jno.resampling`), whose state
the compiled step carries.

Example:
    >>> import jax.numpy as jnp
    >>> from jno.domain import Box
    >>> from jno.train.mesh import default_mesh
    >>> plan = PointPlan(
    ...     {"x": jnp.zeros((4, 1)), "interior": Box([0], [1]).interior(8, resample=True)},
    ...     default_mesh(), seed=0,
    ... )
    >>> plan.resampled, sorted(plan.fixed()), plan.stand_in()["interior"].shape
    ((False, True), ['x'], (8, 1))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._dtype import default_float
from jno.resampling import ResidualAdaptivePoints
from jno.train._plotting import pyplot, save_figure
from jno.train.mesh import data_sharding
from jno.train.processes import global_array, host_values
from jno.train.validation import net_name, resamples

__all__ = ["AdaptiveSet", "PointPlan"]


class AdaptiveSet(NamedTuple):
    """A residual-adaptive point set: its name, its component slot and the loss term
    whose residual moves it."""

    points: str
    slot: str
    term: str


class PointPlan:
    """The point sets of a trainer and how each is drawn.

    Args:
        points: ``{name: PointSet or (n, d) array}``, already checked.
        mesh: The device mesh whose ``data`` axis the points are sharded over.
        seed: Seed of the sampling key.

    Attributes:
        sets: The point sets by name, as given.
        key: The PRNG key of the sampling (from ``seed``).
        adaptive_slots: ``{point-set name: component slot}`` of the residual-adaptive sets.
    """

    def __init__(self, points: Mapping[str, Any], mesh: jax.sharding.Mesh, seed: int):
        self.sets: dict[str, Any] = dict(points)
        self.mesh = mesh
        self.key: jax.Array = jax.random.PRNGKey(seed)
        self.adaptive_slots: dict[str, str] = {
            name: "points_" + "".join(ch if ch.isalnum() else "_" for ch in name)
            for name, ps in self.sets.items()
            if isinstance(ps, ResidualAdaptivePoints)
        }
        self._fixed: dict[str, jax.Array] | None = None

    @property
    def resampled(self) -> tuple[bool, ...]:
        """Whether each set is drawn anew every step, in the order of :attr:`sets`."""
        return tuple(resamples(ps) for ps in self.sets.values())

    def components(self, taken: Mapping[str, Any]) -> dict[str, Any]:
        """The residual-adaptive sets by component slot (their state is carried).

        Raises:
            ValueError: a slot is already taken by one of the ``taken`` components.
        """
        out = {}
        for name, slot in self.adaptive_slots.items():
            if slot in taken:
                raise ValueError(f"component slot {slot!r} is taken by points {name!r}")
            out[slot] = self.sets[name]
        return out

    def fixed(self) -> dict[str, jax.Array]:
        """The sets that stay the same every step (arrays, and sets with ``resample=False``
        drawn once from the key), in the default float, sharded over ``data``."""
        if self._fixed is None:
            key = jax.random.fold_in(self.key, 0)
            fixed = {}
            for index, (name, ps) in enumerate(self.sets.items()):
                if isinstance(ps, jax.Array | np.ndarray):
                    x = jnp.asarray(ps, default_float())
                elif ps.resample:
                    continue
                else:
                    x = jnp.asarray(ps.sample(jax.random.fold_in(key, index)), default_float())
                fixed[name] = global_array(x, data_sharding(self.mesh, x.shape[0]))
            self._fixed = fixed
        return self._fixed

    def stand_in(self) -> dict[str, Any]:
        """A batch of every set's shape and dtype (abstract values), for evaluating the
        losses once without compiling."""
        fixed = self.fixed()
        batch = {}
        for name, ps in self.sets.items():
            if name in fixed:
                batch[name] = jax.ShapeDtypeStruct(fixed[name].shape, fixed[name].dtype)
            else:
                batch[name] = jax.eval_shape(ps.sample, self.key)
        return batch

    def adaptive_plan(
        self, term_names: Sequence[str], has_residuals: bool, owner: str
    ) -> tuple[AdaptiveSet, ...]:
        """The residual-adaptive sets with the loss term whose residual moves each.

        Args:
            term_names: The loss terms of the trainer.
            has_residuals: Whether the trainer defines per-point residuals.
            owner: The trainer class's name, for the error messages.
        """
        if self.adaptive_slots and not has_residuals:
            raise NotImplementedError(
                f"points {list(self.adaptive_slots)} are residual-adaptive: "
                f"{owner} must override residuals(self, net, batch) -> "
                "{term: per-point residual} for them to follow the residual"
            )
        plan = []
        for name, slot in self.adaptive_slots.items():
            term = self.sets[name].term
            if term is None and name in term_names:
                term = name
            if term not in term_names:
                raise ValueError(
                    f"points {name!r} are residual-adaptive: give the loss term whose "
                    f"residual moves them, term= one of {list(term_names)}, got {term!r}"
                )
            plan.append(AdaptiveSet(name, slot, term))
        return tuple(plan)

    def dimension_mismatch(self, nets: Sequence[Any], batch: Mapping[str, Any]) -> str:
        """Why the points of ``batch`` may not fit the networks' inputs ("" if they do)."""
        problems = []
        for net in nets:
            expected = getattr(net.module, "in_features", None)
            if expected is None:
                continue
            for name, x in batch.items():
                if len(x.shape) != 2 or x.shape[1] != expected:
                    problems.append(
                        f"points {name!r} have shape {tuple(x.shape)} but the network "
                        f"{net_name(net, nets)} expects in_features={expected}"
                    )
        return "; ".join(problems)

    def points_of(self, name: str, step: int) -> np.ndarray:
        """The points of set ``name`` as they are at ``step``: a residual-adaptive set
        where its points have moved to, a resampled set as drawn for that step."""
        if name not in self.sets:
            raise KeyError(f"no point set {name!r}; the sets are {list(self.sets)}")
        ps = self.sets[name]
        if isinstance(ps, jax.Array | np.ndarray):
            return np.asarray(host_values(ps))
        if isinstance(ps, ResidualAdaptivePoints):
            return np.asarray(host_values(ps.points[...]))
        return np.asarray(ps.sample(jax.random.fold_in(self.key, step)))

    def plot(self, name: str, path: str, step: int) -> Any:
        """A scatter of :meth:`points_of` ``(name, step)`` (first two coordinates) into
        ``path``; returns the path written."""
        pts = self.points_of(name, step)
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5, 4))
        y = pts[:, 1] if pts.shape[1] > 1 else np.zeros(pts.shape[0])
        ax.scatter(pts[:, 0], y, s=2)
        ax.set_xlabel("x0")
        if pts.shape[1] > 1:
            ax.set_ylabel("x1")
        ax.set_title(f"points {name!r} at step {step} ({pts.shape[0]} points)")
        return save_figure(fig, path)
