"""The fields of a problem against its reference: the evaluation grid and the errors.

A :class:`FieldEvaluation` is one part of a :class:`~jno.problems.base.Problem`. It
holds the fixed evaluation grid, the reference solution (or none) and the field names,
and turns a prediction into the relative L2 error of each field. A field defined up to
a constant (a pressure) is compared after removing its mean from both the prediction
and the reference.

Example:
    >>> import jax.numpy as jnp
    >>> from jno.domain import Box
    >>> ev = FieldEvaluation(
    ...     Box([0.0], [1.0]), (5,), ("u", "p"), zero_mean=("p",),
    ...     reference=lambda x: jnp.stack([x[:, 0], 1.0 + x[:, 0] ** 2], 1),
    ... )
    >>> x = ev.points()
    >>> predicted = jnp.stack([1.1 * x[:, 0], 7.0 + x[:, 0] ** 2], 1)  # p up to a constant
    >>> {k: round(v, 6) for k, v in ev.errors(predicted, ev.reference_values()).items()}
    {'u': 0.1, 'p': 0.0}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._dtype import default_float

__all__ = ["FieldEvaluation", "apply"]


@nnx.jit
def apply(module: nnx.Module, x: jax.Array) -> jax.Array:
    """``module(x)``, compiled once per network structure and shape (evaluating a grid
    op by op costs more)."""
    return module(x)


class FieldEvaluation:
    """Relative L2 errors of a problem's fields on a fixed grid.

    Args:
        domain: The problem's domain (its ``grid(shape)`` is the evaluation grid).
        grid_shape: Points per axis of the grid (None: 101 on every axis).
        fields: The field names, one per network output.
        zero_mean: The fields compared after removing their means.
        reference: ``x -> (n,)`` for one field or ``(n, m)`` for ``m``; None without one.
    """

    def __init__(
        self,
        domain: Any,
        grid_shape: Sequence[int] | None,
        fields: Sequence[str],
        zero_mean: Sequence[str] = (),
        reference: Callable[[jax.Array], jax.Array] | None = None,
    ):
        self.domain = domain
        self.grid_shape = (101,) * domain.dim if grid_shape is None else tuple(grid_shape)
        self.fields = tuple(fields)
        unknown = [f for f in zero_mean if f not in self.fields]
        if unknown:
            raise ValueError(
                f"zero_mean_fields names {unknown}, which are not fields {list(self.fields)}"
            )
        self.zero_mean = tuple(zero_mean)
        self.reference = reference
        self._grid: jax.Array | None = None

    def points(self) -> jax.Array:
        """The evaluation grid, shape ``(n, d)``."""
        if self._grid is None:
            self._grid = self.domain.grid(list(self.grid_shape))
        return self._grid

    def as_points(self, x: Any) -> jax.Array:
        """``x`` as ``(n, d)`` points of the default float (the grid when None)."""
        if x is None:
            return self.points()
        x = jnp.asarray(x, default_float())
        if x.ndim != 2 or x.shape[1] != self.domain.dim:
            raise ValueError(
                f"points must have shape (n, {self.domain.dim}), got shape {tuple(x.shape)}"
            )
        return x

    def columns(self, values: Any, n: int, what: str) -> np.ndarray:
        """``values`` as an ``(n, m)`` float64 array of the ``m`` fields."""
        out = np.asarray(values, np.float64)
        m = len(self.fields)
        if out.shape == (n,) and m == 1:
            out = out[:, None]
        if out.shape != (n, m):
            raise ValueError(
                f"{what} must have shape (n, {m}) for the fields {list(self.fields)}"
                + (" (or (n,))" if m == 1 else "")
                + f", got {out.shape}"
            )
        return out

    def reference_values(self, x: Any = None) -> np.ndarray:
        """The reference at ``x`` (default: the grid), ``(n, m)`` float64.

        Raises:
            ValueError: the problem has no reference.
        """
        if self.reference is None:
            raise ValueError("the problem has no reference solution to compare with")
        x = self.as_points(x)
        return self.columns(self.reference(x), x.shape[0], "reference(x)")

    def errors(self, predicted: Any, reference: Any) -> dict[str, float]:
        """``{field: ||pred - ref|| / ||ref||}`` of predicted and reference values at the
        same points (``(n,)`` for one field, ``(n, m)`` for ``m``)."""
        n = np.shape(reference)[0]
        ref = self.columns(reference, n, "the reference")
        pred = self.columns(predicted, n, "the prediction")
        out = {}
        for k, name in enumerate(self.fields):
            p, r = pred[:, k], ref[:, k]
            if name in self.zero_mean:
                p, r = p - p.mean(), r - r.mean()
            norm = np.linalg.norm(r)
            if norm == 0:
                raise ValueError(
                    f"the relative L2 error of {name!r} is undefined: its reference is zero "
                    "on these points"
                )
            out[name] = float(np.linalg.norm(p - r) / norm)
        return out
