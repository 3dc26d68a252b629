"""Poisson 2-D: ``-lap u = f`` on the unit square, exact ``u = sin(pi x) sin(pi y)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno import ops
from jno.domain import Box
from jno.nnx.networks.constraints import Constrained
from jno.problems.base import Problem, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["Poisson2D"]


class Poisson2D(Problem):
    """``-lap u = 2 pi^2 sin(pi x) sin(pi y)`` on ``[0, 1]^2``, ``u = 0`` on the boundary.

    Exact solution ``u = sin(pi x) sin(pi y)``. Losses: ``"pde"`` (mean square of
    ``-lap u - f`` on the ``"interior"`` points) and ``"bc"`` (mean square of ``u - 0``
    on the ``"boundary"`` points). The evaluation grid is 101 x 101.

    Args:
        net: the network; see :class:`~jno.problems.base.Problem` for the other keywords.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.problems import Poisson2D
        >>> t = Poisson2D.default(hidden=[8], progress=False)
        >>> x = jnp.array([[0.5, 0.5]])
        >>> t.reference(x).tolist(), round(float(t.source(x)[0]), 4)
        ([1.0], 19.7392)
    """

    domain = Box([0.0, 0.0], [1.0, 1.0])
    point_sets = ("interior", "boundary")
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(qn_steps=10_000, exact=True),
        "soap": FirstOrderRecipe(),
    }

    def reference(self, x: Any) -> jax.Array:
        """``sin(pi x) sin(pi y)``."""
        x = jnp.asarray(x)
        return jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])

    def source(self, x: Any) -> jax.Array:
        """``f = -lap u = 2 pi^2 u``."""
        return 2.0 * jnp.pi**2 * self.reference(x)

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = x (1 - x) y (1 - y) N``: the zero boundary values hold exactly."""
        return Constrained.dirichlet(
            module, lambda x: x[:, 0] * (1.0 - x[:, 0]) * x[:, 1] * (1.0 - x[:, 1])
        )

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: -lap u - f`` on ``interior``, ``bc: u - u_exact`` on ``boundary``."""
        xi, xb = batch["interior"], batch["boundary"]
        pde = -ops.laplacian(u, xi) - self.source(xi)
        bc = values(u, xb) - self.reference(xb)
        return {"pde": pde, "bc": bc}
