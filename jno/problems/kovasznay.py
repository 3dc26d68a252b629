"""Kovasznay flow: steady incompressible Navier-Stokes at ``Re = 20``, three fields.

Kovasznay (1948) found the exact solution of the flow behind a two-dimensional grid:
with ``lam = Re / 2 - sqrt(Re^2 / 4 + 4 pi^2)``,

    u = 1 - exp(lam x) cos(2 pi y),
    v = lam / (2 pi) exp(lam x) sin(2 pi y),
    p = (1 - exp(2 lam x)) / 2,

which solves ``(u . grad) u + grad p = (1 / Re) lap u`` and ``div u = 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jno import ops
from jno.domain import Box
from jno.problems._residuals import real_parameter
from jno.problems.base import Problem
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["Kovasznay2D"]


class Kovasznay2D(Problem):
    """Steady Navier-Stokes on ``[-0.5, 1] x [-0.5, 1.5]``, fields ``u``, ``v``, ``p``.

    Losses: ``"pde"`` (the two momentum equations and continuity on the ``"interior"``
    points, their mean squares added) and ``"bc"`` (``u`` and ``v`` against the exact
    solution on the ``"boundary"`` points). The pressure is defined up to a constant:
    it is compared after removing its mean (``zero_mean_fields``). The evaluation grid
    is 101 x 101.

    Args:
        net: the network with outputs ``(u, v, p)``; see
            :class:`~jno.problems.base.Problem` for the other keywords.
        re: the Reynolds number (default 20).

    Example:
        >>> import jax.numpy as jnp
        >>> from jno import ops
        >>> t = Kovasznay2D.default(hidden=[8], progress=False)
        >>> t.fields, t.nets[0].module.out_features
        (('u', 'v', 'p'), 3)
        >>> exact = ops.fields(t.reference, t.fields)
        >>> res = t.residuals(exact, {"interior": jnp.array([[0.2, 0.3]]),
        ...                           "boundary": jnp.array([[-0.5, 0.0]])})
        >>> [float(jnp.max(jnp.abs(r))) < 1e-4 for r in res["pde"]], float(res["bc"][0][0])
        ([True, True, True], 0.0)
    """

    domain = Box([-0.5, -0.5], [1.0, 1.5])
    fields = ("u", "v", "p")
    zero_mean_fields = ("p",)
    point_sets = ("interior", "boundary")
    default_batch_size = {"interior": 1024, "boundary": 256}
    #: 3 x 20 tanh MLP, float64, 2 000 Adam steps then 20 000 SSBroyden iterations on
    #: 2 000 residual points redrawn by RAD every 2 000 steps (``benchmarks/kovasznay.py``).
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(
            points=2000, adam_steps=2000, qn_steps=20_000, redraw_every=2000
        ),
        "soap": FirstOrderRecipe(),
    }

    def __init__(self, net: Any, *, re: float = 20.0, **kwargs: Any):
        self.re = real_parameter("re", re, positive=True)
        super().__init__(net, **kwargs)

    @property
    def lam(self) -> float:
        """``Re / 2 - sqrt(Re^2 / 4 + 4 pi^2)``."""
        return self.re / 2 - (self.re**2 / 4 + 4 * jnp.pi**2) ** 0.5

    def parameters(self) -> dict[str, Any]:
        return {"re": self.re}

    def reference(self, x: Any) -> jax.Array:
        """The exact ``(u, v, p)`` at points ``(n, 2)``, shape ``(n, 3)``."""
        x = jnp.asarray(x)
        lam, e = self.lam, jnp.exp(self.lam * x[:, 0])
        u = 1 - e * jnp.cos(2 * jnp.pi * x[:, 1])
        v = lam / (2 * jnp.pi) * e * jnp.sin(2 * jnp.pi * x[:, 1])
        p = (1 - e**2) / 2
        return jnp.stack([u, v, p], axis=1)

    def residuals(self, U: Any, batch: Mapping[str, jax.Array]) -> dict[str, Any]:
        """``pde``: momentum in x and y and continuity; ``bc``: ``u`` and ``v`` minus
        the exact values. ``U`` is the :class:`~jno.ops.FieldSet` of the network (or
        of the exact solution)."""
        u, v, p = U
        x, xb = batch["interior"], batch["boundary"]
        nu = 1.0 / self.re
        ux, uy = ops.partial(u, x, 0), ops.partial(u, x, 1)
        vx, vy = ops.partial(v, x, 0), ops.partial(v, x, 1)
        uu, vv = u(x), v(x)
        momentum_x = uu * ux + vv * uy + ops.partial(p, x, 0) - nu * ops.laplacian(u, x)
        momentum_y = uu * vx + vv * vy + ops.partial(p, x, 1) - nu * ops.laplacian(v, x)
        exact = self.reference(xb)
        return {
            "pde": (momentum_x, momentum_y, ux + vy),
            "bc": (u(xb) - exact[:, 0], v(xb) - exact[:, 1]),
        }
