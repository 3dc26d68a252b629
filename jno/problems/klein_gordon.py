"""Klein-Gordon 1-D: a nonlinear wave equation in space-time with an exact solution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno import ops
from jno.domain import Box
from jno.nnx._checks import check_int
from jno.nnx.networks.constraints import Constrained
from jno.problems.base import Problem, real_parameter, values

__all__ = ["KleinGordon1D"]

_W = 5.0 * jnp.pi  # time frequency of the exact solution


class KleinGordon1D(Problem):
    """``u_tt + alpha u_xx + beta u + gamma u^power = f`` on ``(x, t)`` in ``[0, 1]^2``.

    Exact solution ``u = x cos(5 pi t) + (x t)^3``; ``f`` follows from it. The defaults
    ``alpha = -1``, ``beta = 0``, ``gamma = 1``, ``power = 3`` give
    ``u_tt - u_xx + u^3 = f`` (Wang, Teng & Perdikaris 2021). Initial conditions
    ``u(x, 0) = x`` and ``u_t(x, 0) = 0``, boundary values ``u(0, t) = 0`` and
    ``u(1, t) = cos(5 pi t) + t^3``, all from the exact solution. Points are ``(x, t)``.

    Losses: ``"pde"`` on ``"interior"``, ``"bc"`` on ``"boundary"`` (``x = 0`` and
    ``x = 1``) and ``"ic"`` on ``"initial"`` (``t = 0``): the mean square of
    ``u - u_exact`` plus that of ``u_t - u_t,exact``. Evaluation grid 101 x 101.

    Args:
        net: the network; see :class:`~jno.problems.base.Problem` for the other keywords.
        alpha: coefficient of ``u_xx``.
        beta: coefficient of ``u``.
        gamma: coefficient of the nonlinear term.
        power: exponent of the nonlinear term (an int >= 1).

    Raises:
        ValueError: a non-finite coefficient, or ``power < 1``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.problems import KleinGordon1D
        >>> t = KleinGordon1D.default(hidden=[8], progress=False)
        >>> t.reference(jnp.array([[1.0, 1.0], [0.5, 0.0]])).tolist()   # cos(5 pi) + 1 = 0
        [0.0, 0.5]
    """

    domain = Box([0.0, 0.0], [1.0, 1.0], time_axis=-1)
    point_sets = ("interior", "boundary", "initial")

    def __init__(
        self,
        net: Any,
        *,
        alpha: float = -1.0,
        beta: float = 0.0,
        gamma: float = 1.0,
        power: int = 3,
        **kwargs: Any,
    ):
        self.alpha = real_parameter("alpha", alpha)
        self.beta = real_parameter("beta", beta)
        self.gamma = real_parameter("gamma", gamma)
        self.power = check_int("power", power, minimum=1)
        super().__init__(net, **kwargs)

    def parameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "power": self.power}

    def reference(self, x: Any) -> jax.Array:
        """``x cos(5 pi t) + (x t)^3``."""
        x = jnp.asarray(x)
        s, t = x[:, 0], x[:, 1]
        return s * jnp.cos(_W * t) + (s * t) ** 3

    def reference_t(self, x: Any) -> jax.Array:
        """``du/dt`` of the exact solution: ``-5 pi x sin(5 pi t) + 3 x^3 t^2``."""
        x = jnp.asarray(x)
        s, t = x[:, 0], x[:, 1]
        return -_W * s * jnp.sin(_W * t) + 3.0 * s**3 * t**2

    def initial_condition(self, x: Any) -> jax.Array:
        """``u(x, 0) = x`` (and ``u_t(x, 0) = 0``)."""
        return jnp.asarray(x)[:, 0]

    def source(self, x: Any) -> jax.Array:
        """``f`` from the exact solution (``u_tt``, ``u_xx`` by hand)."""
        x = jnp.asarray(x)
        s, t = x[:, 0], x[:, 1]
        u = self.reference(x)
        u_tt = -(_W**2) * s * jnp.cos(_W * t) + 6.0 * s**3 * t
        u_xx = 6.0 * s * t**3
        return u_tt + self.alpha * u_xx + self.beta * u + self.gamma * u**self.power

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = x + t^2 N``: both initial conditions (``u = x`` and ``u_t = 0`` at
        ``t = 0``) hold exactly (``ic`` leaves the losses)."""
        return Constrained(module, lambda x: x[:, 1] ** 2, lambda x: x[:, 0], satisfies=("ic",))

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, Any]:
        """``pde``, ``bc: u - u_exact`` and ``ic: (u - u_exact, u_t - u_t,exact)``."""
        xi, xb, x0 = batch["interior"], batch["boundary"], batch["initial"]
        ui = values(u, xi)
        pde = (
            ops.partial2(u, xi, 1, 1)
            + self.alpha * ops.partial2(u, xi, 0, 0)
            + self.beta * ui
            + self.gamma * ui**self.power
            - self.source(xi)
        )
        bc = values(u, xb) - self.reference(xb)
        ic = (values(u, x0) - self.reference(x0), ops.partial(u, x0, 1) - self.reference_t(x0))
        return {"pde": pde, "bc": bc, "ic": ic}
