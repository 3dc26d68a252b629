"""Point sets: immutable descriptions of a draw of ``n`` points, sampled by key.

Example:
    >>> import jax
    >>> from jno.domain import PointSet
    >>> PointSet.from_array([[0.0, 1.0]]).sample(jax.random.key(0)).tolist()
    [[0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_bool, check_int
from jno.nnx._dtype import default_float

__all__ = ["PointSet"]

_KINDS = ("interior", "boundary", "initial", "fixed")


@dataclass(frozen=True, eq=False)
class PointSet:
    """``n`` points of dimension ``dim``, drawn by :meth:`sample`.

    Built by the samplers of a shape (:meth:`Shape.interior`, :meth:`Shape.boundary`,
    :meth:`Box.initial`) or by :meth:`from_array`; not usually constructed directly.
    Instances compare and hash by identity, so they can serve as static arguments of
    ``jax.jit``.

    Attributes:
        n: number of points per draw.
        dim: dimension of each point.
        resample: whether a trainer should draw new points every step (``True``) or
            draw once and keep them (``False``).
        kind: ``"interior"``, ``"boundary"``, ``"initial"`` or ``"fixed"``.

    Example:
        >>> import jax
        >>> from jno.domain import Interval
        >>> ps = Interval(0.0, 1.0).boundary(4, resample=True)
        >>> ps.n, ps.dim, ps.resample, ps.kind
        (4, 1, True, 'boundary')
        >>> sorted(set(ps.sample(jax.random.key(1))[:, 0].tolist())) in ([0.0], [1.0], [0.0, 1.0])
        True
    """

    n: int
    dim: int
    resample: bool
    kind: str
    _draw: Callable[[jax.Array], jax.Array] = field(repr=False)

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1)
        check_int("dim", self.dim, minimum=1)
        check_bool("resample", self.resample)
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "fixed" and self.resample:
            raise ValueError("resample must be False for kind 'fixed', got True")
        if not callable(self._draw):
            raise TypeError(f"_draw must be callable, got {self._draw!r}")

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw the points: a pure, jit-able function of ``key``.

        Args:
            key: a JAX PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``); ignored
                for a ``"fixed"`` set.

        Returns:
            array of shape ``(n, dim)`` of the default float dtype.

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> ps = Box([0.0], [1.0]).interior(3)
            >>> a = jax.jit(ps.sample)(jax.random.key(0))
            >>> bool((a == ps.sample(jax.random.key(0))).all())
            True
        """
        return self._draw(key)

    @classmethod
    def from_array(cls, x: Any) -> PointSet:
        """Wrap a fixed ``(n, d)`` array of points (``kind="fixed"``, never resampled).

        Args:
            x: array-like of shape ``(n, d)`` with finite real entries; stored in the
                default float dtype (float32, float64 under ``jax_enable_x64``).

        Raises:
            ValueError: ``x`` is not 2-D, is empty, or has non-finite entries.

        Example:
            >>> from jno.domain import PointSet
            >>> ps = PointSet.from_array([[0.0, 1.0], [2.0, 3.0]])
            >>> ps.n, ps.dim, ps.kind, ps.sample(None).tolist()
            (2, 2, 'fixed', [[0.0, 1.0], [2.0, 3.0]])
        """
        try:
            arr = np.asarray(x, dtype=default_float())
        except (TypeError, ValueError):
            raise TypeError(f"x must be an array of real numbers, got {x!r}") from None
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"x must have shape (n, d) with n, d >= 1, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"x must be finite, got {int((~np.isfinite(arr)).sum())} NaN/Inf")
        data = jnp.asarray(arr)
        return cls(int(arr.shape[0]), int(arr.shape[1]), False, "fixed", lambda key: data)
