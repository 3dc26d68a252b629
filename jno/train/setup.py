"""Set-up of a :class:`~jno.train.trainer.Trainer`: points, state split, term
discovery, the residual-adaptive plan, and the point sets as trained on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._dtype import default_float
from jno.resampling import ResidualAdaptivePoints
from jno.train._plotting import pyplot, save_figure
from jno.train.hooks import LossHooksMixin
from jno.train.mesh import data_sharding
from jno.train.term_gradients import TermSources
from jno.train.validation import net_name


class SetupMixin:
    """Draws the fixed point sets, splits the networks, finds the loss and tracker names;
    shows the point sets (:meth:`fixed_points`, :meth:`plot_points`)."""

    def _fixed_points(self) -> dict[str, jax.Array]:
        if self._fixed is None:
            key = jax.random.fold_in(self._base_key, 0)
            fixed = {}
            for index, (name, ps) in enumerate(self.points.items()):
                if isinstance(ps, jax.Array | np.ndarray):
                    x = jnp.asarray(ps, default_float())
                elif ps.resample:
                    continue
                else:
                    x = jnp.asarray(ps.sample(jax.random.fold_in(key, index)), default_float())
                fixed[name] = jax.device_put(x, data_sharding(self.mesh, x.shape[0]))
            self._fixed = fixed
        return self._fixed

    def _split_nets(self):
        graphdefs, params, rest = [], [], []
        for net in self.nets:
            gd, p, r = nnx.split(net.module, nnx.Param, ...)
            graphdefs.append(gd)
            params.append(p)
            rest.append(r)
        return graphdefs, tuple(params), tuple(rest)

    def _discover(self, graphdefs, params, rest) -> None:
        """Finds the loss and tracker names by abstract evaluation (no compilation)."""
        fixed = self._fixed_points()
        batch = {}
        for name, ps in self.points.items():
            if name in fixed:
                batch[name] = jax.ShapeDtypeStruct(fixed[name].shape, fixed[name].dtype)
            else:
                batch[name] = jax.eval_shape(ps.sample, self._base_key)

        order: dict[str, tuple[str, ...]] = {}
        bal_gd, bal_state = (None, None) if self.balancer is None else nnx.split(self.balancer)
        comp_gds, comp_states = self.components.graphdefs(), self.components.states()

        def evaluate(params, rest, batch, bal_state, comp_states):
            modules = [nnx.merge(gd, p, r) for gd, p, r in zip(graphdefs, params, rest)]
            live = self.components.live(comp_gds, comp_states)
            losses, trackers = self._terms(modules, batch, live)
            trackers = {**trackers, **self.components.trackers(live)}
            # eval_shape returns dicts with sorted keys; keep the user's order.
            order["losses"], order["trackers"] = tuple(losses), tuple(trackers)
            # The weight-dependent trackers of _weigh are logged too: find their names.
            vector = jnp.stack([losses[name] for name in order["losses"]])
            bal = None if bal_gd is None else nnx.merge(bal_gd, bal_state)
            sources = TermSources.stand_in(vector.shape[0])
            order["weight_trackers"] = tuple(self._weigh(bal, vector, sources)[1])
            return losses, trackers

        self._term_names = None
        try:
            jax.eval_shape(evaluate, params, rest, batch, bal_state, comp_states)
        except (ValueError, TypeError, NotImplementedError) as err:
            mismatch = self._point_dimension_mismatch(batch)
            if mismatch:
                # A likely cause, not a certain one (a set may hold data targets too).
                first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise ValueError(
                    f"evaluating the losses failed ({first_line}); possibly because {mismatch}"
                ) from err
            raise
        self._term_names = order["losses"]
        self._tracker_names = order["trackers"] + tuple(
            n for n in order["weight_trackers"] if n not in order["trackers"]
        )
        if self.balancer is not None:
            expected = getattr(self.balancer, "num_losses", None)
            if expected is not None and expected != len(self._term_names):
                raise ValueError(
                    f"balancer num_losses={expected} but losses() returns "
                    f"{len(self._term_names)} terms {list(self._term_names)}"
                )

    def _point_dimension_mismatch(self, batch: Mapping[str, Any]) -> str:
        problems = []
        for net in self.nets:
            expected = getattr(net.module, "in_features", None)
            if expected is None:
                continue
            for name, x in batch.items():
                if len(x.shape) != 2 or x.shape[1] != expected:
                    problems.append(
                        f"points {name!r} have shape {tuple(x.shape)} but the network "
                        f"{net_name(net, self.nets)} expects in_features={expected}"
                    )
        return "; ".join(problems)

    def _adaptive_plan(self) -> tuple[tuple[str, str, str], ...]:
        plan = []
        if self._adaptive_slots and type(self).residuals is LossHooksMixin.residuals:
            raise NotImplementedError(
                f"points {list(self._adaptive_slots)} are residual-adaptive: "
                f"{type(self).__name__} must override residuals(self, net, batch) -> "
                "{term: per-point residual} for them to follow the residual"
            )
        for name, slot in self._adaptive_slots.items():
            term = self.points[name].term
            if term is None and name in self.term_names:
                term = name
            if term not in self.term_names:
                raise ValueError(
                    f"points {name!r} are residual-adaptive: give the loss term whose "
                    f"residual moves them, term= one of {list(self.term_names)}, got {term!r}"
                )
            plan.append((name, slot, term))
        return tuple(plan)

    def fixed_points(self) -> dict[str, jax.Array]:
        """The point sets that stay the same every step, as the arrays trained on.

        Arrays given in ``points`` and point sets with ``resample=False`` (drawn once,
        from the seed), by name; resampled sets are not included.
        """
        return dict(self._fixed_points())

    @property
    def sampling_key(self) -> jax.Array:
        """The PRNG key of this trainer's point sampling (from ``seed``)."""
        return self._base_key

    def plot_points(self, name: str, path: str) -> Any:
        """A scatter of the points of set ``name`` as they are now (first two coordinates)
        into ``path``; for a residual-adaptive set (:mod:`jno.resampling`), where its
        points have moved to. Returns the path written.

        Train up to a step and call it to see the points at that step, e.g. gathered at
        a shock: ``trainer.fit(until=5000); trainer.plot_points("interior", "p.png")``.
        """
        if name not in self.points:
            raise KeyError(f"no point set {name!r}; the sets are {list(self.points)}")
        ps = self.points[name]
        if isinstance(ps, jax.Array | np.ndarray):
            pts = np.asarray(ps)
        elif isinstance(ps, ResidualAdaptivePoints):
            pts = np.asarray(ps.points[...])
        else:
            pts = np.asarray(ps.sample(jax.random.fold_in(self._base_key, self.step)))
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5, 4))
        y = pts[:, 1] if pts.shape[1] > 1 else np.zeros(pts.shape[0])
        ax.scatter(pts[:, 0], y, s=2)
        ax.set_xlabel("x0")
        if pts.shape[1] > 1:
            ax.set_ylabel("x1")
        ax.set_title(f"points {name!r} at step {self.step} ({pts.shape[0]} points)")
        return save_figure(fig, path)
