"""The hooks a :class:`~jno.train.trainer.Trainer` subclass overrides, with their defaults.

``losses`` (required) gives the named scalar losses; ``residuals`` (optional) gives the
per-point residuals behind them, which :class:`~jno.nnx.balancers.ntk.NTKBalancer` and
residual-adaptive points need; ``weigh`` turns the loss vector into weights (the
balancer by default). :class:`TrainerHooks` holds no state: the trainer runs these hooks
inside the compiled step through its :class:`~jno.train.term_book.TermBook`, which
checks what they return.

Example:
    >>> import jax.numpy as jnp
    >>> class Square(TrainerHooks):
    ...     def losses(self, net, batch):
    ...         return {"data": jnp.mean(batch["x"] ** 2)}
    >>> hooks = Square()
    >>> float(hooks.losses(None, {"x": jnp.ones((3, 1))})["data"])
    1.0
    >>> hooks.weigh(None, jnp.array([2.0, 3.0]), None).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.train.term_gradients import TermSources, call_balancer

__all__ = ["TrainerHooks"]


class TrainerHooks:
    """The overridable hooks of a trainer: :meth:`losses`, :meth:`residuals`, :meth:`weigh`;
    and :meth:`causal_loss` for the losses, on the trainer's :meth:`component`."""

    #: Each entry of a residual depends on its own point only (true for the row-wise
    #: networks of ``jno.nnx`` and the default ``jno.ops``): NTK diagonals then come from
    #: per-point gradients. Set it to False in a subclass whose residuals mix points.
    pointwise_residuals: bool = True

    def losses(self, net: Any, batch: Mapping[str, jax.Array]) -> Mapping[str, jax.Array]:
        """Named scalar losses of ``net`` on this step's ``batch``; override this.

        Args:
            net: The wrapped module (a tuple of modules when the trainer has several).
            batch: ``{name: (n, d) points}`` for every point set.

        Returns:
            ``{term name: scalar}``; the same names, in the same order, every step.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override losses(self, net, batch) -> dict of scalars"
        )

    def residuals(self, net: Any, batch: Mapping[str, jax.Array]) -> Mapping[str, Any]:
        """Per-point residuals behind each loss; override it for NTK weighting.

        :class:`~jno.nnx.balancers.ntk.NTKBalancer` calls it: the NTK diagonal of a term
        is ``||d r(x_p) / d params||^2`` for each entry ``r(x_p)`` of its residual; so do
        residual-adaptive point sets (:mod:`jno.resampling`). The packaged problems
        (:mod:`jno.problems`) implement it.

        Returns:
            ``{term name: (n,) residual}`` (a tuple of arrays for a term whose loss adds
            several mean squares) for every loss name of :meth:`losses`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override residuals(self, net, batch) -> "
            "{term: per-point residual} to use a balancer that needs NTK diagonals or "
            "residual-adaptive points"
        )

    def weigh(
        self, balancer: nnx.Module | None, losses: jax.Array, sources: TermSources | None
    ) -> jax.Array:
        """The ``(N,)`` weights of the loss vector ``losses``; override to weigh otherwise.

        The default asks the balancer (its live module inside the step) through the
        one dispatch of balancer kinds (:func:`~jno.train.term_gradients.call_balancer`),
        or returns ones without a balancer. ``jno.core`` overrides it to evaluate its
        weight placeholders. Values passed to ``track`` here are logged too.

        Args:
            balancer: The live balancer module, or None.
            losses: The loss vector, in the order of ``term_names``.
            sources: The step and the per-term gradients or NTK diagonals the balancers
                need (:class:`~jno.train.term_gradients.TermSources`); None outside the
                compiled step.
        """
        if balancer is None:
            return jnp.ones_like(losses)
        if sources is None:
            return balancer(losses)
        return call_balancer(balancer, losses, sources)

    def component(self, name: str) -> nnx.Module | None:
        """The stateful loss component in slot ``name``; None here (no components)."""
        return None

    @property
    def causal(self) -> nnx.Module | None:
        """The causal weights (the component in slot ``"causal"``), or None."""
        return self.component("causal")

    def causal_loss(self, residual: jax.Array, t: jax.Array, t_min: float, t_max: float):
        """Mean square of ``residual``, causally weighted in time when the trainer has
        ``causal=CausalWeights(...)`` (the component in slot ``"causal"``).

        Call it in :meth:`losses` for a time-dependent residual: with causal weights the
        points are split into time chunks of ``[t_min, t_max]`` by their time ``t`` and
        chunk ``k`` weighs ``exp(-epsilon * sum_{j<k} L_j)`` (see
        :class:`~jno.nnx.balancers.causal.CausalWeights`); without, it is
        ``mean(residual**2)``.

        Args:
            residual: ``(n,)`` or ``(n, 1)`` residual at the points.
            t: ``(n,)`` time of each point.
            t_min: Start of the time interval.
            t_max: End of the time interval.
        """
        causal = self.causal
        if causal is None:
            return jnp.mean(jnp.square(jnp.reshape(residual, (-1,))))
        return causal.loss(residual, t, t_min, t_max)

    def evaluate(self, state: Any) -> dict[str, float]:
        """Host-side metrics of a step state (``jno.train.StepState``), logged with the
        losses at every logged step; override to add some (``Problem`` adds the error of
        each field against its reference, ``error/<field>``). None here."""
        return {}

    @classmethod
    def defines_residuals(cls) -> bool:
        """Whether this class overrides :meth:`residuals`."""
        return cls.residuals is not TrainerHooks.residuals
