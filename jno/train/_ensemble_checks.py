"""Ensemble members must share their structure: the first difference, in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

__all__ = ["first_difference"]

# Settings that may differ between members: what each member is for.
_PER_MEMBER = ("seed", "logdir", "checkpoint_dir")


def _diff(a: Any, b: Any, path: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key == "seed":  # a seed only draws initial state (keys, parameters)
                continue
            if key not in a or key not in b:
                return f"{path}{key}: present in one member only"
            found = _diff(a[key], b[key], f"{path}{key}.")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _diff(x, y, f"{path}{i}.")
            if found:
                return found
        return None
    if a != b:
        return f"{path.rstrip('.')}: {a!r} and {b!r}"
    return None


def _shapes(tree: Any) -> list[tuple[str, tuple[int, ...], str]]:
    return [
        (jax.tree_util.keystr(path), tuple(leaf.shape), str(leaf.dtype))
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def first_difference(members: Sequence[Any], seeds: Sequence[int]) -> str | None:
    """The first way member ``k`` differs from member 0 in anything but its seeds
    (its own and those of its balancer and samplers), log and checkpoint folders, or
    None when all share their structure.

    Compared in turn: the trainer class, the configuration (``Trainer.config()``:
    networks, optimizers, schedules, balancer, components, points, problem
    parameters), the loss terms, the run settings, the shapes and dtypes of the step
    state and the network graphs (``log_every``, ``checkpoint_every``,
    ``steps_per_call``, ``keep``).
    """
    first = members[0]
    config0 = {k: v for k, v in first.config().items() if k not in _PER_MEMBER}
    graphs0 = first.trained.split()[0]
    shapes0 = _shapes(first.initial_state())
    settings = ("log_every", "checkpoint_every", "steps_per_call", "keep", "on_nonfinite")
    for k, member in enumerate(members[1:], start=1):
        who = f"member {k} (seed {seeds[k]}) differs from member 0 (seed {seeds[0]})"
        if type(member) is not type(first):
            return f"{who} in its class: {type(member).__name__} and {type(first).__name__}"
        config = {key: v for key, v in member.config().items() if key not in _PER_MEMBER}
        found = _diff(config0, config, "")
        if found:
            return f"{who} in its configuration: {found}"
        if member.term_names != first.term_names:
            return f"{who} in its loss terms: {list(member.term_names)}"
        for name in settings:
            if getattr(member, name) != getattr(first, name):
                return f"{who} in {name}: {getattr(member, name)!r} and {getattr(first, name)!r}"
        shapes = _shapes(member.initial_state())
        for a, b in zip(shapes0, shapes):
            if a != b:
                return f"{who} in its state {b[0]}: shape {b[1]} {b[2]}, member 0 {a[1]} {a[2]}"
        if len(shapes) != len(shapes0):
            return f"{who} in the structure of its state"
        if member.trained.split()[0] != graphs0:
            return f"{who} in its network graphs (layers, activations or static attributes)"
    return None
