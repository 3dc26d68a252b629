"""Stateful loss components: modules whose state the compiled step carries.

A component is an ``nnx.Module`` that the losses use inside the step and that updates
its own state there (causal weights in time are one; residual-adaptive point samplers
and the like plug in the same way). The trainer holds its components by slot name; the
compiled step merges each from the carried state, lets the losses use it (through
:meth:`~jno.train.trainer.Trainer.component`), carries the updated state out, logs
what the component's ``trackers()`` return as ``tracker/<slot>_<name>`` and saves the
state in checkpoints under the slot name.

Example:
    >>> from jno.nnx import CausalWeights
    >>> slots = ComponentSlots({"causal": CausalWeights(4)})
    >>> slots.names, sorted(slots.tracker_names())
    (('causal',), ['causal_epsilon', 'causal_min_weight'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

__all__ = ["ComponentSlots", "with_causal"]

# Slot names must not shadow the other top-level entries of a checkpoint.
_RESERVED = ("step", "params", "rest", "opt", "schedules", "balancer", "components")


class ComponentSlots:
    """The stateful loss components of a trainer, by slot name.

    Args:
        components: ``{slot name: nnx.Module}``; ``None`` values are left out.

    Raises:
        ValueError: a slot name is empty, not an identifier or reserved.
        TypeError: a component is not an ``nnx.Module``.
    """

    def __init__(self, components: Mapping[str, Any]):
        self.modules: dict[str, nnx.Module] = {}
        for name, module in components.items():
            if module is None:
                continue
            if not isinstance(name, str) or not name.isidentifier() or name in _RESERVED:
                raise ValueError(
                    f"component slot names must be identifiers other than {_RESERVED}, got {name!r}"
                )
            if not isinstance(module, nnx.Module):
                raise TypeError(f"component {name!r} must be an nnx.Module, got {module!r}")
            self.modules[name] = module

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.modules)

    def graphdefs(self) -> tuple[Any, ...]:
        """The static structure of every component (part of the compiled step's key)."""
        return tuple(nnx.split(m)[0] for m in self.modules.values())

    def states(self) -> dict[str, Any]:
        """The current state of every component."""
        return {name: nnx.state(m) for name, m in self.modules.items()}

    def live(self, graphdefs: tuple[Any, ...], states: Mapping[str, Any]) -> dict[str, Any]:
        """Fresh modules from carried states, for one trace of the step.

        The states are copied first: variables captured from an enclosing trace cannot
        be mutated inside a nested one (the step's vjp).
        """
        return {
            name: nnx.merge(gd, jax.tree.map(lambda a: a, states[name]))
            for name, gd in zip(self.names, graphdefs)
        }

    def tracker_names(self) -> tuple[str, ...]:
        """``<slot>_<name>`` of every value the components report."""
        return tuple(f"{slot}_{name}" for slot, m in self.modules.items() for name in _trackers(m))

    @staticmethod
    def trackers(live: Mapping[str, Any]) -> dict[str, jax.Array]:
        """The values the live components report, as ``{<slot>_<name>: value}``."""
        return {f"{slot}_{k}": v for slot, m in live.items() for k, v in _trackers(m).items()}

    def store(self, states: Mapping[str, Any]) -> None:
        """Writes carried states back into the components the user holds."""
        for name, module in self.modules.items():
            nnx.update(module, states[name])


def with_causal(components: Any, causal: Any) -> dict[str, Any]:
    """The ``components=`` of a trainer with its ``causal=`` weights put in slot
    ``"causal"``.

    Raises:
        TypeError: ``components`` is not a mapping, or ``causal`` has no ``loss``.
        ValueError: the causal weights are given twice.

    Example:
        >>> from jno.nnx import CausalWeights
        >>> sorted(with_causal(None, CausalWeights(4)))
        ['causal']
    """
    if causal is not None and not callable(getattr(causal, "loss", None)):
        raise TypeError(f"causal must be a jno.nnx.CausalWeights or None, got {causal!r}")
    if components is not None and not isinstance(components, Mapping):
        raise TypeError(f"components must be a dict {{name: nnx.Module}}, got {components!r}")
    components = dict(components or {})
    if causal is not None:
        if "causal" in components:
            raise ValueError("give the causal weights once: causal= or components['causal']")
        components["causal"] = causal
    return components


def _trackers(module: Any) -> dict[str, Any]:
    method = getattr(module, "trackers", None)
    return dict(method()) if callable(method) else {}
