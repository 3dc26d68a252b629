"""Expression nodes of :mod:`jno.terms`: the algebra, the term base class, weights, trackers.

An :class:`Expr` records sums, products and quotients of terms, weight placeholders and
numbers; :class:`Term` is the base of the residual and data terms; :class:`Weight` and
:class:`BalancerGroup` hold the placeholders that :func:`jno.terms.balance` returns;
:class:`Tracker` logs an expression; :func:`label` and :func:`default_tracker_name` name
expressions and :func:`walk` visits their nodes. :mod:`jno.terms` re-exports every public
name.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> from jno.frontend.terms import residual
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> pde = residual(lambda u, x: u(x), jnp.ones((3, 1)), nets=net, name="pde")
    >>> isinstance(pde, Term), isinstance(pde - 1, Expr), -pde / 2
    (True, True, -pde/2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.frontend._term_args import check_name
from jno.nnx._checks import check_choice
from jno.nnx._dtype import default_float
from jno.train.network import Network

__all__ = [
    "BalancerGroup",
    "Const",
    "Expr",
    "Term",
    "Tracker",
    "Weight",
    "default_tracker_name",
    "label",
    "walk",
]

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
        >>> from jno.frontend.terms import balance, residual
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
        >>> from jno.frontend.terms import residual
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
        self.reduce = check_choice("reduce", reduce, REDUCTIONS)

    def values(self, modules: Sequence[nnx.Module], *arrays: jax.Array) -> jax.Array:
        """The pointwise values that :attr:`reduce` turns into the term (override)."""
        raise NotImplementedError

    def evaluate(
        self, modules: Sequence[nnx.Module], *arrays: jax.Array, weights: jax.Array | None = None
    ) -> jax.Array:
        """The scalar value (default float dtype) of the term for ``modules`` on ``arrays``.

        ``weights`` ``(n,)`` weigh the points of the mean (a RAR-D buffer's live mask).
        """
        r = jnp.asarray(self.values(modules, *arrays))
        if jnp.iscomplexobj(r) and self.reduce == "mean":
            raise ValueError(f"term {self.name!r}: reduce='mean' needs real values")
        if self.reduce == "mse":
            x = jnp.abs(r) ** 2 if jnp.iscomplexobj(r) else r**2
        elif self.reduce == "mae":
            x = jnp.abs(r)
        else:
            x = r
        if weights is None:
            out = jnp.mean(x)
        else:
            per_point = jnp.mean(jnp.reshape(x, (x.shape[0], -1)), axis=1)
            out = jnp.sum(weights * per_point) / jnp.sum(weights)
        return out.astype(default_float())


class Weight(Expr):
    """The weight a balancer gives to input ``index`` of its list, recomputed every step.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> from jno.frontend.terms import balance, residual
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
        >>> from jno.frontend.terms import residual
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
        return f"Tracker({self.name or default_tracker_name(self.expr, {})!r}: {self.expr!r})"


# -------------------------------------------------------------------- naming
def default_tracker_name(expr: Expr, names: dict[int, str]) -> str:
    """``<term>`` for a term, ``w_<term>`` for a weight placeholder."""
    if isinstance(expr, Weight):
        if not isinstance(expr.term, Term):
            raise ValueError(
                f"the weight of {expr.term!r} has no default name: pass .tracker(name=...)"
            )
        return "w_" + label(expr.term, names)
    return label(expr, names)


def label(expr: Expr, names: dict[int, str]) -> str:
    """A readable form of ``expr`` (``names`` maps ``id(term)`` to the names used)."""
    if isinstance(expr, Term):
        return names.get(id(expr)) or expr.name or f"<{expr.kind}>"
    if isinstance(expr, Weight):
        if isinstance(expr.term, Term):
            return "w_" + label(expr.term, names)
        # Only the term names of a composite input: its weights may refer back here.
        inner = ",".join(label(n, names) for n in walk(expr.term) if isinstance(n, Term))
        return f"w_({inner})"
    if isinstance(expr, Const):
        return f"{expr.value:g}"
    a = expr.args[0]
    if expr.op == "neg":
        return "-" + _wrapped(a, names, ("add",))
    b = expr.args[1]
    if expr.op == "mul":
        return f"{_wrapped(a, names, ('add',))}*{_wrapped(b, names, ('add',))}"
    if expr.op == "div":
        return f"{_wrapped(a, names, ('add',))}/{_wrapped(b, names, ('add', 'mul', 'div'))}"
    if isinstance(b, _Op) and b.op == "neg":
        return f"{label(a, names)}-{_wrapped(b.args[0], names, ('add',))}"
    return f"{label(a, names)}+{label(b, names)}"


def _wrapped(expr: Expr, names: dict[int, str], ops: tuple[str, ...]) -> str:
    text = label(expr, names)
    return f"({text})" if isinstance(expr, _Op) and expr.op in ops else text


def walk(expr: Expr):
    """Every node of ``expr``, depth first, left to right."""
    yield expr
    for arg in getattr(expr, "args", ()):
        yield from walk(arg)
