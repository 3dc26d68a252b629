"""The term algebra of ``jno.core``: residual and data terms, weight placeholders, trackers.

A *term* is a named scalar loss of one or more networks on a set of points: the mean
square (or another reduction) of a residual ``fn(u, x)``. Terms add, subtract and scale
by numbers; a *weight placeholder* (returned by the balancer factories of
``jno.fn.adaptive``) multiplies them. Nothing is evaluated here: an expression only
records what to compute, and :func:`jno.core` compiles the whole list into one
training step, where the weights are computed on the device every step.

``x.tracker(name=None)`` logs ``x`` every step under ``tracker/<name>`` and adds nothing
to the loss.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> from jno.frontend.terms import residual
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> x = jnp.linspace(0, 1, 8)[:, None]
    >>> pde = residual(lambda u, x: u(x) - x, x, nets=net, name="pde")
    >>> bc = net.residual(lambda u, x: u(x), jnp.zeros((1, 1)), name="bc")
    >>> loss = pde + 10 * bc
    >>> loss, (2 * pde).tracker("twice")
    (pde+10*bc, Tracker('twice': 2*pde))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.frontend._term_args import as_nets, as_points, check_arity
from jno.frontend._terms_expr import REDUCTIONS as REDUCTIONS
from jno.frontend._terms_expr import BalancerGroup, Expr, Term, Tracker, Weight
from jno.frontend._terms_expr import Const as Const
from jno.frontend._terms_expr import _Op as _Op
from jno.nnx._dtype import default_float
from jno.ops import boundary
from jno.train.network import Network

__all__ = [
    "Data",
    "Expr",
    "Residual",
    "Term",
    "Tracker",
    "Weight",
    "balance",
    "data",
    "neumann",
    "residual",
    "robin",
]


class Residual(Term):
    """``reduce(fn(*nets, x))`` over the points ``x`` of the step; see :func:`residual`."""

    kind = "residual"

    def __init__(self, fn: Callable, points: Any, nets: Sequence[Network], name, reduce):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        check_arity(fn, len(nets) + 1)
        self.fn = fn
        super().__init__(nets, (as_points(points, "points"),), name, reduce)

    def values(self, modules: Sequence[nnx.Module], x: jax.Array) -> jax.Array:
        r = jnp.asarray(self.fn(*(net.view(m) for net, m in zip(self.nets, modules)), x))
        n = x.shape[0]
        if r.ndim == 2 and r.shape == (n, n) and n > 1:
            raise ValueError(
                f"term {self.name!r} has values of shape {r.shape} on {n} points: an (n, 1) "
                "array was broadcast against an (n,) one (e.g. u(x) - g(x) with u(x) of shape "
                "(n, 1)); use u(x)[:, 0] or g(x)[:, None], or .reshape(-1) if (n, n) is meant"
            )
        return r


class Data(Term):
    """``reduce(net(x) - y)``: a supervised term on measured data; see :func:`data`.

    Example:
        >>> import numpy as np
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> d = data(net, np.zeros((4, 1)), np.ones(4))
        >>> float(d.evaluate([net.module], *d.sources))  # (0 - 1) ** 2
        1.0
    """

    kind = "data"

    def __init__(self, net: Network, x: Any, y: Any, name, reduce):
        x = as_points(x, "x", array_only=True)
        y = np.asarray(y, dtype=default_float())
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != x.shape[0] or not np.isfinite(y).all():
            raise ValueError(
                f"y must be a finite array of shape (n,) or (n, k) with n={x.shape[0]} rows "
                f"like x, got shape {np.shape(y)}"
            )
        out = nnx.eval_shape(
            lambda m, x: m(x), net.module, jax.ShapeDtypeStruct(x.shape, default_float())
        )
        shape = tuple(out.shape) + ((1,) if len(out.shape) == 1 else ())
        if shape != y.shape:
            raise ValueError(f"y has shape {y.shape} but the network maps x to {tuple(out.shape)}")
        super().__init__((net,), (x, y), name, reduce)

    def values(self, modules: Sequence[nnx.Module], x: jax.Array, y: jax.Array) -> jax.Array:
        pred = modules[0](x)
        return pred.reshape(y.shape) - y


def residual(
    fn: Callable[..., Any],
    points: Any,
    *,
    nets: Network | Sequence[Network],
    name: str | None = None,
    reduce: str = "mse",
) -> Residual:
    """A residual term: ``mean(fn(*nets, x) ** 2)`` over the points ``x`` of each step.

    Args:
        fn: ``fn(u, x)`` for one network, ``fn(a, b, x)`` for two, ...; receives the
            wrapped Flax modules and the ``(n, d)`` points, returns ``(n,)`` or ``(n, k)``
            residual values (``(n,)`` and ``(n, 1)`` mean the same).
        points: A ``PointSet`` (``Box(...).interior(n)``, resampled each step if built
            with ``resample=True``) or a fixed ``(n, d)`` array.
        nets: The network(s) ``fn`` uses (``jno.nn(module)``), in argument order.
        name: Name of the term in logs (``loss/<name>``, ``weight/<name>``).
        reduce: ``"mse"`` (mean square), ``"mae"`` (mean absolute value) or ``"mean"``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> a = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), name="a")
        >>> b = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(1)), name="b")
        >>> r = residual(lambda a, b, x: a(x) - b(x), jnp.ones((4, 1)), nets=(a, b), name="ab")
        >>> r.name, len(r.nets), r.reduce
        ('ab', 2, 'mse')
    """
    return Residual(fn, points, as_nets(nets), name, reduce)


def neumann(
    net: Network,
    points: Any,
    normals: Any,
    value: Any = None,
    *,
    output: int | str | None = None,
    name: str | None = None,
    reduce: str = "mse",
) -> Residual:
    """A Neumann term: ``mean((du/dn - g) ** 2)`` over the points of each step.

    Args:
        net: The network (``jno.nn(module)``).
        points: A ``PointSet`` (e.g. ``shape.boundary(n, parts="holes")``) or an array.
        normals: ``normals(x) -> (n, d)`` outward unit normals at the step's points
            (``shape.normal``), or an ``(n, d)`` array for fixed points.
        value: ``g``: a function of the points, a number, or None for zero flux.
        output: the output (index or field name) of a network with several.
        name, reduce: as for :func:`residual` (default name ``"neumann"``).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
        >>> wall = neumann(net, jnp.ones((4, 2)), lambda x: x / jnp.linalg.norm(x, axis=1)[:, None])
        >>> wall.name, wall.kind
        ('neumann', 'residual')
    """

    def fn(u: Any, x: jax.Array) -> jax.Array:
        return boundary.neumann(u, x, _normals_at(normals, x), value, output=output)

    return Residual(fn, points, as_nets(net), name or "neumann", reduce)


def robin(
    net: Network,
    points: Any,
    normals: Any,
    *,
    alpha: float,
    beta: float,
    value: Any = None,
    output: int | str | None = None,
    name: str | None = None,
    reduce: str = "mse",
) -> Residual:
    """A Robin term: ``mean((alpha u + beta du/dn - g) ** 2)`` over each step's points.

    Args:
        net, points, normals, value, output, reduce: as for :func:`neumann`.
        alpha, beta: the coefficients (finite, not both zero).
        name: the term's name (default ``"robin"``).
    """
    alpha, beta = boundary.robin_coefficients(alpha, beta)

    def fn(u: Any, x: jax.Array) -> jax.Array:
        n = _normals_at(normals, x)
        return boundary.robin(u, x, n, alpha=alpha, beta=beta, value=value, output=output)

    return Residual(fn, points, as_nets(net), name or "robin", reduce)


def _normals_at(normals: Any, x: jax.Array) -> jax.Array:
    return normals(x) if callable(normals) else jnp.asarray(normals, x.dtype)


def data(net: Network, x: Any, y: Any, *, name: str | None = None, reduce: str = "mse") -> Data:
    """A supervised term on measured data: ``mean((net(x) - y) ** 2)``.

    Args:
        net: The network (``jno.nn(module)``).
        x: Inputs, an ``(n, d)`` array.
        y: Measured outputs, ``(n,)`` or ``(n, k)`` matching ``net(x)``.
        name: Name in logs (default ``"data"``).
        reduce: ``"mse"``, ``"mae"`` or ``"mean"``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> d = data(net, jnp.ones((5, 1)), jnp.zeros(5), name="obs")
        >>> d.name, d.sources[1].shape
        ('obs', (5, 1))
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a jno.nn(module) network, got {type(net).__name__}")
    return Data(net, x, y, name, reduce)


def balance(module: nnx.Module, terms: Sequence[Expr]) -> tuple[Weight, ...]:
    """One weight placeholder per term, computed by ``module`` from the terms' values.

    ``module`` is any balancer (``jno.nnx.SoftAdapt(2)``, ...): inside the step of
    ``jno.core`` it is called once per step with the vector of the terms' current values
    and its output gives the weights. The ``jno.fn.adaptive`` factories call this.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> from jno.nnx.balancers import SoftAdapt
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> pde = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="pde")
        >>> bc = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="bc")
        >>> w_pde, w_bc = balance(SoftAdapt(2), [pde, bc])
        >>> w_pde * pde + w_bc * bc
        w_pde*pde+w_bc*bc
    """
    if isinstance(terms, Expr) or not isinstance(terms, list | tuple) or not terms:
        raise TypeError(f"terms must be a non-empty list of terms, got {terms!r}")
    for t in terms:
        if not isinstance(t, Expr):
            raise TypeError(f"terms must hold terms or expressions of terms, got {t!r}")
    if not (isinstance(module, nnx.Module) and callable(module)):
        raise TypeError(f"module must be a balancer nnx.Module, got {module!r}")
    expected = getattr(module, "num_losses", len(terms))
    if expected != len(terms):
        raise ValueError(f"the balancer has num_losses={expected} but got {len(terms)} terms")
    return BalancerGroup(module, tuple(terms)).weights
