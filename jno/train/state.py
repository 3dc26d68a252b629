"""The typed state carried from one compiled step to the next.

:class:`StepState` is everything the compiled step reads and writes: parameters,
optimizer, schedule, balancer and component states, the step counter and the
bookkeeping of non-finite steps. Fields marked ``saved`` make up a checkpoint, so the
checkpoint layout is derived from this class and never listed again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
from flax import struct

__all__ = ["StepState"]


def _saved(default_saved: bool = True, **kwargs: Any) -> Any:
    return struct.field(metadata={"saved": default_saved}, **kwargs)


@struct.dataclass
class StepState:
    """The carry of the compiled training step (a pytree).

    Attributes:
        step: the number of completed steps (int32 scalar).
        params: per network, the ``nnx.State`` of its ``nnx.Param`` variables.
        rest: per network, the rest of its state (constants, batch statistics, ...).
        opt: per network, its optax state.
        schedules: per network, the state of its loss-adaptive schedule (or None).
        balancer: the balancer's state (or None).
        components: ``{slot name: state}`` of the stateful loss components
            (:mod:`jno.train.components`).
        key: the base PRNG key of the point sampling (not saved: it follows the seed).
        term_grad_norms: the per-term gradient norms of the last balancer update.
        diverged: whether a non-finite step was met (``on_nonfinite="raise"``).
        bad_step: the first non-finite step, or -1.
        bad_terms: which losses (then gradient, learning rate) were non-finite there.

    Example:
        >>> import jax.numpy as jnp
        >>> s = StepState(step=jnp.asarray(3), params=(), rest=(), opt=(), schedules=(),
        ...               balancer=None, components={}, key=jnp.zeros(2),
        ...               term_grad_norms=jnp.zeros(0), diverged=jnp.asarray(False),
        ...               bad_step=jnp.asarray(-1), bad_terms=jnp.zeros(2, bool))
        >>> sorted(s.saved())
        ['balancer', 'opt', 'params', 'rest', 'schedules', 'step']
    """

    step: jax.Array = _saved()
    params: tuple = _saved()
    rest: tuple = _saved()
    opt: tuple = _saved()
    schedules: tuple = _saved()
    balancer: Any = _saved()
    components: Mapping[str, Any] = _saved()
    key: jax.Array = _saved(False)
    term_grad_norms: jax.Array = _saved(False)
    diverged: jax.Array = _saved(False)
    bad_step: jax.Array = _saved(False)
    bad_terms: jax.Array = _saved(False)

    def saved(self) -> dict[str, Any]:
        """What a checkpoint holds: the ``saved`` fields, each component at the top
        level under its slot name."""
        out = {}
        for f in dataclasses.fields(self):
            if not f.metadata.get("saved", True):
                continue
            if f.name == "components":
                out.update(self.components)
            else:
                out[f.name] = getattr(self, f.name)
        return out

    def with_saved(self, saved: Mapping[str, Any]) -> StepState:
        """This state with the fields of a restored checkpoint (inverse of :meth:`saved`)."""
        names = {f.name for f in dataclasses.fields(self) if f.metadata.get("saved", True)}
        fields = {k: v for k, v in saved.items() if k in names and k != "components"}
        components = {k: saved[k] for k in self.components}
        return self.replace(**fields, components=components)

    @staticmethod
    def saved_names() -> tuple[str, ...]:
        """The names of the saved fields (components excluded)."""
        return tuple(
            f.name
            for f in dataclasses.fields(StepState)
            if f.metadata.get("saved", True) and f.name != "components"
        )
