"""``jno.core(terms) -> Crux``: a :class:`~jno.train.trainer.Trainer` built from terms.

The list given to :func:`core` holds loss expressions (terms, scaled by numbers and
multiplied by weight placeholders, summed) and trackers. The crux finds the networks
and point sets through the terms and compiles one training step that evaluates every
distinct term once, every balancer once (on its terms' current values), forms the
weighted total and applies each network's optimizer, all on the device. The total must
be linear in the terms: the coefficient of each term is built from numbers and weights,
and it is logged as ``weight/<term>``.

Example:
    >>> import jax.numpy as jnp, optax
    >>> from flax import nnx
    >>> import jno
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> _ = net.optimizer(optax.adam(0.1))
    >>> x = jnp.linspace(-1, 1, 16)[:, None]
    >>> fit = net.residual(lambda u, x: u(x)[:, 0] - 2 * x[:, 0], x, name="fit")
    >>> w_fit, = jno.fn.adaptive.softadapt([fit])
    >>> crux = jno.core([w_fit * fit, w_fit.tracker()], log_every=100, progress=False)
    >>> history = crux.solve(300)
    >>> bool(history["loss/fit"][-1] < 1e-4), sorted(k for k in history if "fit" in k)
    (True, ['loss/fit', 'tracker/w_fit', 'weight/fit'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.frontend._algebra import BalancerSet, evaluate
from jno.frontend._crux_plan import CruxPlan
from jno.frontend._terms_expr import label, walk
from jno.frontend.terms import Expr, Term, Tracker, Weight, balance
from jno.nnx._dtype import default_float
from jno.train.history import History
from jno.train.network import Network
from jno.train.trainer import Trainer

__all__ = ["Crux", "core"]


# -------------------------------------------------------------------------- crux
class Crux(Trainer):
    """A :class:`~jno.train.trainer.Trainer` whose losses, weights and trackers are terms.

    Built by :func:`core`; ``solve`` is ``fit``. See the module docstring.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
        >>> b = net.residual(lambda u, x: u(x) - 1, jnp.ones((2, 1)))
        >>> crux = Crux([a, 2 * b, (a * b).tracker("ab")], progress=False)
        >>> crux.term_names, list(crux.points), crux.nets == (net,)
        (('a', 'residual'), ['a', 'residual'], True)

    Attributes:
        terms: The terms of the loss vector (``loss/<name>``, ``weight/<name>``), in order.
        tracked: The terms evaluated only for trackers.
        groups: The balancer groups, in the order they run.
    """

    def __init__(
        self,
        terms: Any,
        *,
        points: Mapping[str, Any] | None = None,
        balancer: nnx.Module | None = None,
        **kwargs: Any,
    ):
        if kwargs.get("causal") is not None:
            raise TypeError(
                "jno.core takes no causal= (its terms are plain mean squares): use a Trainer "
                "subclass whose losses() call self.causal_loss(...)"
            )
        entries = [terms] if isinstance(terms, Expr | Tracker) else terms
        if not isinstance(entries, list | tuple) or not entries:
            raise TypeError(f"terms must be a non-empty list of terms and trackers, got {terms!r}")
        losses, trackers = [], []
        for e in entries:
            if isinstance(e, Tracker):
                if all(e is not t for t in trackers):
                    trackers.append(e)
            elif isinstance(e, Expr):
                losses.append(e)
            else:
                raise TypeError(f"terms must hold terms, expressions and trackers, got {e!r}")
        if not losses:
            raise ValueError("terms has no loss entry (only trackers): there is nothing to train")
        if balancer is not None:
            weights = balance(balancer, losses)
            losses = [w * e for w, e in zip(weights, losses)]
        self.term_plan = plan = CruxPlan(losses, trackers, points)
        self.terms, self.tracked, self.groups = plan.terms, plan.tracked, plan.groups
        modules = [g.module for g in self.groups]
        super().__init__(
            list(plan.nets),
            points=plan.points,
            balancer=BalancerSet(modules, plan.group_inputs) if modules else None,
            **kwargs,
        )
        self.check()  # errors in the terms show at jno.core time; sets term_names

    # ------------------------------------------------------------------ hooks
    def losses(self, net: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """Every term's loss by name (:meth:`CruxPlan.losses`)."""
        return self.term_plan.losses(net, batch, self.track, self.point_weights)

    def residuals(self, net: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The pointwise values of every term (:meth:`CruxPlan.residuals`)."""
        return self.term_plan.residuals(net, batch)

    def weigh(self, balancer: Any, losses: jax.Array, sources: Any) -> jax.Array:
        """The coefficient of each term (:meth:`CruxPlan.weigh`)."""
        return self.term_plan.weigh(balancer, losses, sources, self.track)

    # ------------------------------------------------------------------ public
    def solve(self, steps: int | None = None, *, until: int | None = None) -> History:
        """Runs ``steps`` training steps, or up to step ``until`` (same as :meth:`fit`);
        returns the whole history."""
        return self.fit(steps, until=until)

    def eval(self, target: Expr | Network | Callable[..., Any], points: Any = None) -> jax.Array:
        """Evaluates a term expression, a network or a function of the networks.

        Args:
            target: A term or an expression of terms (no weights): its value on
                ``points`` (default: the term's own points; a dict ``{term name: points}``
                sets them per term, and a data term takes ``(x, y)``). A network:
                ``net(points)``. Any other callable: ``target(*networks, points)`` with the
                networks of this crux in the order of :attr:`nets`.
            points: See ``target``.
        """
        if isinstance(target, Tracker):
            target = target.expr
        if isinstance(target, Network):
            x = jnp.asarray(points, default_float())
            return _jit_on((target,), lambda mods, x: mods[0](x), x)
        if not isinstance(target, Expr):
            if not callable(target):
                raise TypeError(f"target must be a term, a network or a callable, got {target!r}")
            x = jnp.asarray(points, default_float())
            return _jit_on(self.nets, lambda mods, x: target(*mods, x), x)
        nodes = list(walk(target))
        if any(isinstance(n, Weight) for n in nodes):
            raise TypeError(
                f"{label(target, self.term_plan.names)} holds weight placeholders: their "
                "values exist only inside the training step; log them with .tracker() instead"
            )
        terms = list({id(n): n for n in nodes if isinstance(n, Term)}.values())
        nets = tuple({id(n): n for t in terms for n in t.nets}.values())
        index = {id(n): i for i, n in enumerate(nets)}
        arrays = [self._eval_points(t, points) for t in terms]

        def value(mods, arrays):
            values = {
                id(t): t.evaluate([mods[index[id(n)]] for n in t.nets], *a)
                for t, a in zip(terms, arrays)
            }
            return evaluate(target, values)

        return _jit_on(nets, value, arrays)

    def _eval_points(self, term: Term, points: Any) -> list[jax.Array]:
        name = self.term_plan.names.get(id(term), term.name)
        if isinstance(points, Mapping):
            points = points.get(name)
        if points is None:
            if id(term) in self.term_plan.source_keys:
                fixed = self.fixed_points()
                keys = self.term_plan.source_keys[id(term)]
                if all(k in fixed for k in keys):
                    return [fixed[k] for k in keys]
            return [
                jnp.asarray(
                    s if isinstance(s, np.ndarray | jax.Array) else s.sample(self.sampling_key),
                    default_float(),
                )
                for s in term.sources
            ]
        if len(term.sources) > 1:
            if not (isinstance(points, tuple) and len(points) == len(term.sources)):
                raise ValueError(f"term {name!r} takes points as a tuple (x, y), got {points!r}")
            return [jnp.asarray(p, default_float()) for p in points]
        return [jnp.asarray(points, default_float())]


def _jit_on(nets: Sequence[Network], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(modules, *args)`` compiled as one function (not op by op) on the current state."""
    split = [nnx.split(n.module) for n in nets]

    def run(states, *args):
        return fn([nnx.merge(gd, st) for (gd, _), st in zip(split, states)], *args)

    return jax.jit(run)([st for _, st in split], *args)


def core(terms: Any, **kwargs: Any) -> Crux:
    """Builds a :class:`Crux` (a ``Trainer``) from a list of loss terms and trackers.

    Args:
        terms: Loss expressions (``w_pde * pde``, ``pde + 10 * bc``, ...) whose sum is the
            total loss, and trackers (``w_pde.tracker()``), which add nothing to it.
        **kwargs: The keyword arguments of :class:`~jno.train.trainer.Trainer`:
            ``mesh``, ``seed``, ``log_every``, ``logdir``, ``checkpoint_dir``,
            ``checkpoint_every``, ``keep``, ``progress``, ``on_nonfinite``,
            ``steps_per_call``; also ``balancer=`` (a balancer module weighting the loss
            entries, as if each were multiplied by its placeholder) and ``points=``
            (``{term name: PointSet or array}`` replacing those terms' points).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from flax import nnx
        >>> import jno
        >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        >>> _ = net.optimizer(optax.adam(0.05))
        >>> x = jnp.linspace(0, 1, 8)[:, None]
        >>> a = net.residual(lambda u, x: u(x)[:, 0] - 1.0, x, name="a")
        >>> b = net.residual(lambda u, x: u(x)[:, 0] - 2.0, x, name="b")
        >>> crux = core([a + 3 * b], progress=False)
        >>> h = crux.solve(400)
        >>> round(float(crux.eval(net, jnp.ones((1, 1)))[0, 0]), 2), float(h["weight/b"][-1])
        (1.75, 3.0)
    """
    return Crux(terms, **kwargs)
