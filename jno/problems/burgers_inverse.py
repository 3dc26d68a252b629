"""Inverse Burgers 1-D: the viscosity ``nu`` learned from samples of the solution.

The forward problem is :class:`~jno.problems.burgers.Burgers1D` (``u(x, 0) = -sin(pi
x)``, ``u(+-1, t) = 0``, ``nu = 0.01 / pi``). Here ``nu`` is unknown: it is a trained
coefficient (``log nu``, so that it stays positive), fitted with the field network to
``data_points`` samples of the Cole-Hopf solution at random points of the domain, with
or without Gaussian noise, and to the PDE residual. No boundary or initial condition
is imposed: the data carry them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno import ops
from jno.nnx._checks import check_int, check_real
from jno.nnx._dtype import default_float
from jno.problems._residuals import real_parameter, values
from jno.problems.base import Problem
from jno.problems.burgers import Burgers1D, cole_hopf, grid_reference
from jno.problems.recipes import QuasiNewtonRecipe

__all__ = ["BurgersInverse1D", "Viscosity"]


class Viscosity(nnx.Module):
    """The unknown viscosity, held as ``log nu`` (an ``nnx.Param``).

    Example:
        >>> round(float(Viscosity(0.05).nu), 6)
        0.05
    """

    def __init__(self, guess: float):
        guess = real_parameter("guess", guess, positive=True)
        self.log_nu = nnx.Param(jnp.log(jnp.asarray(guess, default_float())))

    @property
    def nu(self) -> jax.Array:
        """``exp(log_nu)``."""
        return jnp.exp(self.log_nu[...])


class BurgersInverse1D(Problem):
    """Burgers' equation with unknown ``nu``, learned from samples of its solution.

    Losses: ``"pde"`` (``u_t + u u_x - nu u_xx`` with the trained ``nu``) on the
    ``"interior"`` points and ``"data"`` (``u - u_obs``) on the ``"data"`` samples.
    Errors: the relative L2 error of ``u`` on Burgers1D's 256 x 101 grid, and
    :meth:`nu_error`, the relative error of the learned ``nu`` (logged as
    ``error/nu``).

    Args:
        net: the field network; see :class:`~jno.problems.base.Problem` for the other
            keywords.
        nu: the true viscosity that made the data (default ``0.01 / pi``).
        guess: the initial guess of ``nu`` (default 0.05).
        data_points: number of samples of ``u``.
        noise: standard deviation of the Gaussian noise on the samples, relative to the
            standard deviation of the samples (0.01: 1 % noise).
        data_seed: seed of the sample positions and the noise (the trainer's ``seed``
            seeds the network and the PDE points).

    Example:
        >>> t = BurgersInverse1D.default(hidden=[8], data_points=64, progress=False)
        >>> [type(n.module).__name__ for n in t.nets], t.check()
        (['MLP', 'Viscosity'], ('pde', 'data'))
        >>> round(t.nu_error(), 2)  # the guess 0.05 against 0.01 / pi
        14.71
    """

    domain = Burgers1D.domain
    point_sets = ("interior",)
    default_batch_size = 2000
    grid_shape = Burgers1D.grid_shape
    default_hidden = (20, 20, 20)
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(
            points=2000, boundary_points=None, adam_steps=2000, qn_steps=30_000, redraw_every=2000
        )
    }

    def __init__(
        self,
        net: Any,
        *,
        nu: float = 0.01 / np.pi,
        guess: float = 0.05,
        data_points: int = 2000,
        noise: float = 0.0,
        data_seed: int = 0,
        **kwargs: Any,
    ):
        self.nu = real_parameter("nu", nu, positive=True)
        self.guess = real_parameter("guess", guess, positive=True)
        self.noise = check_real("noise", noise, minimum=0.0)
        self.data_points = check_int("data_points", data_points, minimum=1)
        self.data_seed = check_int("data_seed", data_seed)
        rng = np.random.default_rng(self.data_seed)
        lo, hi = np.asarray(self.domain.lo), np.asarray(self.domain.hi)
        x = lo + (hi - lo) * rng.uniform(size=(self.data_points, 2))
        u = cole_hopf(x[:, 0], x[:, 1], self.nu)
        u = u + self.noise * np.std(u) * rng.standard_normal(u.shape)
        self.observed = jnp.asarray(u, default_float())
        points = kwargs.pop("points", None)
        if points is None:
            sizes = self.batch_sizes(kwargs.pop("batch_size", None))
            resample = kwargs.pop("resample", True)
            points = {"interior": self.domain.interior(sizes["interior"], resample=resample)}
        points = {**points, "data": jnp.asarray(x, default_float())}
        super().__init__(net, points=points, **kwargs)

    def initial_unknowns(self) -> nnx.Module:
        return Viscosity(self.guess)

    def parameters(self) -> dict[str, Any]:
        return {
            "nu": self.nu,
            "guess": self.guess,
            "data_points": self.data_points,
            "noise": self.noise,
            "data_seed": self.data_seed,
        }

    def reference(self, x: Any) -> np.ndarray:
        """The Cole-Hopf solution with the true ``nu``, float64 numpy ``(n,)``."""
        x = np.asarray(x, np.float64)
        return cole_hopf(x[:, 0], x[:, 1], self.nu)

    def reference_values(self) -> np.ndarray:
        return grid_reference(self.nu, 200, tuple(self.grid_shape))

    def residuals(self, nets: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """``pde`` with the trained viscosity, ``data`` against the samples."""
        u, unknowns = nets
        x, xd = batch["interior"], batch["data"]
        u_x = ops.partial(u, x, 0)
        pde = ops.partial(u, x, 1) + values(u, x) * u_x - unknowns.nu * ops.partial2(u, x, 0, 0)
        return {"pde": pde, "data": values(u, xd) - self.observed}

    def learned_nu(self) -> float:
        """The viscosity the unknowns hold now."""
        return float(self.nets[1].module.nu)

    def nu_error(self) -> float:
        """``|nu_learned - nu| / nu``."""
        return abs(self.learned_nu() - self.nu) / self.nu

    def evaluate(self, state: Any) -> dict[str, float]:
        """The error of ``u`` and of the learned ``nu`` (``error/nu``)."""
        out = super().evaluate(state)
        nu = float(jnp.exp(state.params[1]["log_nu"][...]))
        out["error/nu"] = abs(nu - self.nu) / self.nu
        return out
