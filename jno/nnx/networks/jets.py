"""Forward propagation of input derivatives through a network (Taylor mode).

A :class:`Jet` carries, for a batch of points ``x`` of shape ``(n, d)``, a value and
the derivatives of that value along chosen input axes: first derivatives ``d/dx_i``,
second derivatives ``d^2/(dx_i dx_j)`` and, optionally, the Laplacian
``sum_i d^2/dx_i^2`` without its individual terms. Dense layers, elementwise
activations, sums and products map jets to jets, so a network's forward pass written
with ``@``, ``+``, ``*`` and :func:`elementwise` computes every requested derivative
in one pass that shares the primal activations (the "forward Laplacian" and its
generalisation to mixed partials).

Each derivative is its own array (not stacked along an axis): measured on a 4 x 64 tanh
MLP in a training step on CPU, separate arrays differentiate about 3x faster with
respect to the parameters than one ``(d, n, p)`` stack. An input tangent ``e_i`` is
the same for every point, so it is kept as a ``(d,)`` row that broadcasts: the first
dense layer maps it to a row of its kernel instead of an ``(n, p)`` matrix product.
A derivative that is known to be zero is ``None``.

Example:
    >>> import jax.numpy as jnp
    >>> from jno.nnx.networks.jets import Jet, elementwise
    >>> x = jnp.array([[0.5, 2.0]])
    >>> jet = Jet.seed(x, first=(0, 1), second=((0, 1),), laplacian=True)
    >>> y = elementwise(jnp.sin, jet @ jnp.array([[1.0], [3.0]]))  # sin(x0 + 3 x1)
    >>> float(y.first[1][0, 0]) == float(3 * jnp.cos(6.5))
    True
    >>> float(y.laplacian[0, 0]) == float(-10 * jnp.sin(6.5))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["Jet", "concatenate", "elementwise", "lift"]

Array = jax.Array
Pair = tuple[int, int]


def _pair(i: int, j: int) -> Pair:
    return (i, j) if i <= j else (j, i)


def _add(a: Array | None, b: Array | None) -> Array | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _mul(a: Array | None, b: Array | None) -> Array | None:
    return None if a is None or b is None else a * b


def _scale(a: Array | None, s: Any) -> Array | None:
    return None if a is None else a * s


def _sum(terms: Iterable[Array | None]) -> Array | None:
    out = None
    for t in terms:
        out = _add(out, t)
    return out


class Jet:
    """A value and its derivatives along input axes, for a batch of points.

    Attributes:
        value: the primal value, ``(n, p)``.
        first: ``{i: d value / dx_i}``; an entry broadcasts against ``value`` (it may be
            a ``(p,)`` row shared by all points) or is ``None`` for zero.
        second: ``{(i, j): d^2 value / (dx_i dx_j)}`` with ``i <= j``, same conventions.
        laplacian: ``sum_i d^2 value / dx_i^2`` over all ``d`` input axes when the jet
            carries it (``has_laplacian``); ``None`` while it is zero.
        has_laplacian: whether the Laplacian is propagated. It needs the first
            derivative along every input axis, so ``first`` then holds all of them.

    A jet is built by :meth:`seed` and transformed with ``@`` (by a matrix), ``+``,
    ``-``, ``*`` (by a jet or an array), ``/`` (by an array) and :func:`elementwise`.
    """

    __slots__ = ("first", "has_laplacian", "laplacian", "second", "value")

    def __init__(
        self,
        value: Array,
        first: Mapping[int, Array | None],
        second: Mapping[Pair, Array | None],
        laplacian: Array | None = None,
        has_laplacian: bool = False,
    ):
        self.value = value
        self.first = dict(first)
        self.second = dict(second)
        self.laplacian = laplacian
        self.has_laplacian = has_laplacian

    @classmethod
    def seed(
        cls,
        x: Array,
        first: Iterable[int] = (),
        second: Iterable[Pair] = (),
        laplacian: bool = False,
    ) -> Jet:
        """The jet of the identity at points ``x`` of shape ``(n, d)``.

        Args:
            x: points, ``(n, d)``.
            first: input axes whose first derivatives are propagated.
            second: pairs ``(i, j)`` whose second derivatives are propagated (their
                first derivatives are added to ``first``).
            laplacian: propagate the Laplacian over all ``d`` axes (adds every axis to
                ``first``).

        Example:
            >>> import jax.numpy as jnp
            >>> jet = Jet.seed(jnp.zeros((4, 3)), first=(2,))
            >>> jet.first[2].tolist(), jet.second
            ([0.0, 0.0, 1.0], {})
        """
        d = x.shape[-1]
        pairs = sorted({_pair(i, j) for i, j in second})
        axes = set(first) | {k for p in pairs for k in p}
        if laplacian:
            axes |= set(range(d))
        eye = jnp.eye(d, dtype=x.dtype)
        return cls(
            x,
            {i: eye[i] for i in sorted(axes)},
            dict.fromkeys(pairs),
            None,
            laplacian,
        )

    # --------------------------------------------------------------- linear maps
    def _map(self, f: Callable[[Array], Array], value: Array) -> Jet:
        """Applies the linear map ``f`` to every derivative, with ``value`` the new primal."""

        def lin(a):
            return None if a is None else f(a)

        return Jet(
            value,
            {i: lin(a) for i, a in self.first.items()},
            {k: lin(a) for k, a in self.second.items()},
            lin(self.laplacian),
            self.has_laplacian,
        )

    def __matmul__(self, w: Array) -> Jet:
        return self._map(lambda a: a @ w, self.value @ w)

    def __neg__(self) -> Jet:
        return self._map(lambda a: -a, -self.value)

    def __truediv__(self, other: Any) -> Jet:
        if isinstance(other, Jet):
            return NotImplemented
        return self._map(lambda a: a / other, self.value / other)

    def _combine(self, other: Jet, sign: float) -> Jet:
        _check_compatible(self, other)

        def comb(a, b):
            return _add(a, _scale(b, sign) if sign != 1.0 else b)

        return Jet(
            self.value + sign * other.value,
            {i: comb(a, other.first[i]) for i, a in self.first.items()},
            {k: comb(a, other.second[k]) for k, a in self.second.items()},
            comb(self.laplacian, other.laplacian),
            self.has_laplacian,
        )

    def __add__(self, other: Any) -> Jet:
        if isinstance(other, Jet):
            return self._combine(other, 1.0)
        # A constant only shifts the value.
        return Jet(self.value + other, self.first, self.second, self.laplacian, self.has_laplacian)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Jet:
        if isinstance(other, Jet):
            return self._combine(other, -1.0)
        return self + (-other)

    def __rsub__(self, other: Any) -> Jet:
        return (-self) + other

    # ------------------------------------------------------------------- products
    def __mul__(self, other: Any) -> Jet:
        if not isinstance(other, Jet):
            return self._map(lambda a: a * other, self.value * other)
        _check_compatible(self, other)
        a, b = self, other
        first = {i: _add(_mul(a.first[i], b.value), _mul(a.value, b.first[i])) for i in a.first}
        second = {}
        for (i, j), aij in a.second.items():
            cross = _add(_mul(a.first[i], b.first[j]), _mul(a.first[j], b.first[i]))
            second[(i, j)] = _sum([_mul(aij, b.value), cross, _mul(a.value, b.second[(i, j)])])
        lap = None
        if a.has_laplacian:
            cross = _sum(_mul(a.first[i], b.first[i]) for i in a.first)
            lap = _sum([_mul(a.laplacian, b.value), _scale(cross, 2.0), _mul(a.value, b.laplacian)])
        return Jet(a.value * b.value, first, second, lap, a.has_laplacian)

    __rmul__ = __mul__

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the value."""
        return self.value.shape

    def full(self, a: Array | None) -> Array:
        """A derivative of this jet as an array of the value's shape (zeros for ``None``)."""
        if a is None:
            return jnp.zeros_like(self.value)
        return jnp.broadcast_to(a, self.value.shape)


def _check_compatible(a: Jet, b: Jet) -> None:
    if a.first.keys() != b.first.keys() or a.second.keys() != b.second.keys():
        raise ValueError(
            "jets carry different derivatives: "
            f"first {sorted(a.first)} vs {sorted(b.first)}, "
            f"second {sorted(a.second)} vs {sorted(b.second)}"
        )
    if a.has_laplacian != b.has_laplacian:
        raise ValueError("one jet carries the Laplacian and the other does not")


def activation_derivatives(fn: Callable[[Array], Array], z: Array, order: int) -> tuple[Array, ...]:
    """``fn(z)`` and its first ``order`` derivatives (``order`` 0, 1 or 2), elementwise.

    ``tanh``, ``sin`` and ``cos`` use closed forms that share the primal evaluation;
    any other elementwise ``fn`` is differentiated with nested ``jax.jvp``.

    Example:
        >>> import jax.numpy as jnp
        >>> f, d1, d2 = activation_derivatives(jnp.tanh, jnp.array([0.0]), 2)
        >>> f.tolist(), d1.tolist(), d2.tolist()
        ([0.0], [1.0], [-0.0])
    """
    if fn is jnp.tanh:
        t = jnp.tanh(z)
        if order == 0:
            return (t,)
        d1 = 1.0 - t * t
        return (t, d1) if order == 1 else (t, d1, -2.0 * t * d1)
    if fn is jnp.sin or fn is jnp.cos:
        s, c = jnp.sin(z), jnp.cos(z)
        out = (s, c, -s) if fn is jnp.sin else (c, -s, -c)
        return out[: order + 1]
    if order == 0:
        return (fn(z),)
    ones = jnp.ones_like(z)

    def first(v):
        return jax.jvp(fn, (v,), (ones,))

    if order == 1:
        return first(z)
    (f, d1), (_, d2) = jax.jvp(first, (z,), (ones,))
    return f, d1, d2


def elementwise(fn: Callable[[Array], Array], x: Any) -> Any:
    """``fn`` applied elementwise to an array or a :class:`Jet` (chain rule).

    For a jet with value ``z``: ``d_i fn(z) = fn'(z) d_i z``,
    ``d_ij fn(z) = fn'(z) d_ij z + fn''(z) d_i z d_j z`` and
    ``lap fn(z) = fn'(z) lap z + fn''(z) sum_i (d_i z)^2``.

    Example:
        >>> import jax.numpy as jnp
        >>> elementwise(jnp.tanh, jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """
    if not isinstance(x, Jet):
        return fn(x)
    order = 2 if (x.second or x.has_laplacian) else (1 if x.first else 0)
    derivs = activation_derivatives(fn, x.value, order)
    value = derivs[0]
    if order == 0:
        return Jet(value, {}, {}, None, False)
    d1 = derivs[1]
    first = {i: _mul(d1, a) for i, a in x.first.items()}
    second = {}
    lap = None
    if order == 2:
        d2 = derivs[2]
        for (i, j), aij in x.second.items():
            second[(i, j)] = _add(_mul(d1, aij), _mul(d2, _mul(x.first[i], x.first[j])))
        if x.has_laplacian:
            sq = _sum(_mul(a, a) for a in x.first.values())
            lap = _add(_mul(d1, x.laplacian), _mul(d2, sq))
    return Jet(value, first, second, lap, x.has_laplacian)


def concatenate(parts: list[Any], axis: int = -1) -> Any:
    """``jnp.concatenate`` along the last axis for arrays or for jets of one kind.

    Example:
        >>> import jax.numpy as jnp
        >>> jet = Jet.seed(jnp.ones((2, 1)), first=(0,))
        >>> concatenate([jet, jet * 2.0]).first[0].tolist()
        [[1.0, 2.0], [1.0, 2.0]]
    """
    if not any(isinstance(p, Jet) for p in parts):
        return jnp.concatenate(parts, axis=axis)
    if axis not in (-1, parts[0].value.ndim - 1):
        raise ValueError(f"jets concatenate along the last axis only, got axis={axis}")
    for p in parts[1:]:
        _check_compatible(parts[0], p)
    ref = parts[0]

    def cat(get):
        pieces = [get(p) for p in parts]
        if all(a is None for a in pieces):
            return None
        return jnp.concatenate([p.full(a) for p, a in zip(parts, pieces)], axis=-1)

    return Jet(
        jnp.concatenate([p.value for p in parts], axis=-1),
        {i: cat(lambda p, i=i: p.first[i]) for i in ref.first},
        {k: cat(lambda p, k=k: p.second[k]) for k in ref.second},
        cat(lambda p: p.laplacian),
        ref.has_laplacian,
    )


def lift(fn: Callable[[Array], Array], x: Any) -> Any:
    """``fn`` applied to points or to a :class:`Jet` of points, through any JAX function.

    ``fn`` maps points ``(n, d)`` row-wise to ``(n,)`` or ``(n, k)`` values. On a jet,
    its derivatives come from the chain rule with forward-mode autodiff:
    ``d_i f = Df[t_i]``, ``d_ij f = D^2 f[t_i, t_j] + Df[t_ij]`` and
    ``lap f = sum_i D^2 f[t_i, t_i] + Df[lap x]``, where the ``t`` are the derivatives
    the jet carries. One ``jax.jvp`` per first derivative and one nested pair per second
    derivative: for a cheap closed-form ``fn`` (a distance function, boundary data)
    a small cost next to the network's pass. A one-dimensional result becomes ``(n, 1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([[1.0, 2.0]])
        >>> f = lambda p: p[:, 0] ** 2 * p[:, 1]  # x^2 y
        >>> jet = lift(f, Jet.seed(x, first=(0,), second=((0, 0), (0, 1)), laplacian=True))
        >>> jet.value.tolist(), jet.first[0].tolist(), jet.second[(0, 1)].tolist()
        ([[2.0]], [[4.0]], [[2.0]])
        >>> jet.laplacian.tolist()  # 2 y + 0
        [[4.0]]
    """

    def column(y: Array) -> Array:
        out = fn(y)
        return out[:, None] if out.ndim == 1 else out

    if not isinstance(x, Jet):
        return column(x)
    point = x.value

    def along(t: Array) -> Array:
        return jax.jvp(column, (point,), (t,))[1]

    def curvature(s: Array, t: Array) -> Array:
        return jax.jvp(lambda y: jax.jvp(column, (y,), (t,))[1], (point,), (s,))[1]

    tangents = {i: None if a is None else x.full(a) for i, a in x.first.items()}
    first = {i: None if t is None else along(t) for i, t in tangents.items()}
    second = {}
    for (i, j), a in x.second.items():
        ti, tj = tangents[i], tangents[j]
        curve = None if ti is None or tj is None else curvature(ti, tj)
        second[(i, j)] = _add(curve, None if a is None else along(x.full(a)))
    lap = None
    if x.has_laplacian:
        curves = (curvature(t, t) for t in tangents.values() if t is not None)
        lap = _add(_sum(curves), None if x.laplacian is None else along(x.full(x.laplacian)))
    return Jet(column(point), first, second, lap, x.has_laplacian)
