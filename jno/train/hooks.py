"""The hooks a :class:`~jno.train.trainer.Trainer` subclass overrides, and their checks.

``losses`` (required) gives the named scalar losses; ``residuals`` (optional) gives the
per-point residuals behind them, which :class:`~jno.nnx.ntk.NTKBalancer` needs;
``causal_loss`` is the residual loss with causal weights in time when the trainer has
a :class:`~jno.nnx.causal.CausalWeights`, and the plain mean square otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._dtype import default_float
from jno.nnx._sharing import run_shared
from jno.ops import share_derivatives
from jno.train.term_gradients import TermSources, call_balancer

__all__ = ["LossHooksMixin"]


class LossHooksMixin:
    """The user hooks of a trainer and the step's checked view of them."""

    #: Each entry of a residual depends on its own point only (true for the row-wise
    #: networks of ``jno.nnx`` and the default ``jno.ops``): NTK diagonals then come from
    #: per-point gradients. Set it to False in a subclass whose residuals mix points.
    pointwise_residuals: bool = True

    # ------------------------------------------------------------ user hooks
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

        Only :class:`~jno.nnx.ntk.NTKBalancer` calls it: the NTK diagonal of a term is
        ``||d r(x_p) / d params||^2`` for each entry ``r(x_p)`` of its residual. The
        packaged problems (:mod:`jno.problems`) implement it.

        Returns:
            ``{term name: (n,) residual}`` (a tuple of arrays for a term whose loss adds
            several mean squares) for every loss name of :meth:`losses`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override residuals(self, net, batch) -> "
            "{term: per-point residual} to use a balancer that needs NTK diagonals"
        )

    def causal_loss(self, residual: jax.Array, t: jax.Array, t_min: float, t_max: float):
        """Mean square of ``residual``, causally weighted in time when the trainer has
        ``causal=CausalWeights(...)``.

        Call it in :meth:`losses` for a time-dependent residual: with causal weights the
        points are split into time chunks of ``[t_min, t_max]`` by their time ``t`` and
        chunk ``k`` weighs ``exp(-epsilon * sum_{j<k} L_j)`` (see
        :class:`~jno.nnx.causal.CausalWeights`); without, it is ``mean(residual**2)``.

        Args:
            residual: ``(n,)`` or ``(n, 1)`` residual at the points.
            t: ``(n,)`` time of each point.
            t_min: Start of the time interval.
            t_max: End of the time interval.
        """
        causal = getattr(self, "_live_causal", None)
        if causal is None:
            causal = self.causal
        if causal is None:
            return jnp.mean(jnp.square(jnp.reshape(residual, (-1,))))
        return causal.loss(residual, t, t_min, t_max)

    # ------------------------------------------------------ step internals
    def _terms(
        self,
        modules: Sequence[nnx.Module],
        batch: Mapping[str, jax.Array],
        causal: nnx.Module | None = None,
    ):
        """``(losses, trackers)`` of the networks on a batch, checked, in the default float.

        ``causal`` is the causal-weights module of the step (its state is part of the
        step's carry), used by :meth:`causal_loss` while :meth:`losses` runs.
        """
        self._live_causal = causal
        try:
            nets = modules[0] if self._single else tuple(modules)
            # losses() runs twice (see run_shared); the causal weights update once.
            # A copy: nnx.state holds the live variables.
            saved = None if causal is None else jax.tree.map(lambda a: a, nnx.state(causal))
            restore = None if causal is None else (lambda: nnx.update(causal, saved))
            out = run_shared(self.losses, nets, batch, after_recording=restore)
        finally:
            self._live_causal = None
        if not isinstance(out, Mapping) or not out:
            raise TypeError(f"losses() must return a non-empty dict of scalars, got {out!r}")
        names = tuple(out)
        if self._term_names is not None and names != self._term_names:
            raise ValueError(
                f"losses() returned terms {list(names)}, but earlier steps returned "
                f"{list(self._term_names)}: the terms must be the same every step"
            )
        losses = {}
        for name, value in out.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"loss names must be non-empty strings, got {name!r}")
            value = jnp.asarray(value)
            if value.size != 1:
                raise ValueError(
                    f"loss {name!r} must be a scalar, got shape {value.shape}; "
                    "reduce it, e.g. jnp.mean(residual ** 2)"
                )
            losses[name] = value.reshape(()).astype(default_float())
        trackers = {}
        if causal is not None:
            trackers = {
                "causal_epsilon": causal.epsilon,
                "causal_min_weight": causal.min_weight[...],
            }
        return losses, trackers

    def _residuals(self, modules: Sequence[nnx.Module], batch: Mapping[str, jax.Array]):
        """:meth:`residuals`, checked to cover every loss term."""
        out = share_derivatives(self.residuals)(
            modules[0] if self._single else tuple(modules), batch
        )
        missing = [name for name in self.term_names if name not in out]
        if missing:
            raise ValueError(
                f"residuals() must return a residual for every loss term; missing {missing}"
            )
        return out

    def _weigh(
        self,
        balancer: nnx.Module | None,
        losses: jax.Array,
        sources: TermSources | None = None,
    ):
        """``(weights, trackers)`` of the loss vector: the balancer's, or ones.

        ``sources`` holds the step and the per-term gradients or NTK diagonals that a
        gradient-based balancer needs (see :mod:`jno.train.term_gradients`).
        """
        if balancer is None:
            return jnp.ones_like(losses), {}
        if sources is None:
            return balancer(losses), {}
        return call_balancer(balancer, losses, sources), {}
