"""The compiled program of an ensemble: every member's steps in one ``jax.jit``.

Members are stacked on a leading axis. ``members_per_batch`` members run side by side
(``jax.vmap``) and the batches one after the other (``jax.lax.map``) inside the same
program: ``members_per_batch = M`` vectorises the whole ensemble, 1 runs the members in
sequence. In a vectorised batch the step counter is one scalar outside the member
axis, so the step's ``lax.cond`` s (balancer updates, redraws) keep their predicate
unbatched and still skip the work of the steps where nothing is due.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jno.train.processes import global_array
from jno.train.state import StepState
from jno.train.step import CompiledStep

__all__ = ["MemberLoop", "member_mesh", "stack", "unstack"]


# One compiled program per tree structure, not one eager operation per leaf shape.
@jax.jit
def _stack(*trees: Any) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@jax.jit
def _unstack(tree: Any, index: jax.Array) -> Any:
    return jax.tree.map(lambda leaf: leaf[index], tree)


def stack(trees: list[Any]) -> Any:
    """Pytrees of one structure stacked on a new leading axis."""
    return _stack(*trees)


def unstack(tree: Any, index: int) -> Any:
    """Member ``index`` of a stacked pytree."""
    return _unstack(tree, jnp.asarray(index, jnp.int32))


def member_mesh(members: int, devices: list | None = None) -> Mesh:
    """A one-axis mesh ``("members",)`` over the largest number of devices that
    divides ``members`` (so each device holds the same number of members)."""
    devices = list(jax.devices() if devices is None else devices)
    count = max(d for d in range(1, len(devices) + 1) if members % d == 0)
    return Mesh(devices[:count], ("members",))


class MemberLoop:
    """Runs ``n`` steps of every member of a stacked carry in one compiled call.

    Args:
        template: the first member's compiled step; every member shares its program.
        members: the number of members M.
        members_per_batch: members run side by side, a divisor of M.
        mesh: the ``("members",)`` mesh the member axis is sharded on.
    """

    def __init__(
        self, template: CompiledStep, members: int, members_per_batch: int, mesh: Mesh
    ) -> None:
        if members % members_per_batch:
            raise ValueError(
                f"members_per_batch must divide the {members} members, got {members_per_batch}"
            )
        step = copy.copy(template)
        # Members are sharded on their own axis: no constraint on a member's points.
        step.mesh = None
        step.plan = dataclasses.replace(template.plan, uniform_step=members_per_batch > 1)
        self.step = step
        self.members = members
        self.per_batch = members_per_batch
        self.batches = members // members_per_batch
        self.sharding = NamedSharding(mesh, P("members"))
        self._run = jax.jit(self._run_all)

    def place(self, tree: Any) -> Any:
        """A stacked pytree put on the devices, split on the member axis."""
        return global_array(tree, self.sharding)

    def _batched(self, carry: StepState, accumulated: Any, fixed: Any, n: jax.Array):
        """``per_batch`` members side by side; their step counter is one scalar."""
        axes = jax.tree.map(lambda _: 0, carry).replace(step=None)
        step = carry.step[0]

        def one(c, a, f):
            return self.step.run_steps(c, a, f, n)

        carry, accumulated = jax.vmap(one, in_axes=(axes, 0, 0), out_axes=(axes, 0))(
            carry.replace(step=step), accumulated, fixed
        )
        return carry.replace(step=jnp.full((self.per_batch,), carry.step)), accumulated

    def _run_all(self, carry: StepState, accumulated: Any, fixed: Any, n: jax.Array):
        if self.per_batch == 1:
            return jax.lax.map(lambda xs: self.step.run_steps(*xs, n), (carry, accumulated, fixed))
        if self.batches == 1:
            return self._batched(carry, accumulated, fixed, n)
        # Member j * B + b runs in batch b: each batch then holds members from every
        # device's contiguous block of the sharded member axis.
        b, g = self.per_batch, self.batches

        def split(leaf):
            return jnp.moveaxis(jnp.reshape(leaf, (b, g, *leaf.shape[1:])), 1, 0)

        def merge(leaf):
            return jnp.reshape(jnp.moveaxis(leaf, 0, 1), (b * g, *leaf.shape[2:]))

        xs = jax.tree.map(split, (carry, accumulated, fixed))
        out = jax.lax.map(lambda x: self._batched(*x, n), xs)
        return jax.tree.map(merge, out)

    def run(self, carry: StepState, accumulated: Any, fixed: Any, n: int):
        """Runs ``n`` steps of every member; returns the stacked carry and metrics."""
        return self._run(carry, accumulated, fixed, jnp.asarray(n, jnp.int32))


def default_members_per_batch(members: int, work: float) -> int:
    """Members side by side by default: all of them when a member's step is small
    (``work``: parameters times points per step below 4e6, where vectorising measured
    faster on a CPU), otherwise one at a time.

    Example:
        >>> default_members_per_batch(8, 2e3 * 600), default_members_per_batch(8, 9e3 * 3400)
        (8, 1)
    """
    return members if work < 4e6 else 1


def parameter_count(carry: StepState) -> int:
    """Trained parameters of one member."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(carry.params))
