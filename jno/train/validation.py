"""Argument checks and descriptions shared by the trainer's modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jno.train.network import Network


def config_of(module: Any) -> Any:
    config = getattr(module, "config", None)
    return config() if callable(config) else type(module).__name__


def describe_points(points: Any) -> dict[str, Any]:
    if isinstance(points, jax.Array | np.ndarray):
        return {"kind": "array", "shape": list(points.shape)}
    return {
        "kind": getattr(points, "kind", type(points).__name__),
        "n": int(getattr(points, "n", -1)),
        "dim": int(getattr(points, "dim", -1)),
        "resample": bool(points.resample),
    }


def resamples(points: Any) -> bool:
    return not isinstance(points, jax.Array | np.ndarray) and bool(points.resample)


def net_name(net: Network, nets: Sequence[Network], *, quote: bool = True) -> str:
    if net.name is not None:
        name = net.name
    elif len(nets) == 1:
        name = "net"
    else:
        name = f"net{[id(n) for n in nets].index(id(net))}"
    return repr(name) if quote else name


def as_networks(net: Any) -> tuple[Network, ...]:
    nets = (
        (net,)
        if isinstance(net, Network)
        else tuple(net)
        if isinstance(net, list | tuple)
        else None
    )
    if not nets or not all(isinstance(n, Network) for n in nets):
        raise TypeError(
            f"net must be a jno.nn(module) network or a sequence of them, got {net!r}; "
            "wrap a Flax module with jno.nn(module) and call .optimizer(tx)"
        )
    names = [n.name for n in nets if n.name is not None]
    if len(names) != len(set(names)):
        raise ValueError(f"network names must be unique, got {names}")
    return nets


def check_points(points: Any) -> dict[str, Any]:
    if not isinstance(points, Mapping) or not points:
        raise TypeError(f"points must be a non-empty dict of point sets or arrays, got {points!r}")
    checked = {}
    for name, ps in points.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"point-set names must be non-empty strings, got {name!r}")
        if isinstance(ps, jax.Array | np.ndarray):
            if ps.ndim != 2 or ps.shape[0] == 0:
                raise ValueError(f"points {name!r} must be an (n, d) array, got shape {ps.shape}")
            if not np.all(np.isfinite(np.asarray(ps))):
                raise ValueError(f"points {name!r} contain NaN or Inf")
        elif not (hasattr(ps, "sample") and hasattr(ps, "resample")):
            raise TypeError(
                f"points {name!r} must be a PointSet (e.g. Box(...).interior(n)) or an (n, d) "
                f"array, got {type(ps).__name__}"
            )
        checked[name] = ps
    return checked
