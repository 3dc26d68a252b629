"""The device mesh of a trainer and how arrays are placed on it."""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["data_sharding", "default_mesh", "replicated"]


def default_mesh() -> jax.sharding.Mesh:
    """Every device on one ``('data',)`` axis, with automatic (GSPMD) axis types.

    Auto axes let XLA place the reductions of the backward pass over a batch sharded
    on ``data``; explicit axes reject them.

    Example:
        >>> default_mesh().axis_names
        ('data',)
    """
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh: jax.sharding.Mesh, n: int) -> NamedSharding:
    """Points ``(n, d)`` split over the ``data`` axis when ``n`` divides evenly,
    replicated otherwise.

    Example:
        >>> data_sharding(default_mesh(), 8).spec
        P('data',)
    """
    return NamedSharding(mesh, P("data") if n % mesh.shape["data"] == 0 else P())


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """The same array on every device (parameters and the rest of the step state)."""
    return NamedSharding(mesh, P())
