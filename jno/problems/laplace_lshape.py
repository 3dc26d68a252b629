"""Laplace 2-D on the L-shaped domain: the corner singularity ``r^(2/3) sin(2 theta/3)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno import ops
from jno.domain import Polygon
from jno.nnx.networks.constraints import Constrained
from jno.problems.base import Problem, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["LaplaceLShape2D", "corner_solution"]

#: ``[-1, 1]^2`` less the quadrant ``(0, 1] x [-1, 0)``: the re-entrant corner is at 0.
VERTICES = ((-1.0, -1.0), (0.0, -1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0))


def corner_solution(x: Any) -> jax.Array:
    """``r^(2/3) sin(2 theta / 3)``, ``theta`` in ``[0, 2 pi)`` from the positive x axis:
    harmonic, zero on both edges at the re-entrant corner, its gradient unbounded there."""
    x = jnp.asarray(x)
    r2 = jnp.sum(x**2, axis=1)
    away = r2 > 0
    # At the corner (value 0) both factors take a safe point, so that no derivative
    # there is NaN: r^(2/3) as (r^2)^(1/3), theta of the point (1, 0).
    safe = jnp.where(away[:, None], x, jnp.asarray([1.0, 0.0], x.dtype))
    theta = jnp.mod(jnp.arctan2(safe[:, 1], safe[:, 0]), 2.0 * jnp.pi)
    radial = jnp.where(away, jnp.sum(safe**2, axis=1) ** (1.0 / 3.0), 0.0)
    return radial * jnp.sin(2.0 * theta / 3.0)


def _segment_distance(x: jax.Array, a: np.ndarray, b: np.ndarray) -> jax.Array:
    """The smooth approximate distance to the segment ``ab`` (Sukumar & Srivastava 2022,
    eq. 9): zero on the segment, positive elsewhere, normalised to first order."""
    length = float(np.linalg.norm(b - a))
    centre = (a + b) / 2.0
    d = x - jnp.asarray(a, x.dtype)
    e = jnp.asarray(b - a, x.dtype)
    f = (d[:, 0] * e[1] - d[:, 1] * e[0]) / length
    t = ((length / 2.0) ** 2 - jnp.sum((x - jnp.asarray(centre, x.dtype)) ** 2, axis=1)) / length
    varphi = jnp.sqrt(t**2 + f**4)
    return jnp.sqrt(f**2 + ((varphi - t) / 2.0) ** 2)


def _project(x: jax.Array, a: np.ndarray, b: np.ndarray) -> jax.Array:
    e = jnp.asarray(b - a, x.dtype)
    s = jnp.clip(jnp.sum((x - jnp.asarray(a, x.dtype)) * e, axis=1) / jnp.sum(e * e), 0.0, 1.0)
    return jnp.asarray(a, x.dtype) + s[:, None] * e


def boundary_extension(x: jax.Array) -> jax.Array:
    """The Dirichlet data extended inside by transfinite interpolation over the edges
    (Sukumar & Srivastava 2022, eq. 33 with ``mu = 1``): ``sum_i w_i g(P_i x)``, with
    ``P_i`` the projection on edge ``i`` and ``w_i`` proportional to the product of the
    other edges' distances. It equals the data on every edge and is smooth inside, but
    is not the solution: the network supplies the corner singularity."""
    vertices = np.asarray(VERTICES)
    edges = [(vertices[k], vertices[(k + 1) % len(vertices)]) for k in range(len(vertices))]
    phis = jnp.stack([_segment_distance(x, a, b) for a, b in edges], axis=1)
    data = jnp.stack([corner_solution(_project(x, a, b)) for a, b in edges], axis=1)
    # w_i = prod_{j != i} phi_j / sum_k prod_{j != k} phi_k, written without dividing
    # by a phi that is zero on its edge; at a vertex (two phi zero) the data there.
    m = len(edges)
    others = jnp.stack(
        [jnp.prod(phis[:, [j for j in range(m) if j != k]], axis=1) for k in range(m)], axis=1
    )
    total = jnp.sum(others, axis=1)
    at_vertex = total == 0
    blend = jnp.sum(others * data, axis=1) / jnp.where(at_vertex, 1.0, total)
    nearest = jnp.take_along_axis(data, jnp.argmin(phis, axis=1)[:, None], axis=1)[:, 0]
    return jnp.where(at_vertex, nearest, blend)


class LaplaceLShape2D(Problem):
    """``lap u = 0`` on the L-shaped domain ``[-1, 1]^2`` less ``(0, 1] x [-1, 0)``.

    Exact solution ``u = r^(2/3) sin(2 theta / 3)`` (:func:`corner_solution`): zero on
    the two edges at the re-entrant corner, Dirichlet data from it on the others. Its
    gradient grows like ``r^(-1/3)`` at the corner, which no smooth network matches
    exactly: the hard part of the problem. Losses ``"pde"`` and ``"bc"``; with
    ``default(exact=True)`` (:meth:`exact_conditions`) the data hold exactly and
    ``"bc"`` leaves the loss. The error is measured on the 201 x 201 grid of the square,
    at the points of the L.

    Example:
        >>> from jno.problems import LaplaceLShape2D
        >>> LaplaceLShape2D.default(hidden=[8], progress=False).check()
        ('pde', 'bc')
        >>> LaplaceLShape2D.default(hidden=[8], exact=True, progress=False).check()
        ('pde',)
    """

    domain = Polygon(VERTICES, name="lshape")
    point_sets = ("interior", "boundary")
    default_batch_size = {"interior": 2000, "boundary": 400}
    grid_shape = (201, 201)
    default_hidden = (20, 20, 20)
    #: 3 x 20 tanh MLP, float64, 2 000 Adam steps then 15 000 SSBroyden iterations on
    #: 2 000 residual points redrawn by RAD every 2 000 steps (``benchmarks/domains.py``).
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(
            points=2000, boundary_points=400, adam_steps=2000, qn_steps=15_000, redraw_every=2000
        ),
        "soap": FirstOrderRecipe(),
    }

    def reference(self, x: Any) -> jax.Array:
        """``r^(2/3) sin(2 theta / 3)``."""
        return corner_solution(x)

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = g + phi N``: ``phi`` the L's smooth distance, ``g`` the transfinite
        interpolation of the data (:func:`boundary_extension`)."""
        return Constrained.dirichlet(module, cls.domain.smooth_distance, boundary_extension)

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: lap u`` on ``interior``, ``bc: u - u_exact`` on ``boundary``."""
        xi, xb = batch["interior"], batch["boundary"]
        return {"pde": ops.laplacian(u, xi), "bc": values(u, xb) - self.reference(xb)}
