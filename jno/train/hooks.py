"""The hooks a :class:`~jno.train.trainer.Trainer` subclass overrides, and their checks.

``losses`` (required) gives the named scalar losses; ``residuals`` (optional) gives the
per-point residuals behind them, which :class:`~jno.nnx.balancers.ntk.NTKBalancer` needs;
``causal_loss`` is the residual loss with causal weights in time when the trainer has
a :class:`~jno.nnx.balancers.causal.CausalWeights`, and the plain mean square otherwise;
``component`` gives a stateful loss component to the losses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._dtype import default_float
from jno.nnx.networks._sharing import run_shared
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

        Only :class:`~jno.nnx.balancers.ntk.NTKBalancer` calls it: the NTK diagonal of a term is
        ``||d r(x_p) / d params||^2`` for each entry ``r(x_p)`` of its residual. The
        packaged problems (:mod:`jno.problems`) implement it.

        Returns:
            ``{term name: (n,) residual}`` (a tuple of arrays for a term whose loss adds
            several mean squares) for every loss name of :meth:`losses`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override residuals(self, net, batch) -> "
            "{term: per-point residual} to use a balancer that needs NTK diagonals or "
            "residual-adaptive points"
        )

    def causal_loss(self, residual: jax.Array, t: jax.Array, t_min: float, t_max: float):
        """Mean square of ``residual``, causally weighted in time when the trainer has
        ``causal=CausalWeights(...)``.

        Call it in :meth:`losses` for a time-dependent residual: with causal weights the
        points are split into time chunks of ``[t_min, t_max]`` by their time ``t`` and
        chunk ``k`` weighs ``exp(-epsilon * sum_{j<k} L_j)`` (see
        :class:`~jno.nnx.balancers.causal.CausalWeights`); without, it is ``mean(residual**2)``.

        Args:
            residual: ``(n,)`` or ``(n, 1)`` residual at the points.
            t: ``(n,)`` time of each point.
            t_min: Start of the time interval.
            t_max: End of the time interval.
        """
        causal = self.component("causal")
        if causal is None:
            return jnp.mean(jnp.square(jnp.reshape(residual, (-1,))))
        return causal.loss(residual, t, t_min, t_max)

    def weigh(
        self, balancer: nnx.Module | None, losses: jax.Array, sources: TermSources | None
    ) -> jax.Array:
        """The ``(N,)`` weights of the loss vector ``losses``; override to weigh otherwise.

        The default asks the balancer (its live module inside the step) through the
        one dispatch of balancer kinds (:func:`~jno.train.term_gradients.call_balancer`),
        or returns ones without a balancer. ``jno.core`` overrides it to evaluate its
        weight placeholders. Values passed to :meth:`track` here are logged too.

        Args:
            balancer: The live balancer module, or None.
            losses: The loss vector, in the order of :attr:`term_names`.
            sources: The step and the per-term gradients or NTK diagonals the balancers
                need (:class:`~jno.train.term_gradients.TermSources`); None outside the
                compiled step.
        """
        if balancer is None:
            return jnp.ones_like(losses)
        if sources is None:
            return balancer(losses)
        return call_balancer(balancer, losses, sources)

    def track(self, name: str, value: Any) -> None:
        """Logs ``value`` (a scalar) under ``tracker/<name>`` at every logged step.

        Call it inside :meth:`losses` or :meth:`weigh`: the value is computed in the
        compiled step like the losses and adds nothing to them. Outside a step it does
        nothing.

        Example:
            >>> import jax.numpy as jnp, optax
            >>> from flax import nnx
            >>> import jno
            >>> class Fit(jno.Trainer):
            ...     def losses(self, net, batch):
            ...         r = net(batch["x"])[:, 0] - 1.0
            ...         self.track("max_residual", jnp.max(jnp.abs(r)))
            ...         return {"data": jnp.mean(r**2)}
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> _ = net.optimizer(optax.adam(0.1))
            >>> h = Fit(net, points={"x": jnp.ones((4, 1))}, progress=False).fit(3)
            >>> h["tracker/max_residual"].shape
            (1,)
        """
        tracked = getattr(self, "_tracked", None)
        if tracked is None:
            return
        if not isinstance(name, str) or not name:
            raise TypeError(f"tracker names must be non-empty strings, got {name!r}")
        value = jnp.asarray(value)
        if value.size != 1:
            raise ValueError(f"tracker {name!r} must be a scalar, got shape {value.shape}")
        tracked[name] = value.reshape(())

    def point_weights(self, name: str) -> jax.Array | None:
        """Per-point weights of point set ``name`` for the mean of its loss, or None.

        A :class:`~jno.resampling.RARD` buffer has empty slots: inside :meth:`losses` this
        is its live mask as ``0``/``1`` weights, so that the loss of the set is
        ``sum(w * r**2) / sum(w)``; for every other set it is None (all points count).
        """
        slot = getattr(self, "_adaptive_slots", {}).get(name)
        sampler = None if slot is None else self.component(slot)
        weights = getattr(sampler, "weights", None)
        return weights() if callable(weights) else None

    def component(self, name: str) -> nnx.Module | None:
        """The stateful loss component in slot ``name`` (None when there is none).

        Inside :meth:`losses` during a step this is the step's live module, whose state
        updates are carried to the next step; elsewhere the module the trainer holds.
        """
        live = getattr(self, "_live_components", None)
        if live is not None:
            return live.get(name)
        return self.components.modules.get(name)

    # ------------------------------------------------------ step internals
    def _terms(
        self,
        modules: Sequence[nnx.Module],
        batch: Mapping[str, jax.Array],
        components: Mapping[str, nnx.Module] | None = None,
    ):
        """``(losses, trackers)`` of the networks on a batch, checked, in the default float.

        ``components`` are the live stateful components of the step by slot name (their
        state is part of the step's carry), which :meth:`component` returns while
        :meth:`losses` runs.
        """
        live = dict(components or {})
        self._live_components = live
        self._tracked = tracked = {}
        try:
            nets = modules[0] if self._single else tuple(modules)
            # losses() runs twice (see run_shared): the components must update once, so
            # their state is put back after the recording run. A copy, since nnx.state
            # holds the live variables.
            saved = {k: jax.tree.map(lambda a: a, nnx.state(m)) for k, m in live.items()}

            def restore():
                for k, m in live.items():
                    nnx.update(m, saved[k])

            def run(nets, batch):
                tracked.clear()  # only the real run's values
                return self.losses(nets, batch)

            out = run_shared(run, nets, batch, after_recording=restore)
        finally:
            self._live_components = None
            self._tracked = None
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
        return losses, tracked

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
        """``(weights, trackers)``: :meth:`weigh` and the values it tracked."""
        self._tracked = tracked = {}
        try:
            weights = self.weigh(balancer, losses, sources)
        finally:
            self._tracked = None
        return weights, tracked
