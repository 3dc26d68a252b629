"""Poisson 3-D in a cube with a spherical cavity: Dirichlet data on the cube and on the
sphere, a manufactured solution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jno import ops
from jno.domain import Ball, Box
from jno.problems.base import Problem, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["PoissonCavity3D"]


class PoissonCavity3D(Problem):
    """``-lap u = f`` in ``[-1, 1]^3`` less the ball of radius 0.5 at the origin.

    Manufactured solution ``u = cos(x + y) exp(z)``, so ``f = cos(x + y) exp(z)``.
    Dirichlet data ``u`` on the cube's faces and on the sphere (point set
    ``"boundary"``: both, uniform in area). Losses ``"pde"`` and ``"bc"``. The error is
    measured on the 41^3 grid of the cube, at the points outside the ball.

    Example:
        >>> from jno.problems import PoissonCavity3D
        >>> PoissonCavity3D.default(hidden=[8], progress=False).check()
        ('pde', 'bc')
        >>> import math  # the volume, estimated by sampling: 8 - 4/3 pi 0.5^3
        >>> abs(PoissonCavity3D.domain.measure - (8 - 4 / 3 * math.pi / 8)) < 0.02
        True
    """

    domain = Box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], name="cube") - Ball(
        [0.0, 0.0, 0.0], 0.5, name="cavity"
    )
    point_sets = ("interior", "boundary")
    default_batch_size = {"interior": 2000, "boundary": 600}
    grid_shape = (41, 41, 41)
    default_hidden = (20, 20, 20)
    #: 3 x 20 tanh MLP, float64, 1 000 Adam steps then 6 000 SSBroyden iterations on
    #: 2 000 residual points redrawn by RAD every 1 000 steps (``benchmarks/domains.py``).
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(
            points=2000, boundary_points=600, adam_steps=1000, qn_steps=6000, redraw_every=1000
        ),
        "soap": FirstOrderRecipe(),
    }

    def reference(self, x: Any) -> jax.Array:
        """``cos(x + y) exp(z)``."""
        x = jnp.asarray(x)
        return jnp.cos(x[:, 0] + x[:, 1]) * jnp.exp(x[:, 2])

    def source(self, x: Any) -> jax.Array:
        """``f = -lap u = cos(x + y) exp(z)`` (``lap u = (-1 - 1 + 1) u``)."""
        return self.reference(x)

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: -lap u - f`` on ``interior``, ``bc: u - u_exact`` on ``boundary``."""
        xi, xb = batch["interior"], batch["boundary"]
        return {
            "pde": -ops.laplacian(u, xi) - self.source(xi),
            "bc": values(u, xb) - self.reference(xb),
        }
