"""Per-term gradients and NTK diagonals for the balancers that need them.

The one place where balancer kinds are told apart. The kind is the interface a
balancer implements: a :class:`~jno.nnx.balancers.gradient_base.GradientBalancer` needs per-term
gradients, a :class:`~jno.nnx.balancers.ntk.NTKBasedBalancer` per-term NTK diagonals (each every
``update_every`` steps), and any other module is value-based: its weights come from
the loss values alone. :class:`BalancerNeeds` reads what a step must compute and
:func:`call_balancer` calls a balancer with it.
The compiled step computes the per-term gradients (one forward pass and one backward
pass per term) or the per-point NTK diagonals only on the steps where a
balancer is due, inside ``jax.lax.cond``; on the other steps the balancer is not called
and its last weights are reused.

Example:
    >>> import jax.numpy as jnp
    >>> from jno.nnx.balancers.gradient import GradNormBalancer
    >>> b = GradNormBalancer(2, momentum=0.0, update_every=10)
    >>> grads = jnp.array([[3.0, 4.0], [0.5, 0.0]])           # norms 5 and 0.5
    >>> sources = TermSources(step=jnp.asarray(20), grads=grads)
    >>> call_balancer(b, jnp.array([1.0, 1.0]), sources).tolist()  # 20 % 10 == 0: update
    [0.550000011920929, 5.5]
    >>> later = TermSources(step=jnp.asarray(21), grads=jnp.ones((2, 2)))
    >>> call_balancer(b, jnp.array([1.0, 1.0]), later).tolist()    # not due: last weights
    [0.550000011920929, 5.5]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._dtype import default_float
from jno.nnx.balancers.gradient_base import GradientBalancer, per_term_gradients
from jno.nnx.balancers.ntk import NTKBasedBalancer

__all__ = ["BalancerNeeds", "TermSources", "call_balancer", "stacked_term_gradients"]

_PERIODIC = (GradientBalancer, NTKBasedBalancer)


@dataclasses.dataclass(frozen=True)
class TermSources:
    """What the step offers the balancers besides the losses.

    Attributes:
        step: The training step (traced int32); a balancer updates when
            ``step % update_every == 0``.
        grads: ``(N, P)`` per-term gradients (row ``i``: the flattened gradient of loss
            ``i`` over every trained parameter), or None when no balancer needs them.
            Only meaningful on steps where some balancer is due.
        ntk: ``N`` per-point NTK diagonals (one 1-D array per term), or None.
    """

    step: jax.Array
    grads: jax.Array | None = None
    ntk: Sequence[jax.Array] | None = None

    @classmethod
    def stand_in(cls, num_terms: int) -> TermSources:
        """Zeros of the right structure, for tracing a step's weights abstractly (the
        tracker names of ``Trainer._weigh``), not for computing them."""
        return cls(
            jnp.zeros((), jnp.int32),
            grads=jnp.zeros((num_terms, 1), default_float()),
            ntk=[jnp.zeros((1,), default_float())] * num_terms,
        )


@dataclasses.dataclass(frozen=True)
class BalancerNeeds:
    """What the balancers inside a module need besides the loss values.

    Attributes:
        gradients: some balancer is a ``GradientBalancer`` (per-term gradients).
        ntk: some balancer is an ``NTKBasedBalancer`` (per-term NTK diagonals).
        update_everies: the distinct ``update_every`` of those balancers.

    Example:
        >>> from jno.nnx import GradNormBalancer, ReLoBRaLo
        >>> BalancerNeeds.of(GradNormBalancer(2, update_every=10))
        BalancerNeeds(gradients=True, ntk=False, update_everies=(10,))
        >>> BalancerNeeds.of(ReLoBRaLo(2)).any
        False
    """

    gradients: bool = False
    ntk: bool = False
    update_everies: tuple[int, ...] = ()

    @classmethod
    def of(cls, module: nnx.Module | None) -> BalancerNeeds:
        if module is None:
            return cls()
        found = [m for _, m in nnx.iter_graph(module) if isinstance(m, _PERIODIC)]
        return cls(
            gradients=any(isinstance(m, GradientBalancer) for m in found),
            ntk=any(isinstance(m, NTKBasedBalancer) for m in found),
            update_everies=tuple(sorted({int(m.update_every) for m in found})),
        )

    @property
    def any(self) -> bool:
        """Whether per-term gradients or NTK diagonals are needed at all."""
        return self.gradients or self.ntk


def call_balancer(
    balancer: Any,
    losses: jax.Array,
    sources: TermSources,
    input_jacobian: jax.Array | None = None,
) -> jax.Array:
    """The weights of ``balancer`` for the loss vector ``losses``.

    A value-based balancer is simply called. One that needs gradients or NTK diagonals
    is called with them when ``sources.step % balancer.update_every == 0`` and otherwise
    returns its ``last_weights`` without touching its state (``jax.lax.cond``).

    Args:
        balancer: The balancer module.
        losses: Its ``(n,)`` inputs.
        sources: The step and the per-term gradients / NTK diagonals.
        input_jacobian: ``(n, N)`` derivatives of the balancer's inputs with respect to
            the ``N`` term losses when the inputs are expressions of terms (``jno.core``);
            the gradients passed on are then ``input_jacobian @ sources.grads``.
    """
    if not isinstance(balancer, _PERIODIC):
        return balancer(losses)
    graphdef, state = nnx.split(balancer)

    def fresh(state):
        module = nnx.merge(graphdef, state)
        if isinstance(module, GradientBalancer):
            if sources.grads is None:
                raise ValueError(f"{type(balancer).__name__} needs per-term gradients")
            grads = sources.grads
            if input_jacobian is not None:
                grads = input_jacobian @ grads
            weights = module(losses, grads)
        else:
            if sources.ntk is None:
                raise ValueError(f"{type(balancer).__name__} needs per-term NTK diagonals")
            if input_jacobian is not None:
                raise ValueError(
                    f"{type(balancer).__name__} balances terms, not expressions of terms"
                )
            weights = module(losses, list(sources.ntk))
        return weights, nnx.state(module)

    def reuse(state):
        return nnx.merge(graphdef, state).last_weights[...], state

    due = sources.step % balancer.update_every == 0
    weights, state = jax.lax.cond(due, fresh, reuse, state)
    nnx.update(balancer, state)
    return weights


def stacked_term_gradients(vjp_fn: Callable[[jax.Array], Any], num_terms: int) -> jax.Array:
    """``(N, P)`` per-term gradients from the vector-Jacobian product of the loss vector.

    One backward pass per term through the forward pass that ``vjp_fn`` holds
    (``jax.vmap`` over the unit cotangents).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = lambda p: jnp.stack([jnp.sum(p["w"] ** 2), jnp.sum(3 * p["w"])])
        >>> _, vjp = jax.vjp(f, {"w": jnp.array([1.0, 2.0])})
        >>> stacked_term_gradients(vjp, 2).tolist()
        [[2.0, 4.0], [3.0, 3.0]]
    """
    # The loss vector is of the default float dtype (the trainer casts every term to it).
    stacked = jax.vmap(vjp_fn)(jnp.eye(num_terms, dtype=default_float()))
    # In a dict: a bare tuple would be read as one gradient pytree per loss.
    return per_term_gradients({"grads": stacked}, num_terms)
