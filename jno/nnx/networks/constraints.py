"""Exactly imposed conditions: a network's output transformed so that the boundary or
initial data hold by construction (Sukumar & Srivastava, CMAME 2022; Lagaris et al.
1998).

:class:`Constrained` wraps any network ``N``: ``u(x) = offset(x) + factor(x) N(x)``.
Where ``factor`` vanishes, ``u`` equals ``offset`` with all its derivatives along the
zero set. With ``factor`` a distance function of the domain (zero on its boundary,
positive inside: ``shape.smooth_distance``) and ``offset`` an extension of the
Dirichlet data, the boundary condition holds exactly; with ``factor = t - t0`` and
``offset = u0``, the initial condition does. ``factor`` and ``offset`` are plain JAX
functions of the points: on the Taylor-mode path of :mod:`jno.ops` their derivatives
enter by forward-mode autodiff (:func:`~jno.nnx.networks.jets.lift`), and the wrapped
network keeps its one jet pass.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno import ops
    >>> from jno.nnx.networks import MLP
    >>> phi = lambda x: x[:, 0] * (1 - x[:, 0])  # u = 0 at x = 0 and x = 1
    >>> u = Constrained.dirichlet(MLP(1, [8], 1, rngs=nnx.Rngs(0)), phi)
    >>> u(jnp.array([[0.0], [1.0]])).tolist()
    [[0.0], [0.0]]
    >>> u.satisfies
    ('bc',)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._checks import check_int, check_real
from jno.nnx.networks.jets import Jet, lift
from jno.nnx.networks.mlp import JetModule

__all__ = ["Constrained"]

PointFn = Callable[[jax.Array], jax.Array]


class Constrained(JetModule):
    """``u(x) = offset(x) + factor(x) * N(x)`` for any network ``N``.

    Args:
        module: the network ``N`` (any ``nnx.Module`` mapping ``(n, d)`` to ``(n, k)``;
            a :class:`~jno.nnx.JetModule` stays on the one-pass Taylor path, another
            module is lifted by forward-mode autodiff).
        factor: ``(n, d) -> (n,)`` or ``(n, k)``, zero where the condition holds.
        offset: ``(n, d) -> (n,)`` or ``(n, k)``, the data there (extended inside), or
            None for zero data.
        satisfies: the names of the loss terms the transform makes redundant (e.g.
            ``("bc",)``): a :class:`~jno.problems.Problem` leaves them out of its losses.

    Attributes:
        in_features, out_features: those of ``module`` (when it has them).
    """

    def __init__(
        self,
        module: nnx.Module,
        factor: PointFn,
        offset: PointFn | None = None,
        *,
        satisfies: Sequence[str] = (),
    ):
        if not isinstance(module, nnx.Module):
            raise TypeError(f"module must be an nnx.Module, got {module!r}")
        if not callable(factor):
            raise TypeError(f"factor must be a function of the points, got {factor!r}")
        if offset is not None and not callable(offset):
            raise TypeError(f"offset must be a function of the points or None, got {offset!r}")
        if isinstance(satisfies, str) or not all(isinstance(s, str) for s in satisfies):
            raise TypeError(f"satisfies must be a sequence of term names, got {satisfies!r}")
        self.module = module
        self.factor = factor
        self.offset = offset
        self.satisfies = tuple(satisfies)
        for name in ("in_features", "out_features"):
            if hasattr(module, name):
                setattr(self, name, getattr(module, name))

    @classmethod
    def dirichlet(
        cls,
        module: nnx.Module,
        distance: PointFn,
        value: PointFn | None = None,
        *,
        satisfies: Sequence[str] = ("bc",),
    ) -> Constrained:
        """``u = g + phi N``: Dirichlet data ``g`` on the zero set of ``phi``.

        Args:
            module: the network ``N``.
            distance: ``phi``, zero on the boundary and positive inside (e.g.
                ``shape.smooth_distance``: a distance with kinks, such as the exact
                distance of a polygon, puts them into ``u``'s derivatives).
            value: ``g``, defined on the whole domain (any smooth extension of the
                boundary data), or None for ``u = 0`` on the boundary.
            satisfies: the loss terms this makes redundant.
        """
        return cls(module, distance, value, satisfies=satisfies)

    @classmethod
    def initial(
        cls,
        module: nnx.Module,
        value: PointFn,
        *,
        time_axis: int = -1,
        t0: float = 0.0,
        satisfies: Sequence[str] = ("ic",),
    ) -> Constrained:
        """``u = u0 + (t - t0) N``: the initial condition ``u(x, t0) = u0(x)``.

        Args:
            module: the network ``N``.
            value: ``u0``, a function of the points ``(n, d)`` (it reads the space
                columns; its value at any time is its value at ``t0``).
            time_axis: the column of ``t`` (negative counts from the end).
            t0: the initial time.
            satisfies: the loss terms this makes redundant.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> from jno.nnx.networks import MLP
            >>> u0 = lambda x: -jnp.sin(jnp.pi * x[:, 0])
            >>> u = Constrained.initial(MLP(2, [8], 1, rngs=nnx.Rngs(0)), u0, t0=0.0)
            >>> x = jnp.array([[0.5, 0.0], [-0.5, 0.0]])
            >>> u(x)[:, 0].tolist()
            [-1.0, 1.0]
        """
        axis = check_int("time_axis", time_axis)
        t0 = check_real("t0", t0)

        def elapsed(x: jax.Array) -> jax.Array:
            return x[:, axis] - jnp.asarray(t0, x.dtype)

        return cls(module, elapsed, value, satisfies=satisfies)

    def _inner(self, x: Any) -> Any:
        if isinstance(self.module, JetModule):
            return self.module.forward(x)
        return lift(self.module, x) if isinstance(x, Jet) else self.module(x)

    def forward(self, x: Any) -> Any:
        out = lift(self.factor, x) * self._inner(x)
        return out if self.offset is None else out + lift(self.offset, x)
