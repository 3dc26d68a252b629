"""Argument checks of the term constructors (names, functions, points, networks)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from jno.nnx._dtype import default_float
from jno.train.network import Network

_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def check_name(name: Any, what: str = "name") -> str:
    """A non-empty name made of letters, digits and ``_ . - /`` (valid TensorBoard tags)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {name!r}")
    if not _NAME.match(name):
        raise ValueError(
            f"{what} must be non-empty and contain only letters, digits, '_', '.', '-' "
            f"and '/' (it becomes a TensorBoard tag), got {name!r}"
        )
    return name


def check_arity(fn: Callable, n: int) -> None:
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        what = "(u, x)" if n == 2 else f"({n - 1} networks, x)"
        raise TypeError(f"fn must accept {what}: {n} positional arguments") from None
    except ValueError:  # no signature available (a builtin): checked when traced
        pass


def as_points(points: Any, what: str, array_only: bool = False) -> Any:
    if not array_only and hasattr(points, "sample") and hasattr(points, "resample"):
        return points
    if isinstance(points, np.ndarray | jax.Array):
        arr = points
    else:
        try:
            arr = np.asarray(points, dtype=default_float())
        except (TypeError, ValueError):
            raise TypeError(
                f"{what} must be a PointSet (e.g. Box(...).interior(n)) or an (n, d) array, "
                f"got {type(points).__name__}"
            ) from None
    if arr.ndim != 2 or arr.shape[0] < 1 or not np.isfinite(np.asarray(arr)).all():
        raise ValueError(f"{what} must be a finite (n, d) array, got shape {arr.shape}")
    return arr


def as_nets(nets: Any) -> tuple[Network, ...]:
    seq = (nets,) if isinstance(nets, Network | nnx.Module) else nets
    if not isinstance(seq, list | tuple) or not seq:
        raise TypeError(f"nets must be a jno.nn network or a sequence of them, got {nets!r}")
    for net in seq:
        if not isinstance(net, Network):
            raise TypeError(
                f"nets must hold jno.nn(...) networks, got {type(net).__name__}; wrap a Flax "
                "module with jno.nn(module) and give it an optimizer"
            )
    return tuple(seq)
