"""The step hooks of :class:`jno.Crux`: term values, weights and residuals.

:class:`CruxStepHooks` implements the public hooks of
:class:`~jno.train.trainer.Trainer` (``losses``, ``residuals``, ``weigh``, and
``track`` for the trackers) by evaluating the planned terms of a crux: every distinct
term once, every balancer group once on its inputs, then the coefficient of each term.
It reads the plan that ``Crux.__init__`` builds (``terms``, ``tracked``, ``groups`` and
the private name, source and coefficient tables).

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> from jno.frontend.crux import Crux
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> a = net.residual(lambda u, x: u(x) - 1, jnp.ones((2, 1)), name="a")
    >>> crux = Crux([3 * a], progress=False)
    >>> losses = crux.losses((net.module,), {"a": jnp.ones((2, 1))})
    >>> list(losses), bool(losses["a"] == crux.eval(a))
    (['a'], True)
    >>> crux.weigh(None, jnp.stack(list(losses.values())), None).tolist()
    [3.0]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jno.frontend._algebra import evaluate
from jno.frontend.terms import Term
from jno.nnx._dtype import default_float
from jno.ops import share_derivatives
from jno.train.term_gradients import BalancerNeeds, TermSources, call_balancer

__all__ = ["CruxStepHooks"]


class CruxStepHooks:
    """The per-step evaluation of a crux's terms, balancers and trackers (a mixin)."""

    def _term_values(self, modules, batch, terms) -> dict[int, jax.Array]:
        # All terms in one shared run (the engine runs losses() in one already; eval()
        # does not): a network's derivatives at one point set are propagated once for
        # every term that uses them.
        return share_derivatives(self._term_values_of)(modules, batch, terms)

    def _term_values_of(self, modules, batch, terms) -> dict[int, jax.Array]:
        values = {}
        for t in terms:
            mods = [modules[self._net_index[id(n)]] for n in t.nets]
            keys = self._source_keys[id(t)]
            weights = self.point_weights(keys[0])  # a RAR-D buffer: its live points
            values[id(t)] = t.evaluate(mods, *(batch[k] for k in keys), weights=weights)
        return values

    def losses(self, net, batch):
        """Every term's loss by name; the trackers of plain terms go to :meth:`track`."""
        modules = net if isinstance(net, tuple) else (net,)
        values = self._term_values(modules, batch, (*self.terms, *self.tracked))
        for name, expr, weighted in self._trackers:
            if not weighted:
                self.track(name, evaluate(expr, values))
        return {self._names[id(t)]: values[id(t)] for t in self.terms}

    def _group_ntk(self, group, sources):
        """The NTK diagonals of a group's terms (NTK weighting balances plain terms)."""
        index = {id(t): i for i, t in enumerate(self.terms)}
        if not all(isinstance(e, Term) and id(e) in index for e in group.inputs):
            raise ValueError(
                f"{type(group.module).__name__} needs NTK diagonals, so it balances plain "
                f"terms, got {self._group_inputs[self.groups.index(group)]}"
            )
        return TermSources(sources.step, ntk=[sources.ntk[index[id(e)]] for e in group.inputs])

    def residuals(self, net, batch):
        """The pointwise values of every term (the residuals behind mean-square terms)."""
        modules = net if isinstance(net, tuple) else (net,)
        out = {}
        for t in self.terms:
            mods = [modules[self._net_index[id(n)]] for n in t.nets]
            out[self._names[id(t)]] = t.values(mods, *(batch[k] for k in self._source_keys[id(t)]))
        return out

    def weigh(self, balancer, losses, sources):
        """The coefficient of each term: its weight placeholders evaluated, each balancer
        group run once on its inputs; weighted trackers go to :meth:`track`."""
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
        coefs = jnp.stack([jnp.asarray(evaluate(c, env), default_float()) for c in self._coefs])
        for name, expr, weighted in self._trackers:
            if weighted:
                self.track(name, evaluate(expr, env))
        return coefs
