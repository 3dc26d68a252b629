"""The term plan of a :class:`jno.Crux`, and its evaluation inside the step.

:class:`CruxPlan` reads the loss expressions and trackers given to ``jno.core``: which
terms form the loss vector and which only feed trackers, their names, the balancer
groups in the order they run, the coefficient of each term, the networks, and the point
sets (one per distinct source). Inside the compiled step it evaluates every distinct
term once (:meth:`CruxPlan.losses`), every balancer group once on its inputs, then the
coefficient of each term (:meth:`CruxPlan.weigh`); the crux's hooks call these.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> a = net.residual(lambda u, x: u(x) - 1, jnp.ones((2, 1)), name="a")
    >>> b = net.residual(lambda u, x: u(x), jnp.ones((3, 1)))
    >>> plan = CruxPlan([3 * a + b], [], None)
    >>> [plan.names[id(t)] for t in plan.terms], list(plan.points), plan.nets == (net,)
    (['a', 'residual'], ['a', 'residual'], True)
    >>> plan.weigh(None, jnp.array([1.0, 1.0]), None, track=print).tolist()
    [3.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jno.frontend._algebra import add, evaluate, linear_form, order_groups
from jno.frontend._terms_expr import default_tracker_name, label, walk
from jno.frontend.terms import BalancerGroup, Const, Expr, Term, Tracker, Weight
from jno.nnx._dtype import default_float
from jno.ops import share_derivatives
from jno.train.term_gradients import BalancerNeeds, TermSources, call_balancer

__all__ = ["CruxPlan"]


class CruxPlan:
    """The terms, names, balancer groups, coefficients, networks and points of a crux.

    Args:
        losses: The loss expressions (their sum is the total loss).
        trackers: The trackers (logged, adding nothing to the loss).
        points: ``{term name: PointSet or array}`` replacing those terms' points, or None.

    Attributes:
        terms: The terms of the loss vector, in order.
        tracked: The terms evaluated only for trackers.
        names: ``{id(term): name}`` of every term.
        groups: The balancer groups, in the order they run.
        group_inputs: The labels of each group's inputs.
        coefs: The coefficient expression of each term of :attr:`terms`.
        trackers: ``(name, expression, weighted)`` of each tracker.
        nets: The networks the terms use, in order of appearance.
        net_index: ``{id(network): index in nets}``.
        points: The point sets by name.
        source_keys: ``{id(term): names of its point sets}``.
    """

    def __init__(
        self, losses: list[Expr], trackers: list[Tracker], points: Mapping[str, Any] | None
    ):
        self._plan(losses, trackers)
        self.source_keys = self._name_points(points)

    def _plan(self, losses: list[Expr], trackers: list[Tracker]) -> None:
        def terms_of(exprs):
            out = {}
            for e in exprs:
                for n in walk(e):
                    if isinstance(n, Term):
                        out.setdefault(id(n), n)
            return list(out.values())

        groups: dict[int, BalancerGroup] = {}
        pending = [*losses, *(t.expr for t in trackers)]
        while pending:
            for n in walk(pending.pop(0)):
                if isinstance(n, Weight) and id(n.group) not in groups:
                    groups[id(n.group)] = n.group
                    pending.extend(n.group.inputs)
        weighted = [t for t in trackers if any(isinstance(n, Weight) for n in walk(t.expr))]
        vector = terms_of(
            [*losses, *(e for g in groups.values() for e in g.inputs), *(t.expr for t in weighted)]
        )
        tracked = [t for t in terms_of(t.expr for t in trackers) if t not in vector]
        self.names = self._name_terms([*vector, *tracked])
        self.groups = order_groups(list(groups.values()), self.names)
        self.group_inputs = [[label(e, self.names) for e in g.inputs] for g in self.groups]
        self.terms, self.tracked = tuple(vector), tuple(tracked)

        coefs: dict[int, list] = {id(t): [t, None] for t in vector}
        for e in losses:
            part, const = linear_form(e, self.names)
            if const is not None:
                raise ValueError(
                    f"the loss entry {label(e, self.names)} has a part without a term "
                    f"({label(const, self.names)}): it would add a constant with no gradient; "
                    "multiply weights with terms (w * term) or log them with .tracker()"
                )
            for k, (_, c) in part.items():
                coefs[k][1] = add(coefs[k][1], c)
        self.coefs = [Const(0.0) if c is None else c for _, c in coefs.values()]

        self.trackers: list[tuple[str, Expr, bool]] = []
        seen: set[str] = set()
        for t in trackers:
            name = t.name or default_tracker_name(t.expr, self.names)
            if name in seen:
                raise ValueError(f"two trackers are named {name!r}: pass .tracker(name=...)")
            seen.add(name)
            self.trackers.append((name, t.expr, t in weighted))
        self.nets = tuple({id(n): n for t in (*vector, *tracked) for n in t.nets}.values())
        self.net_index = {id(n): i for i, n in enumerate(self.nets)}

    @staticmethod
    def _name_terms(terms: list[Term]) -> dict[int, str]:
        names: dict[int, str] = {}
        used = {t.name for t in terms if t.name is not None}
        for t in terms:
            if t.name is not None:
                if any(o.name == t.name and o is not t for o in terms):
                    raise ValueError(
                        f"two different terms are named {t.name!r}: give each term its own name="
                    )
                names[id(t)] = t.name
                continue
            name, k = t.kind, 0
            while name in used:
                k += 1
                name = f"{t.kind}_{k}"
            used.add(name)
            names[id(t)] = name
        return names

    def _name_points(self, override: Mapping[str, Any] | None) -> dict[int, tuple[str, ...]]:
        points: dict[str, Any] = {}
        by_source: dict[int, str] = {}
        keys: dict[int, tuple[str, ...]] = {}
        for t in (*self.terms, *self.tracked):
            name = self.names[id(t)]
            tk = []
            for j, src in enumerate(t.sources):
                if j == 0 and override is not None and name in override:
                    src = override[name]
                if id(src) not in by_source:
                    key = name if j == 0 else f"{name}/{'y' if j == 1 else j}"
                    while key in points:  # a term may be named like another's targets
                        key += "_"
                    by_source[id(src)] = key
                    points[key] = src
                tk.append(by_source[id(src)])
            keys[id(t)] = tuple(tk)
        unknown = sorted(
            set(override or {}) - {self.names[id(t)] for t in self.terms + self.tracked}
        )
        if unknown:
            raise ValueError(f"points names no term of this crux: {unknown}")
        self.points = points
        return keys

    # ------------------------------------------------------------- in the step
    def _term_values(self, modules, batch, terms, point_weights) -> dict[int, jax.Array]:
        # All terms in one shared run (the engine runs losses() in one already; eval()
        # does not): a network's derivatives at one point set are propagated once for
        # every term that uses them.
        def values_of(modules, batch):
            values = {}
            for t in terms:
                mods = [modules[self.net_index[id(n)]] for n in t.nets]
                keys = self.source_keys[id(t)]
                weights = point_weights(keys[0])  # a RAR-D buffer: its live points
                values[id(t)] = t.evaluate(mods, *(batch[k] for k in keys), weights=weights)
            return values

        return share_derivatives(values_of)(modules, batch)

    def losses(
        self,
        net: Any,
        batch: Mapping[str, jax.Array],
        track: Callable[[str, Any], None],
        point_weights: Callable[[str], jax.Array | None],
    ) -> dict[str, jax.Array]:
        """Every term's loss by name; the trackers of plain terms go to ``track``;
        ``point_weights(name)`` weighs the points of set ``name`` (None: equal)."""
        modules = net if isinstance(net, tuple) else (net,)
        values = self._term_values(modules, batch, (*self.terms, *self.tracked), point_weights)
        for name, expr, weighted in self.trackers:
            if not weighted:
                track(name, evaluate(expr, values))
        return {self.names[id(t)]: values[id(t)] for t in self.terms}

    def _group_ntk(self, group, sources):
        """The NTK diagonals of a group's terms (NTK weighting balances plain terms)."""
        index = {id(t): i for i, t in enumerate(self.terms)}
        if not all(isinstance(e, Term) and id(e) in index for e in group.inputs):
            raise ValueError(
                f"{type(group.module).__name__} needs NTK diagonals, so it balances plain "
                f"terms, got {self.group_inputs[self.groups.index(group)]}"
            )
        return TermSources(sources.step, ntk=[sources.ntk[index[id(e)]] for e in group.inputs])

    def residuals(self, net: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The pointwise values of every term (the residuals behind mean-square terms)."""
        modules = net if isinstance(net, tuple) else (net,)
        out = {}
        for t in self.terms:
            mods = [modules[self.net_index[id(n)]] for n in t.nets]
            out[self.names[id(t)]] = t.values(mods, *(batch[k] for k in self.source_keys[id(t)]))
        return out

    def weigh(
        self,
        balancer: Any,
        losses: jax.Array,
        sources: TermSources | None,
        track: Callable[[str, Any], None],
    ) -> jax.Array:
        """The coefficient of each term: its weight placeholders evaluated, each balancer
        group run once on its inputs; weighted trackers go to ``track``."""
        env = {id(t): losses[i] for i, t in enumerate(self.terms)}
        for index, group in enumerate(self.groups):

            def inputs_of(term_losses, group=group, env=env):
                scope = {**env, **{id(t): term_losses[i] for i, t in enumerate(self.terms)}}
                return jnp.stack(
                    [jnp.asarray(evaluate(e, scope), default_float()) for e in group.inputs]
                )

            inputs = inputs_of(losses)
            module = balancer.items[index]
            needs = BalancerNeeds.of(module)
            if sources is None or not needs.any:
                weights = balancer(index, inputs)
            elif needs.ntk:
                weights = call_balancer(module, inputs, self._group_ntk(group, sources))
            else:
                # Gradients of the group's inputs: the chain rule through the expressions.
                jacobian = jax.jacfwd(inputs_of)(losses)
                weights = call_balancer(module, inputs, sources, input_jacobian=jacobian)
            env.update((id(w), weights[j]) for j, w in enumerate(group.weights))
        coefs = jnp.stack([jnp.asarray(evaluate(c, env), default_float()) for c in self.coefs])
        for name, expr, weighted in self.trackers:
            if weighted:
                track(name, evaluate(expr, env))
        return coefs
