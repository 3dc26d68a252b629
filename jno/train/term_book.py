"""The term bookkeeping of a trainer: loss and tracker names, and the checked evaluation
of the user's hooks inside a step.

A :class:`TermBook` is one part of a :class:`~jno.train.trainer.Trainer`. It finds the
names of the loss terms and of the tracked values once, by evaluating the hooks
abstractly (:meth:`TermBook.discover`); inside the compiled step it runs the hooks
(:meth:`TermBook.losses`, :meth:`TermBook.weigh`, :meth:`TermBook.residuals`), checks
what they return, and collects what they pass to :meth:`TermBook.track`. While
``losses`` runs, :meth:`TermBook.live_component` gives the step's live stateful
components.

Example:
    >>> import jax.numpy as jnp
    >>> book = TermBook(single=True)
    >>> def losses(net, batch):
    ...     book.track("peak", jnp.max(batch["x"]))
    ...     return {"data": jnp.mean(batch["x"] ** 2)}
    >>> values, tracked = book.losses(losses, [None], {"x": jnp.arange(4.0)[:, None]})
    >>> float(values["data"]), float(tracked["peak"])  # (0 + 1 + 4 + 9) / 4, max
    (3.5, 3.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._dtype import default_float
from jno.nnx.networks._sharing import run_shared
from jno.ops import share_derivatives
from jno.train.term_gradients import TermSources

__all__ = ["TermBook"]


class TermBook:
    """Loss and tracker names, and the checked hooks of one trainer.

    Args:
        single: The trainer has one network (the hooks get the module, not a tuple).
        views: Per network, what the hooks get for its module (the module itself, or
            its :class:`~jno.ops.FieldSet`); None: the modules.

    Attributes:
        term_names: The loss names in the order of :meth:`losses` (None before
            :meth:`discover`).
        tracker_names: The names of every tracked value (of the losses, the weights
            and the components).
    """

    def __init__(self, single: bool, views: Sequence[Callable[[Any], Any]] | None = None):
        self.single = single
        self.views = None if views is None else tuple(views)
        self.term_names: tuple[str, ...] | None = None
        self.tracker_names: tuple[str, ...] = ()
        self._tracked: dict[str, jax.Array] | None = None
        self._live: dict[str, nnx.Module] | None = None

    def nets(self, modules: Sequence[nnx.Module]) -> Any:
        """The networks as the hooks take them: the module (or its fields), or a tuple."""
        if self.views is not None:
            modules = [view(m) for view, m in zip(self.views, modules)]
        return modules[0] if self.single else tuple(modules)

    # ------------------------------------------------------------- in the hooks
    def track(self, name: str, value: Any) -> None:
        """Records ``value`` (a scalar) under ``name`` while a hook runs; does nothing
        outside one."""
        if self._tracked is None:
            return
        if not isinstance(name, str) or not name:
            raise TypeError(f"tracker names must be non-empty strings, got {name!r}")
        value = jnp.asarray(value)
        if value.size != 1:
            raise ValueError(f"tracker {name!r} must be a scalar, got shape {value.shape}")
        self._tracked[name] = value.reshape(())

    @property
    def in_step(self) -> bool:
        """Whether :meth:`losses` is running (the live components are then known)."""
        return self._live is not None

    def live_component(self, name: str) -> nnx.Module | None:
        """The step's live component in slot ``name`` while :meth:`losses` runs (None
        for an empty slot, or outside a step)."""
        return None if self._live is None else self._live.get(name)

    # ---------------------------------------------------------- running hooks
    def losses(
        self,
        losses_fn: Callable[[Any, Mapping[str, jax.Array]], Mapping[str, Any]],
        modules: Sequence[nnx.Module],
        batch: Mapping[str, jax.Array],
        components: Mapping[str, nnx.Module] | None = None,
    ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """``(losses, trackers)`` of ``losses_fn(nets, batch)``, checked, in the default
        float. ``components`` are the step's live components by slot name: their state
        updates once, though the losses run twice (see
        :func:`~jno.nnx.networks._sharing.run_shared`)."""
        live = dict(components or {})
        self._live = live
        self._tracked = tracked = {}
        try:
            # A copy, since nnx.state holds the live variables.
            saved = {k: jax.tree.map(lambda a: a, nnx.state(m)) for k, m in live.items()}

            def restore():
                for k, m in live.items():
                    nnx.update(m, saved[k])

            def run(nets, batch):
                tracked.clear()  # only the real run's values
                return losses_fn(nets, batch)

            out = run_shared(run, self.nets(modules), batch, after_recording=restore)
        finally:
            self._live = None
            self._tracked = None
        return self._checked(out), tracked

    def _checked(self, out: Any) -> dict[str, jax.Array]:
        if not isinstance(out, Mapping) or not out:
            raise TypeError(f"losses() must return a non-empty dict of scalars, got {out!r}")
        names = tuple(out)
        if self.term_names is not None and names != self.term_names:
            raise ValueError(
                f"losses() returned terms {list(names)}, but earlier steps returned "
                f"{list(self.term_names)}: the terms must be the same every step"
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
        return losses

    def weigh(
        self,
        weigh_fn: Callable[..., jax.Array],
        balancer: nnx.Module | None,
        losses: jax.Array,
        sources: TermSources | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(weights, trackers)``: ``weigh_fn(balancer, losses, sources)`` and the
        values it tracked."""
        self._tracked = tracked = {}
        try:
            weights = weigh_fn(balancer, losses, sources)
        finally:
            self._tracked = None
        return weights, tracked

    def residuals(
        self,
        residuals_fn: Callable[[Any, Mapping[str, jax.Array]], Mapping[str, Any]],
        modules: Sequence[nnx.Module],
        batch: Mapping[str, jax.Array],
    ) -> Mapping[str, Any]:
        """``residuals_fn(nets, batch)`` with derivatives shared, checked to cover every
        loss term."""
        out = share_derivatives(residuals_fn)(self.nets(modules), batch)
        missing = [name for name in self.term_names or () if name not in out]
        if missing:
            raise ValueError(
                f"residuals() must return a residual for every loss term; missing {missing}"
            )
        return out

    # -------------------------------------------------------------- discovery
    def discover(
        self,
        evaluate: Callable[..., tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]],
        *args: Any,
        diagnose: Callable[[], str] = lambda: "",
    ) -> None:
        """Sets :attr:`term_names` and :attr:`tracker_names` from one abstract
        evaluation (no compilation) of ``evaluate(*args) -> (losses, trackers,
        weight_trackers)``; names keep the order the hooks gave them.

        Args:
            evaluate: Runs the hooks on ``args`` (abstract values).
            diagnose: A likely cause of a failed evaluation ("" for none), added to the
                error (e.g. points whose dimension does not fit the network).
        """
        order: dict[str, tuple[str, ...]] = {}

        def names(*args):
            losses, trackers, weight_trackers = evaluate(*args)
            # eval_shape returns dicts with sorted keys; keep the hooks' order.
            order["losses"], order["trackers"] = tuple(losses), tuple(trackers)
            order["weight_trackers"] = tuple(weight_trackers)
            return losses, trackers

        self.term_names = None
        try:
            jax.eval_shape(names, *args)
        except (ValueError, TypeError, NotImplementedError) as err:
            cause = diagnose()
            if cause:
                # A likely cause, not a certain one (a set may hold data targets too).
                first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise ValueError(
                    f"evaluating the losses failed ({first_line}); possibly because {cause}"
                ) from err
            raise
        self.term_names = order["losses"]
        self.tracker_names = order["trackers"] + tuple(
            n for n in order["weight_trackers"] if n not in order["trackers"]
        )
