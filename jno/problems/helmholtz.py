"""Helmholtz 2-D: ``lap u + k^2 u = q`` on ``[-1, 1]^2``, the stiff multi-scale benchmark."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno import ops
from jno.domain import Box
from jno.nnx.networks.constraints import Constrained
from jno.problems.base import Problem, real_parameter, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["Helmholtz2D"]


class Helmholtz2D(Problem):
    """``lap u + k^2 u = q`` on ``[-1, 1]^2`` with exact ``u = sin(a1 pi x) sin(a2 pi y)``.

    The source is ``q = (k^2 - (a1 pi)^2 - (a2 pi)^2) u`` and the boundary values are
    those of the exact solution (zero for integer ``a1``, ``a2``). With the defaults
    ``a1 = 1``, ``a2 = 4``, ``k = 1`` the PDE residual is about ``(4 pi)^2`` times larger
    than the boundary misfit, the classic case where fixed unit weights train the
    boundary badly (Wang, Teng & Perdikaris 2021). Losses: ``"pde"`` on the
    ``"interior"`` points, ``"bc"`` on the ``"boundary"`` points. 101 x 101 grid.

    Args:
        net: the network; see :class:`~jno.problems.base.Problem` for the other keywords.
        a1: frequency of the solution along ``x`` (in units of ``pi``).
        a2: frequency along ``y``.
        k: wave number.

    Raises:
        ValueError: a non-finite ``a1``, ``a2`` or ``k``; a network with the exact
            boundary values (``exact=True``) for a non-integer ``a1`` or ``a2``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.problems import Helmholtz2D
        >>> t = Helmholtz2D.default(hidden=[8], progress=False)
        >>> x = jnp.array([[0.5, 0.125]])                # sin(pi/2) sin(pi/2) = 1
        >>> t.reference(x).tolist(), round(float(t.source(x)[0]), 2)
        ([1.0], -166.78)
    """

    domain = Box([-1.0, -1.0], [1.0, 1.0])
    point_sets = ("interior", "boundary")
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(qn_steps=10_000, exact=True),
        "soap": FirstOrderRecipe(),
    }

    def __init__(self, net: Any, *, a1: float = 1.0, a2: float = 4.0, k: float = 1.0, **kwargs):
        self.a1 = real_parameter("a1", a1)
        self.a2 = real_parameter("a2", a2)
        self.k = real_parameter("k", k)
        super().__init__(net, **kwargs)
        imposed = getattr(self.nets[0].module, "satisfies", ())
        if "bc" in imposed and not (float(self.a1).is_integer() and float(self.a2).is_integer()):
            raise ValueError(
                "the network imposes zero boundary values (exact_conditions), which hold "
                f"for integer a1 and a2 only, got a1={self.a1!r}, a2={self.a2!r}"
            )

    def parameters(self) -> dict[str, Any]:
        return {"a1": self.a1, "a2": self.a2, "k": self.k}

    def reference(self, x: Any) -> jax.Array:
        """``sin(a1 pi x) sin(a2 pi y)``."""
        x = jnp.asarray(x)
        return jnp.sin(self.a1 * jnp.pi * x[:, 0]) * jnp.sin(self.a2 * jnp.pi * x[:, 1])

    def source(self, x: Any) -> jax.Array:
        """``q = (k^2 - (a1 pi)^2 - (a2 pi)^2) u_exact``."""
        factor = self.k**2 - (self.a1 * jnp.pi) ** 2 - (self.a2 * jnp.pi) ** 2
        return factor * self.reference(x)

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = (1 - x^2) (1 - y^2) N``: the boundary values, zero for integer ``a1``
        and ``a2``, hold exactly (``bc`` leaves the losses). A problem with another
        ``a1`` or ``a2`` refuses such a network."""
        return Constrained.dirichlet(module, lambda x: (1.0 - x[:, 0] ** 2) * (1.0 - x[:, 1] ** 2))

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: lap u + k^2 u - q`` on ``interior``, ``bc: u - u_exact`` on ``boundary``."""
        xi, xb = batch["interior"], batch["boundary"]
        pde = ops.laplacian(u, xi) + self.k**2 * values(u, xi) - self.source(xi)
        bc = values(u, xb) - self.reference(xb)
        return {"pde": pde, "bc": bc}
