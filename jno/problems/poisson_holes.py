"""Poisson 2-D on a plate with four holes: Dirichlet data on the outer square, Neumann
data on the holes, a manufactured solution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jno import ops
from jno.domain import Disk, Rectangle
from jno.problems.base import Problem, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["PoissonHoles2D"]

#: The holes: radius 0.2 at (+-0.5, +-0.5).
HOLES = tuple(f"hole{k}" for k in range(4))
_CENTRES = ((-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5))


class PoissonHoles2D(Problem):
    """``-lap u = f`` on ``[-1, 1]^2`` minus four disks of radius 0.2 at ``(+-0.5, +-0.5)``.

    Manufactured solution ``u = sin(pi x) cos(pi y) + x y / 2``, so
    ``f = 2 pi^2 sin(pi x) cos(pi y)``. Dirichlet data ``u`` on the outer square (parts
    ``outer.*``, point set ``"outer"``), Neumann data ``du/dn`` on the four circles
    (``hole0`` ... ``hole3``, point set ``"holes"``; ``n`` points out of the plate, into
    the holes). Losses: ``"pde"``, ``"bc"`` (Dirichlet) and ``"neumann"``. The error is
    measured on the 201 x 201 grid of the square, at the points inside the plate.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.problems import PoissonHoles2D
        >>> t = PoissonHoles2D.default(hidden=[8], progress=False)
        >>> t.check()
        ('pde', 'bc', 'neumann')
        >>> import math  # the area, estimated by sampling: 4 - 4 pi 0.2^2
        >>> abs(PoissonHoles2D.domain.measure - (4 - 4 * math.pi * 0.04)) < 0.01
        True
    """

    domain = Rectangle([-1.0, -1.0], [1.0, 1.0], name="outer") - (
        Disk(_CENTRES[0], 0.2, name=HOLES[0])
        | Disk(_CENTRES[1], 0.2, name=HOLES[1])
        | Disk(_CENTRES[2], 0.2, name=HOLES[2])
        | Disk(_CENTRES[3], 0.2, name=HOLES[3])
    )
    point_sets = ("interior", "outer", "holes")
    boundary_parts = {"outer": "outer", "holes": HOLES}
    default_batch_size = {"interior": 2000, "outer": 256, "holes": 256}
    grid_shape = (201, 201)
    default_hidden = (20, 20, 20)
    #: 3 x 20 tanh MLP, float64, 2 000 Adam steps then 15 000 SSBroyden iterations on
    #: 2 000 residual points redrawn by RAD every 2 000 steps (``benchmarks/domains.py``).
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(
            points=2000, boundary_points=256, adam_steps=2000, qn_steps=15_000, redraw_every=2000
        ),
        "soap": FirstOrderRecipe(),
    }

    def reference(self, x: Any) -> jax.Array:
        """``sin(pi x) cos(pi y) + x y / 2``."""
        x = jnp.asarray(x)
        a, b = x[:, 0], x[:, 1]
        return jnp.sin(jnp.pi * a) * jnp.cos(jnp.pi * b) + 0.5 * a * b

    def reference_gradient(self, x: Any) -> jax.Array:
        """``grad u``, shape ``(n, 2)``."""
        x = jnp.asarray(x)
        a, b = x[:, 0], x[:, 1]
        pa, pb = jnp.pi * a, jnp.pi * b
        da = jnp.pi * jnp.cos(pa) * jnp.cos(pb) + 0.5 * b
        db = -jnp.pi * jnp.sin(pa) * jnp.sin(pb) + 0.5 * a
        return jnp.stack([da, db], axis=1)

    def source(self, x: Any) -> jax.Array:
        """``f = -lap u = 2 pi^2 sin(pi x) cos(pi y)``."""
        x = jnp.asarray(x)
        return 2.0 * jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0]) * jnp.cos(jnp.pi * x[:, 1])

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: -lap u - f``, ``bc: u - u_exact`` on ``outer``, ``neumann: du/dn - g``
        on ``holes``."""
        xi, xo, xh = batch["interior"], batch["outer"], batch["holes"]
        normals = self.domain.normal(xh)
        flux = jnp.sum(self.reference_gradient(xh) * normals, axis=1)
        return {
            "pde": -ops.laplacian(u, xi) - self.source(xi),
            "bc": values(u, xo) - self.reference(xo),
            "neumann": ops.neumann(u, xh, normals, flux),
        }
