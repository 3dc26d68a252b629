"""Point samplers for PINN training: intervals and boxes in any dimension.

A domain hands out :class:`PointSet` s: small immutable descriptions of *how* to draw
``n`` points (interior, boundary faces, initial time slice, or a fixed array). The
points themselves come from ``PointSet.sample(key)``, a pure JAX function of the key,
so a trainer can draw a fixed set once or redraw ``resample=True`` sets every step
inside its compiled step. Points are of the default float dtype: float32, or float64
under ``jax_enable_x64``.

Example:
    >>> import jax
    >>> from jno.domain import Box
    >>> box = Box([0.0, 0.0], [1.0, 2.0])
    >>> pts = box.interior(128)
    >>> x = pts.sample(jax.random.key(0))
    >>> x.shape, str(x.dtype)
    ((128, 2), 'float32')
    >>> bool(((x >= 0) & (x <= jax.numpy.array([1.0, 2.0]))).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_bool, check_index, check_int, check_real
from jno.nnx._dtype import default_float

__all__ = ["Box", "Interval", "PointSet"]

_KINDS = ("interior", "boundary", "initial", "fixed")


@dataclass(frozen=True, eq=False)
class PointSet:
    """``n`` points of dimension ``dim``, drawn by :meth:`sample`.

    Built by :class:`Box` / :class:`Interval` methods or :meth:`from_array`; not usually
    constructed directly. Instances compare and hash by identity, so they can serve as
    static arguments of ``jax.jit``.

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


def _bounds(value: Any, name: str) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of real numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {value!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return tuple(float(v) for v in arr)


class Box:
    """Axis-aligned box ``[lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}]``, any dimension.

    With ``time_axis`` set, one coordinate is time: :meth:`boundary` then samples the
    lateral boundary (spatial faces times the full time range) and :meth:`initial`
    the slice ``t = lo[time_axis]``.

    Args:
        lo: lower corner, length ``d``.
        hi: upper corner, length ``d``; ``lo < hi`` elementwise.
        time_axis: index of the time coordinate (negative counts from the end), or
            ``None`` for a purely spatial box. Needs ``d >= 2``.

    Raises:
        ValueError: mismatched lengths, non-finite bounds, ``lo >= hi`` on some axis,
            or ``time_axis`` out of range.

    Example:
        >>> import jax
        >>> from jno.domain import Box
        >>> st = Box([0.0, 0.0], [1.0, 5.0], time_axis=-1)   # (x, t)
        >>> x0 = st.initial(6).sample(jax.random.key(0))
        >>> x0[:, 1].tolist()
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, lo: Sequence[float], hi: Sequence[float], time_axis: int | None = None):
        lo_t, hi_t = _bounds(lo, "lo"), _bounds(hi, "hi")
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
        d = len(lo_t)
        if time_axis is not None:
            time_axis = check_int("time_axis", time_axis)
            if d < 2:
                raise ValueError(
                    f"time_axis needs a box of dimension >= 2 (space and time), got dimension "
                    f"{d} with time_axis={time_axis}"
                )
            time_axis = check_index("time_axis", time_axis, d)
        self.lo: tuple[float, ...] = lo_t
        self.hi: tuple[float, ...] = hi_t
        self.dim: int = d
        self.time_axis: int | None = time_axis
        self.spatial_axes: tuple[int, ...] = tuple(k for k in range(d) if k != time_axis)

    def __repr__(self) -> str:
        t = "" if self.time_axis is None else f", time_axis={self.time_axis}"
        return f"{type(self).__name__}(lo={list(self.lo)}, hi={list(self.hi)}{t})"

    # -- sampling helpers (pure jax, called inside PointSet.sample)

    def _scale(self, u: jax.Array) -> jax.Array:
        """Map uniforms in [0, 1) to the box."""
        lo, hi = np.asarray(self.lo, u.dtype), np.asarray(self.hi, u.dtype)
        # The clip guards the float rounding of lo + (hi - lo) * u at the top end.
        return jnp.clip(lo + (hi - lo) * u, lo, hi)

    def _uniform(self, key: jax.Array, n: int) -> jax.Array:
        return self._scale(jax.random.uniform(key, (n, self.dim), default_float()))

    def face_probabilities(self) -> np.ndarray:
        """Probability of each boundary face, in proportion to its ``(d-1)``-dim area.

        Faces are ordered ``(axis a, lo), (axis a, hi)`` over the spatial axes ``a`` in
        order. With a time axis, the area includes the time extent.

        Example:
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0], [1.0, 3.0]).face_probabilities().tolist()
            [0.375, 0.375, 0.125, 0.125]
        """
        extent = np.subtract(self.hi, self.lo)
        areas = [math.prod(np.delete(extent, a)) for a in self.spatial_axes]
        p = np.repeat(np.asarray(areas, np.float64), 2)
        return p / p.sum()

    # -- public samplers (each draw is wrapped in jax.jit: sampled eagerly it compiles
    # once instead of op by op; inside an outer trace the inner jit is inlined)

    def interior(self, n: int, resample: bool = False) -> PointSet:
        """``n`` points uniform in the box (the closed box; boundary hits have measure 0).

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).interior(8).sample(jax.random.key(0)).shape
            (8, 3)
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        return PointSet(
            n, self.dim, resample, "interior", jax.jit(lambda key: self._uniform(key, n))
        )

    def boundary(self, n: int, resample: bool = False) -> PointSet:
        """``n`` points uniform on the boundary (the lateral boundary with a time axis).

        A face is picked per point with :meth:`face_probabilities`, the point is uniform
        on it, and its normal coordinate is set exactly to ``lo`` or ``hi``.

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> x = Box([0.0, 0.0], [1.0, 1.0]).boundary(50).sample(jax.random.key(0))
            >>> bool(((x == 0.0) | (x == 1.0)).any(axis=1).all())
            True
        """
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        # Inner thresholds of the face CDF: face = number of thresholds <= u.
        cdf = np.cumsum(self.face_probabilities())[:-1]
        face_axis = np.repeat(np.asarray(self.spatial_axes, np.int32), 2)
        d = self.dim

        def draw(key: jax.Array) -> jax.Array:
            # The dtype is read when the draw is traced, so it follows jax_enable_x64.
            dtype = default_float()
            lo, hi = np.asarray(self.lo, dtype), np.asarray(self.hi, dtype)
            # One random call: column 0 picks the face, the rest place the point.
            u = jax.random.uniform(key, (n, d + 1), dtype)
            face = jnp.sum(u[:, :1] >= cdf.astype(dtype), axis=1)
            axis = jnp.asarray(face_axis)[face]
            value = jnp.where(face % 2 == 1, jnp.asarray(hi)[axis], jnp.asarray(lo)[axis])
            on_face = jax.nn.one_hot(axis, d, dtype=jnp.bool_)
            return jnp.where(on_face, value[:, None], self._scale(u[:, 1:]))

        return PointSet(n, d, resample, "boundary", jax.jit(draw))

    def initial(self, n: int, resample: bool = False) -> PointSet:
        """``n`` points uniform on the initial slice ``t = lo[time_axis]``.

        Raises:
            ValueError: the box has no ``time_axis``.

        Example:
            >>> import jax
            >>> from jno.domain import Box
            >>> x = Box([0.0, 2.0], [1.0, 3.0], time_axis=1).initial(3).sample(jax.random.key(0))
            >>> x[:, 1].tolist()
            [2.0, 2.0, 2.0]
        """
        if self.time_axis is None:
            raise ValueError(
                f"initial() needs a time axis, but {self!r} has time_axis=None; build the box "
                "with time_axis=<index of t>, e.g. Box([x0, t0], [x1, t1], time_axis=-1)"
            )
        n, resample = check_int("n", n, minimum=1), check_bool("resample", resample)
        t = self.time_axis
        t0 = self.lo[t]
        draw = lambda key: self._uniform(key, n).at[:, t].set(t0)
        return PointSet(n, self.dim, resample, "initial", jax.jit(draw))

    def grid(self, n_per_axis: int | Sequence[int]) -> jax.Array:
        """Regular grid over the closed box, corners included, for evaluation and plots.

        Args:
            n_per_axis: points per axis (>= 2), one int for all axes or one per axis.

        Returns:
            array of shape ``(prod(n_per_axis), d)`` of the default float dtype; the last
            axis varies fastest (``"ij"`` indexing), so ``grid.reshape(*n_per_axis, d)`` is
            the mesh. Wrap it with :meth:`PointSet.from_array` to train on it.

        Example:
            >>> from jno.domain import Box
            >>> Box([0.0, 0.0], [1.0, 2.0]).grid(2).tolist()
            [[0.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 2.0]]
        """
        if isinstance(n_per_axis, (int, np.integer)) and not isinstance(n_per_axis, bool):
            counts = [check_int("n_per_axis", n_per_axis, minimum=2)] * self.dim
        else:
            if not isinstance(n_per_axis, Sequence) or isinstance(n_per_axis, str):
                raise TypeError(
                    f"n_per_axis must be an int or a sequence of ints, got {n_per_axis!r}"
                )
            if len(n_per_axis) != self.dim:
                raise ValueError(
                    f"n_per_axis must have one entry per axis ({self.dim}), got {list(n_per_axis)}"
                )
            counts = [check_int(f"n_per_axis[{k}]", m, minimum=2) for k, m in enumerate(n_per_axis)]
        axes = [np.linspace(a, b, m) for a, b, m in zip(self.lo, self.hi, counts)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return jnp.asarray(np.stack([g.ravel() for g in mesh], axis=1), default_float())


class Interval(Box):
    """The interval ``[a, b]``: a one-dimensional :class:`Box`.

    Its boundary is the two end points, each drawn with probability 1/2.

    Args:
        a: left end (finite).
        b: right end (finite), ``a < b``.

    Example:
        >>> import jax
        >>> from jno.domain import Interval
        >>> I = Interval(-1.0, 1.0)
        >>> I.interior(5).sample(jax.random.key(0)).shape
        (5, 1)
        >>> I.grid(3)[:, 0].tolist()
        [-1.0, 0.0, 1.0]
    """

    def __init__(self, a: float, b: float):
        a, b = check_real("a", a), check_real("b", b)
        if not a < b:
            raise ValueError(f"a must be < b, got a={a}, b={b}")
        super().__init__([a], [b])

    def __repr__(self) -> str:
        return f"Interval({self.lo[0]}, {self.hi[0]})"
