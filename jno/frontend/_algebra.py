"""The algebra behind ``jno.core``: evaluating and linearising term expressions.

:func:`linear_form` writes a loss entry as ``sum(coefficient * term)``, where each
coefficient is an expression of numbers and weight placeholders only, and rejects
entries that are not linear in the terms. :func:`evaluate` computes an expression from
the values of its terms and weights (inside the compiled step). Naming an expression
(:func:`~jno.frontend._terms_expr.label`) lives with the expression nodes.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> from jno.frontend._algebra import linear_form
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> a = net.residual(lambda u, x: u(x), jnp.ones((2, 1)), name="a")
    >>> b = net.residual(lambda u, x: u(x) - 1, jnp.ones((2, 1)), name="b")
    >>> coefs, const = linear_form(2 * (a + b) - b / 4, {})
    >>> [(t.name, c.value) for t, c in coefs.values()], const
    ([('a', 2.0), ('b', 1.75)], None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.frontend._terms_expr import (
    BalancerGroup,
    Const,
    Expr,
    Term,
    Weight,
    _Op,
    label,
    walk,
)
from jno.nnx._dtype import default_float

__all__ = ["BalancerSet", "add", "evaluate", "linear_form", "order_groups"]


def evaluate(expr: Expr, env: dict[int, jax.Array]) -> jax.Array:
    """The value of ``expr`` given ``env``: ``id(term or weight) -> value``."""
    if isinstance(expr, Const):
        return jnp.asarray(expr.value, default_float())
    if not isinstance(expr, _Op):
        return env[id(expr)]
    v = [evaluate(a, env) for a in expr.args]
    if expr.op == "neg":
        return -v[0]
    if expr.op == "add":
        return v[0] + v[1]
    if expr.op == "mul":
        return v[0] * v[1]
    return v[0] / v[1]


_ONE = Const(1.0)


# -------------------------------------------------------------------- linear form
def add(a: Expr | None, b: Expr | None) -> Expr | None:
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value + b.value)
    return _Op("add", (a, b))


def _mul(a: Expr | None, b: Expr | None) -> Expr | None:
    if a is None or b is None:
        return None
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value * b.value)
    if a is _ONE or (isinstance(a, Const) and a.value == 1.0):
        return b
    if b is _ONE or (isinstance(b, Const) and b.value == 1.0):
        return a
    return _Op("mul", (a, b))


def _neg(a: Expr | None) -> Expr | None:
    if a is None:
        return None
    return Const(-a.value) if isinstance(a, Const) else _Op("neg", (a,))


def _div(a: Expr | None, b: Expr) -> Expr | None:
    if isinstance(b, Const):
        return _mul(a, Const(1.0 / b.value))
    return None if a is None else _Op("div", (a, b))


def linear_form(expr: Expr, names: dict[int, str]) -> tuple[dict[int, list], Expr | None]:
    """``({id(term): [term, coefficient]}, constant)`` with ``expr == sum(c * term) + constant``.

    Raises:
        ValueError: ``expr`` multiplies or divides a term by a term (not linear).
    """
    if isinstance(expr, Term):
        return {id(expr): [expr, _ONE]}, None
    if not isinstance(expr, _Op):
        return {}, expr
    parts = [linear_form(a, names) for a in expr.args]
    if expr.op == "neg":
        coefs, const = parts[0]
        return {k: [t, _neg(c)] for k, (t, c) in coefs.items()}, _neg(const)
    (ca, ka), (cb, kb) = parts
    if expr.op == "add":
        out = {k: list(v) for k, v in ca.items()}
        for k, (t, c) in cb.items():
            out[k] = [t, add(out[k][1], c)] if k in out else [t, c]
        return out, add(ka, kb)
    if cb and (ca or expr.op == "div"):
        a, b = (label(x, names) for x in expr.args)
        what = "divides by a term" if expr.op == "div" else "multiplies two terms"
        raise ValueError(
            f"{label(expr, names)} {what} ({a} and {b}): a loss entry of jno.core must be "
            "linear in the terms, with numbers and weights as coefficients; log such an "
            "expression with .tracker(name=...) instead"
        )
    if expr.op == "div":
        if isinstance(kb, Const) and kb.value == 0.0:
            raise ValueError(f"{label(expr, names)} divides by zero")
        return {k: [t, _div(c, kb)] for k, (t, c) in ca.items()}, _div(ka, kb)
    if not ca:
        return {k: [t, _mul(ka, c)] for k, (t, c) in cb.items()}, _mul(ka, kb)
    return {k: [t, _mul(c, kb)] for k, (t, c) in ca.items()}, _mul(ka, kb)


# -------------------------------------------------------------------- balancer set
class BalancerSet(nnx.Module):
    """The balancer modules of a crux, in the order they run each step.

    ``balancers(i, values)`` calls balancer ``i``; the trainer keeps, checkpoints and
    restores their state together.
    """

    def __init__(self, modules: Sequence[nnx.Module], inputs: Sequence[Sequence[str]]):
        self.items = nnx.List(list(modules))
        self.inputs = tuple(tuple(i) for i in inputs)

    def __call__(self, index: int, values: jax.Array) -> jax.Array:
        return self.items[index](values)

    def config(self) -> list[dict[str, Any]]:
        out = []
        for module, inputs in zip(self.items, self.inputs):
            cfg = module.config() if callable(getattr(module, "config", None)) else {}
            out.append({"class": type(module).__name__, **cfg, "terms": list(inputs)})
        return out


def order_groups(groups: list[BalancerGroup], names: dict[int, str]) -> list[BalancerGroup]:
    """Groups sorted so that each runs after the groups whose weights its inputs use."""
    deps = {
        id(g): {id(n.group) for e in g.inputs for n in walk(e) if isinstance(n, Weight)}
        for g in groups
    }
    ordered, done = [], set()
    while len(ordered) < len(groups):
        ready = [g for g in groups if id(g) not in done and deps[id(g)] <= done]
        if not ready:
            stuck = [g for g in groups if id(g) not in done]
            desc = "; ".join(
                f"{type(g.module).__name__} over {[label(e, names) for e in g.inputs]}"
                for g in stuck
            )
            raise ValueError(
                "the balancers cannot be ordered: each of these needs weights of another "
                f"one among them to compute its inputs ({desc}); a balancer's terms may use "
                "the weights of other balancers, never in a cycle"
            )
        ordered.append(ready[0])
        done.add(id(ready[0]))
    return ordered
