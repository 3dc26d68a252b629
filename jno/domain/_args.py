"""Argument checks of the shapes: vectors, names, part selections, grid sizes, points.

Every check raises ``TypeError`` or ``ValueError`` with the message
``"<name> must be <rule>, got <value!r>"``, like :mod:`jno.nnx._checks`.

Example:
    >>> from jno.domain._args import vector
    >>> vector([0, 1], "center", dim=2)
    (0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_int
from jno.nnx._dtype import default_float

#: ``(lo, hi)`` of a bounding box.
Bounds = tuple[tuple[float, ...], tuple[float, ...]]


def vector(value: Any, name: str, dim: int | None = None) -> tuple[float, ...]:
    """``value`` as a tuple of finite floats, of length ``dim`` when given.

    Example:
        >>> vector([1, 2.5], "lo")
        (1.0, 2.5)
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of real numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {value!r}")
    if dim is not None and arr.size != dim:
        raise ValueError(f"{name} must have {dim} coordinates, got {value!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return tuple(float(v) for v in arr)


def corners(lo: Any, hi: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The corners of a box: vectors of one length with ``lo < hi`` elementwise.

    Example:
        >>> corners([0, 0], [1, 2])
        ((0.0, 0.0), (1.0, 2.0))
    """
    lo_t, hi_t = vector(lo, "lo"), vector(hi, "hi")
    if len(lo_t) != len(hi_t):
        raise ValueError(
            f"lo and hi must have the same length, got {len(lo_t)} and {len(hi_t)} "
            f"(lo={list(lo_t)}, hi={list(hi_t)})"
        )
    for k, (a, b) in enumerate(zip(lo_t, hi_t)):
        if not a < b:
            raise ValueError(
                f"lo must be < hi elementwise, got lo[{k}]={a} >= hi[{k}]={b} "
                f"(lo={list(lo_t)}, hi={list(hi_t)})"
            )
    return lo_t, hi_t


def shape_name(value: Any) -> str:
    """A primitive's name: a non-empty string without ``"."`` (which separates the name
    from a part in part names such as ``"outer.x0"``).

    Example:
        >>> shape_name("hole")
        'hole'
    """
    if not isinstance(value, str):
        raise TypeError(f"name must be a str, got {value!r}")
    if not value or "." in value or value != value.strip():
        raise ValueError(
            f"name must be a non-empty string without '.' or surrounding spaces, got {value!r}"
        )
    return value


def select_parts(
    owner: str, parts: tuple[str, ...], names: tuple[str, ...], selection: Any
) -> tuple[str, ...]:
    """The parts a ``parts=`` argument selects, in the order of ``parts``.

    ``selection`` is None (every part), a part name, a primitive's name (all of its
    parts), or a sequence of those.

    Example:
        >>> select_parts("r", ("r.x0", "r.x1", "d"), ("r", "d"), "r")
        ('r.x0', 'r.x1')
    """
    if selection is None:
        return parts
    items = (selection,) if isinstance(selection, str) else selection
    if not isinstance(items, Sequence) or len(items) == 0:
        raise TypeError(
            f"parts must be a part name or a non-empty sequence of them, got {selection!r}"
        )
    chosen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"parts must hold strings, got {item!r} in {selection!r}")
        hits = [p for p in parts if p == item or p.startswith(item + ".")]
        if not hits:
            raise ValueError(
                f"parts must name parts of {owner}, got unknown {item!r}; valid parts are "
                f"{list(parts)} and the names {list(names)} (all parts of that shape)"
            )
        chosen.update(hits)
    return tuple(p for p in parts if p in chosen)


def grid_counts(n_per_axis: Any, dim: int) -> list[int]:
    """Points per axis of a grid: one int for all axes, or one per axis (each >= 2).

    Example:
        >>> grid_counts(3, 2), grid_counts([2, 5], 2)
        ([3, 3], [2, 5])
    """
    if isinstance(n_per_axis, (int, np.integer)) and not isinstance(n_per_axis, bool):
        return [check_int("n_per_axis", n_per_axis, minimum=2)] * dim
    if not isinstance(n_per_axis, Sequence) or isinstance(n_per_axis, str):
        raise TypeError(f"n_per_axis must be an int or a sequence of ints, got {n_per_axis!r}")
    if len(n_per_axis) != dim:
        raise ValueError(f"n_per_axis must have one entry per axis ({dim}), got {list(n_per_axis)}")
    return [check_int(f"n_per_axis[{k}]", m, minimum=2) for k, m in enumerate(n_per_axis)]


def point_array(x: Any, dim: int) -> jax.Array:
    """``x`` as an ``(n, dim)`` array, of its own dtype.

    Raises:
        ValueError: ``x`` is not of shape ``(n, dim)``.

    Example:
        >>> point_array([[0, 1]], 2).dtype
        dtype('int32')
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (n, {dim}), got shape {tuple(x.shape)}")
    return x


def points(x: Any, dim: int) -> jax.Array:
    """``x`` as a floating ``(n, dim)`` array (integers become the default float).

    Example:
        >>> points([[0, 1]], 2).dtype
        dtype('float32')
    """
    x = point_array(x, dim)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(default_float())
    return x


def square_norm(v: jax.Array) -> jax.Array:
    """``sum_k v[:, k]^2``, ``(n,)``: a sum of columns, which XLA on CPU fuses into one
    pass (a reduction over the short last axis of ``(n, d)`` runs about 15x slower).

    Example:
        >>> square_norm(jnp.array([[3.0, 4.0]])).tolist()
        [25.0]
    """
    return sum(v[:, k] * v[:, k] for k in range(v.shape[1]))


@jax.custom_jvp
def positive_zero(x: jax.Array) -> jax.Array:
    """``x`` with ``-0.0`` turned into ``0.0``, derivatives unchanged. (``x + 0.0`` does
    the same op by op, but XLA simplifies it to ``x`` in a compiled program.)

    Example:
        >>> positive_zero(jnp.array([-0.0, -1.0])).tolist()
        [0.0, -1.0]
    """
    return jnp.where(x == 0, jnp.zeros_like(x), x)


@positive_zero.defjvp
def _positive_zero_jvp(
    primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    return positive_zero(primals[0]), tangents[0]


def all_columns(b: jax.Array) -> jax.Array:
    """``all(b, axis=1)`` of an ``(n, d)`` bool array, as an ``&`` of its columns."""
    out = b[:, 0]
    for k in range(1, b.shape[1]):
        out = out & b[:, k]
    return out


def bounding_grid(bounds: Bounds, n_per_axis: int | Sequence[int]) -> jax.Array:
    """Regular grid over the closed box ``bounds``, the last axis varying fastest.

    Example:
        >>> bounding_grid(((0.0,), (1.0,)), 3)[:, 0].tolist()
        [0.0, 0.5, 1.0]
    """
    lo, hi = bounds
    counts = grid_counts(n_per_axis, len(lo))
    axes = [np.linspace(a, b, m) for a, b, m in zip(lo, hi, counts)]
    mesh = np.meshgrid(*axes, indexing="ij")
    # Converted by numpy: a conversion by jnp would compile for every grid size.
    return jnp.asarray(np.stack([g.ravel() for g in mesh], axis=1).astype(default_float()))
