"""The term algebra of ``jno.core``: residual and data terms, weight placeholders, trackers.

A *term* is a named scalar loss of one or more networks on a set of points: the mean
square (or another reduction) of a residual ``fn(u, x)``. Terms add, subtract and scale
by numbers; a *weight placeholder* (returned by the balancer factories of
``jno.fn.adaptive``) multiplies them. Nothing is evaluated here: an expression only
records what to compute, and :func:`jno.core.core` compiles the whole list into one
training step, where the weights are computed on the device every step.

``x.tracker(name=None)`` logs ``x`` every step under ``tracker/<name>`` and adds nothing
to the loss.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> from jno.terms import residual
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> x = jnp.linspace(0, 1, 8)[:, None]
    >>> pde = residual(lambda u, x: u(x) - x, x, nets=net, name="pde")
    >>> bc = net.residual(lambda u, x: u(x), jnp.zeros((1, 1)), name="bc")
    >>> loss = pde + 10 * bc
    >>> loss, (2 * pde).tracker("twice")
    (pde+10*bc, Tracker('twice': 2*pde))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno._term_args import as_nets, as_points, check_arity, check_name
from jno.train.network import Network

__all__ = ["Data", "Expr", "Residual", "Term", "Tracker", "Weight", "balance", "data", "residual"]

REDUCTIONS = ("mse", "mae", "mean")


def _outside(expr: Expr) -> TypeError:
    kind = "weight placeholder" if isinstance(expr, Weight) else "term expression"
    return TypeError(
        f"{expr!r} is a {kind}: it has no value outside the training step of jno.core. "
        "Combine terms and weights with +, - and * (numbers scale with Python floats), pass "
        "the list to jno.core([...]) and log values with .tracker(); evaluate a trained "
        "term with crux.eval(term)"
    )


class Expr:
    """An expression of terms, weight placeholders and numbers (records, never computes).

    Supports ``+``, ``-``, ``*`` and ``/`` with other expressions and with real numbers.
    Converting one to a number or an array (``float(w)``, ``jnp.asarray(w)``, ``if w``)
    raises a ``TypeError``: values exist only inside the compiled step of ``jno.core``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> pde = residual(lambda u, x: u(x), jnp.ones((3, 1)), nets=net, name="pde")
        >>> (w,) = balance(jno.nnx.SoftAdapt(1), [pde])
        >>> 0.5 * (w + 1) * pde - pde / 4
        0.5*(w_pde+1)*pde-pde/4
    """

    __array_ufunc__ = None  # numpy scalars defer to the reflected operators below

    def __add__(self, other: Any) -> Expr:
        return _Op("add", (self, _wrap(other, "+")))

    def __radd__(self, other: Any) -> Expr:
        return _Op("add", (_wrap(other, "+"), self))

    def __sub__(self, other: Any) -> Expr:
        return _Op("add", (self, _Op("neg", (_wrap(other, "-"),))))

    def __rsub__(self, other: Any) -> Expr:
        return _Op("add", (_wrap(other, "-"), _Op("neg", (self,))))

    def __neg__(self) -> Expr:
        return _Op("neg", (self,))

    def __pos__(self) -> Expr:
        return self

    def __mul__(self, other: Any) -> Expr:
        return _Op("mul", (self, _wrap(other, "*")))

    def __rmul__(self, other: Any) -> Expr:
        return _Op("mul", (_wrap(other, "*"), self))

    def __truediv__(self, other: Any) -> Expr:
        return _Op("div", (self, _wrap(other, "/")))

    def __rtruediv__(self, other: Any) -> Expr:
        return _Op("div", (_wrap(other, "/"), self))

    def tracker(self, name: str | None = None) -> Tracker:
        """Logs this expression every step under ``tracker/<name>``; adds nothing to the loss.

        Args:
            name: The tag suffix. Defaults to the term's name for a term and ``w_<term>``
                for a weight placeholder; required for any other expression.
        """
        return Tracker(self, name)

    def __repr__(self) -> str:
        from jno._algebra import label  # the algebra module imports this one

        return label(self, {})

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise _outside(self)

    __float__ = __int__ = __index__ = __complex__ = __bool__ = _refuse
    __array__ = __jax_array__ = __iter__ = __len__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = object.__hash__  # identity: the same term object is evaluated once


class Const(Expr):
    """A real number inside an expression."""

    def __init__(self, value: float):
        self.value = float(value)


class _Op(Expr):
    """``add``, ``mul``, ``div`` (two arguments) or ``neg`` (one)."""

    def __init__(self, op: str, args: tuple[Expr, ...]):
        self.op, self.args = op, args


def _wrap(other: Any, op: str) -> Expr:
    if isinstance(other, Expr):
        return other
    if isinstance(other, Tracker):
        raise TypeError(
            f"cannot use {other!r} with '{op}': a tracker only logs its expression and adds "
            "nothing to the loss; combine the expression itself and track the result"
        )
    if isinstance(other, bool | np.bool_) or not isinstance(
        other, int | float | np.number | np.ndarray | jax.Array
    ):
        raise TypeError(
            f"terms combine with '{op}' only with terms, weights and real numbers, got "
            f"{type(other).__name__} {other!r}"
        )
    if isinstance(other, jax.core.Tracer) or np.ndim(other) != 0:
        raise TypeError(
            f"terms combine with '{op}' only with real numbers (a concrete scalar), got "
            f"{type(other).__name__} of shape {np.shape(other)}"
        )
    value = float(np.asarray(other))
    if not math.isfinite(value):
        raise ValueError(f"a number combined with a term must be finite, got {value!r}")
    return Const(value)


class Term(Expr):
    """A named scalar loss of networks on points (base class of residual and data terms).

    Attributes:
        name: The term's name (None: ``jno.core`` names it after its kind).
        nets: The networks it depends on, in the order ``fn`` receives them.
        sources: The point sets / arrays whose points of the step it reads.
        reduce: ``"mse"``, ``"mae"`` or ``"mean"``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> pde = residual(lambda u, x: u(x), jnp.ones((3, 1)), nets=net, name="pde")
        >>> float(pde.evaluate([net.module], jnp.zeros((3, 1))))  # mean(bias ** 2)
        0.0
    """

    kind = "term"

    def __init__(self, nets: Sequence[Network], sources: tuple, name: str | None, reduce: str):
        self.nets = tuple(nets)
        self.sources = sources
        self.name = None if name is None else check_name(name)
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.reduce = reduce

    def values(self, modules: Sequence[nnx.Module], *arrays: jax.Array) -> jax.Array:
        """The pointwise values that :attr:`reduce` turns into the term (override)."""
        raise NotImplementedError

    def evaluate(self, modules: Sequence[nnx.Module], *arrays: jax.Array) -> jax.Array:
        """The float32 scalar value of the term for ``modules`` on ``arrays``."""
        r = jnp.asarray(self.values(modules, *arrays))
        if jnp.iscomplexobj(r) and self.reduce == "mean":
            raise ValueError(f"term {self.name!r}: reduce='mean' needs real values")
        if self.reduce == "mse":
            out = jnp.mean(jnp.abs(r) ** 2) if jnp.iscomplexobj(r) else jnp.mean(r**2)
        elif self.reduce == "mae":
            out = jnp.mean(jnp.abs(r))
        else:
            out = jnp.mean(r)
        return out.astype(jnp.float32)


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
        r = jnp.asarray(self.fn(*modules, x))
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
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != x.shape[0] or not np.isfinite(y).all():
            raise ValueError(
                f"y must be a finite array of shape (n,) or (n, k) with n={x.shape[0]} rows "
                f"like x, got shape {np.shape(y)}"
            )
        out = nnx.eval_shape(
            lambda m, x: m(x), net.module, jax.ShapeDtypeStruct(x.shape, jnp.float32)
        )
        shape = tuple(out.shape) + ((1,) if len(out.shape) == 1 else ())
        if shape != y.shape:
            raise ValueError(f"y has shape {y.shape} but the network maps x to {tuple(out.shape)}")
        super().__init__((net,), (x, y), name, reduce)

    def values(self, modules: Sequence[nnx.Module], x: jax.Array, y: jax.Array) -> jax.Array:
        pred = modules[0](x)
        return pred.reshape(y.shape) - y


class Weight(Expr):
    """The weight a balancer gives to input ``index`` of its list, recomputed every step.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> pde = residual(lambda u, x: u(x), jnp.ones((3, 1)), nets=net, name="pde")
        >>> w_pde, w_2 = balance(jno.nnx.RLW(2), [pde, 2 * pde])
        >>> w_pde.term is pde, w_2.index, w_2
        (True, 1, w_(pde))
    """

    def __init__(self, group: BalancerGroup, index: int):
        self.group, self.index = group, index

    @property
    def term(self) -> Expr:
        """The expression this weight belongs to."""
        return self.group.inputs[self.index]


class BalancerGroup:
    """One balancer module over a list of expressions, and its weight placeholders."""

    def __init__(self, module: nnx.Module, inputs: tuple[Expr, ...]):
        self.module, self.inputs = module, inputs
        self.weights = tuple(Weight(self, i) for i in range(len(inputs)))

    def __repr__(self) -> str:
        return f"{type(self.module).__name__}({list(self.inputs)})"


class Tracker:
    """Logs an expression every step under ``tracker/<name>``; adds nothing to the loss.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> pde = residual(lambda u, x: u(x), jnp.ones((3, 1)), nets=net, name="pde")
        >>> pde.tracker(), (3 * pde).tracker("triple")
        (Tracker('pde': pde), Tracker('triple': 3*pde))
    """

    def __init__(self, expr: Expr, name: str | None = None):
        if not isinstance(expr, Expr):
            raise TypeError(f"only terms, weights and their combinations are tracked, got {expr!r}")
        if name is None and not isinstance(expr, Term | Weight):
            raise ValueError(
                f"name is required to track the expression {expr!r}: pass "
                ".tracker(name=...) (terms and weight placeholders have default names)"
            )
        self.expr = expr
        self.name = None if name is None else check_name(name)

    def __repr__(self) -> str:
        from jno._algebra import default_tracker_name

        return f"Tracker({self.name or default_tracker_name(self.expr, {})!r}: {self.expr!r})"


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
