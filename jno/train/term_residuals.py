"""The per-point residuals of a step's loss terms, for what needs more than the losses.

:class:`TermResiduals` is a part of :class:`~jno.train.step.CompiledStep`. From the
trainer's ``residuals`` hook it builds:

* the NTK diagonal of each term (``||d r(x_p) / d params||^2`` per entry), for
  :class:`~jno.nnx.balancers.ntk.NTKBalancer`;
* the weighted residual vector of the Gauss-Newton optimizers
  (:class:`~jno.optim.LeastSquares`): entries ``sqrt(w_t / (n_t k)) r_t(x_p)`` for
  each term ``t`` of ``n_t`` points, ``k`` columns and weight ``w_t``, so that its
  squared norm is the weighted total ``sum_t w_t mean(r_t^2)`` the trainer minimises;
  and its Jacobian with respect to one optimizer's networks, from per-point gradients
  when each residual entry depends on its own point only
  (``Trainer.pointwise_residuals``): one batched pass, not one pass per entry.

A term whose residual is a tuple (a loss adding several mean squares) contributes each
part. :meth:`TermResiduals.check` refuses, before the first Gauss-Newton step, a
trainer whose losses are not these mean squares (causal weights, weighted point
buffers, or a ``losses`` that is not ``residuals`` squared).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx.balancers.ntk import ntk_diagonal
from jno.train.step_plan import StepPlan
from jno.train.trained import full_params, group_params

__all__ = ["TermResiduals"]


def _rows(batch: Mapping[str, jax.Array], index: jax.Array) -> dict[str, jax.Array]:
    """Row ``index`` of every point set (modulo its length) as a one-point batch."""
    return {k: jax.lax.dynamic_slice_in_dim(v, index % v.shape[0], 1) for k, v in batch.items()}


class TermResiduals:
    """The residuals of a compiled step's terms (a part of
    :class:`~jno.train.step.CompiledStep`).

    Args:
        plan: The step's plan (term names, ``pointwise_residuals``).
        graphdefs: ``nnx.GraphDef`` of each network module.
        residuals_fn: ``(modules, batch) -> {term: residual}``.
    """

    def __init__(
        self, plan: StepPlan, graphdefs: Sequence[Any], residuals_fn: Callable[..., Any] | None
    ):
        self.plan = plan
        self.graphdefs = tuple(graphdefs)
        self.residuals_fn = residuals_fn

    def parts(self, name: str, params: tuple, rest: tuple, batch) -> list[jax.Array]:
        """Term ``name``'s residual as ``(n, width)`` parts."""
        modules = [nnx.merge(g, p, r) for g, p, r in zip(self.graphdefs, params, rest)]
        value = self.residuals_fn(modules, batch)[name]
        parts = value if isinstance(value, tuple) else (value,)
        return [jnp.reshape(part, (part.shape[0], -1)) for part in parts]

    def _widths(self, name: str, params: tuple, rest: tuple, batch) -> list[int]:
        shapes = jax.eval_shape(lambda p: self.parts(name, p, rest, batch), params)
        return [s.shape[1] for s in shapes]

    def _points(self, name: str, params: tuple, rest: tuple, batch) -> int:
        shapes = jax.eval_shape(lambda p: self.parts(name, p, rest, batch), params)
        n = shapes[0].shape[0]
        if any(s.shape[0] != n for s in shapes):
            raise ValueError(f"the parts of residual {name!r} have different lengths")
        return n

    # ------------------------------------------------------------- NTK diagonals
    def ntk_diagonals(self, params: tuple, rest: tuple, batch) -> list[jax.Array]:
        """Per-point NTK diagonal of every term's residual, in the order of the flat
        residual: part by part, point by point."""
        return [self._term_ntk(name, params, rest, batch) for name in self.plan.term_names]

    def _term_ntk(self, name: str, params: tuple, rest: tuple, batch) -> jax.Array:
        def flat(p, batch):
            parts = self.parts(name, p, rest, batch)
            return jnp.concatenate([jnp.reshape(q, (-1,)) for q in parts])

        if not self.plan.pointwise_residuals:
            # Rows interact: the full Jacobian, one backward pass per residual entry.
            return ntk_diagonal(lambda p: flat(p, batch), params)
        n = self._points(name, params, rest, batch)
        # Residual entry p depends on row p of the points only, so its gradient is that
        # of a one-point batch: per-example gradients, vectorised over the points.
        per_point = jax.vmap(lambda i: ntk_diagonal(lambda p: flat(p, _rows(batch, i)), params))(
            jnp.arange(n)
        )
        widths = self._widths(name, params, rest, batch)
        starts = np.cumsum([0, *widths[:-1]])
        return jnp.concatenate(
            [per_point[:, a : a + w].reshape(-1) for a, w in zip(starts, widths)]
        )

    # ------------------------------------------------- the Gauss-Newton vector
    def _entry_scales(self, params, rest, batch, weights: jax.Array) -> list[jax.Array]:
        """Per term, the scale of each entry of a point's row: ``sqrt(w / (n width))``
        for a part of ``width`` columns (its loss is the mean over all its entries)."""
        scales = []
        for j, name in enumerate(self.plan.term_names):
            n = self._points(name, params, rest, batch)
            widths = self._widths(name, params, rest, batch)
            scales.append(
                jnp.concatenate([jnp.full((w,), 1.0 / (n * w)) for w in widths]) * weights[j]
            )
        return [jnp.sqrt(s) for s in scales]

    def vector(self, params: tuple, rest: tuple, batch, weights: jax.Array) -> jax.Array:
        """The weighted residual vector (point-major within each term)."""
        scales = self._entry_scales(params, rest, batch, weights)
        pieces = []
        for scale, name in zip(scales, self.plan.term_names):
            rows = jnp.concatenate(self.parts(name, params, rest, batch), axis=1)
            pieces.append(jnp.reshape(scale.astype(rows.dtype) * rows, (-1,)))
        return jnp.concatenate(pieces)

    def jacobian(self, params: tuple, rest, batch, weights, members: tuple[int, ...]):
        """The Jacobian of :meth:`vector` with respect to the networks ``members``: a
        pytree like :func:`~jno.train.trained.group_params`, each leaf with a leading
        axis of the vector's length (per-point gradients for pointwise residuals)."""
        group = group_params(params, members)

        def vector_of(g):
            return self.vector(full_params(params, members, g), rest, batch, weights)

        if not self.plan.pointwise_residuals:
            return jax.jacrev(vector_of)(group)
        blocks = []
        scales = self._entry_scales(params, rest, batch, weights)
        for scale, name in zip(scales, self.plan.term_names):
            n = self._points(name, params, rest, batch)

            def row(g, i, name=name):
                full = full_params(params, members, g)
                return jnp.concatenate(self.parts(name, full, rest, _rows(batch, i)), axis=1)[0]

            per_point = jax.vmap(lambda i, row=row: jax.jacrev(row)(group, i))(jnp.arange(n))

            def scaled(leaf, scale=scale):
                leaf = scale.astype(leaf.dtype).reshape(1, -1, *([1] * (leaf.ndim - 2))) * leaf
                return jnp.reshape(leaf, (-1, *leaf.shape[2:]))

            blocks.append(jax.tree.map(scaled, per_point))
        return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *blocks)

    def least_squares_args(self, params, rest, batch, weights, members) -> dict[str, Callable]:
        """``residual_fn`` and ``jacobian_fn`` of the networks ``members`` (the others
        held), for a :class:`~jno.optim.LeastSquares` optimizer."""

        def residual_fn(group):
            return self.vector(full_params(params, members, group), rest, batch, weights)

        def jacobian_fn(group):
            return self.jacobian(full_params(params, members, group), rest, batch, weights, members)

        return {"residual_fn": residual_fn, "jacobian_fn": jacobian_fn}

    def check(self, losses: jax.Array, params, rest, batch, owner: str) -> None:
        """Refuse Gauss-Newton steps when the loss vector ``losses`` is not the mean
        squares of the residuals (host side, before the first step)."""
        if self.residuals_fn is None:
            raise ValueError(f"{owner} has no residuals(); a Gauss-Newton optimizer needs them")
        squares = jax.jit(
            lambda p: jnp.stack(
                [
                    sum(jnp.mean(q * q) for q in self.parts(name, p, rest, batch))
                    for name in self.plan.term_names
                ]
            )
        )(params)
        losses, squares = np.asarray(losses, np.float64), np.asarray(squares, np.float64)
        close = np.abs(losses - squares) <= 1e-5 * np.maximum(np.abs(losses), 1e-30) + 1e-12
        if not close.all():
            names = [n for n, c in zip(self.plan.term_names, close) if not c]
            raise ValueError(
                "a Gauss-Newton optimizer minimises the mean squares of residuals(), but on "
                f"{owner} the losses of terms {names} differ from them ({losses[~close].tolist()} "
                f"against {squares[~close].tolist()}): causal weights, a weighted point "
                "buffer, or losses() that are not residuals() squared. Use Adam or a "
                "quasi-Newton optimizer for this trainer."
            )
