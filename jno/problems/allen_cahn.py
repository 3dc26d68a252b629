"""Allen-Cahn 1-D: ``u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0``, periodic in ``x``.

The standard hard benchmark of PINN training (Raissi et al. 2019; Wang et al. 2023,
2024): sharp interfaces form from ``u(x, 0) = x^2 cos(pi x)`` and the solution sits at
``+-1`` between them. The reference is computed in the package: Fourier spectral in
``x`` and ETDRK4 in time (:func:`jno.problems._etdrk4.etdrk4_periodic`, Kassam &
Trefethen 2005), in float64, with 2048 Fourier nodes and ``dt = 5e-4``.

Its own convergence (maximum and relative L2 differences on ``t = 0, 0.1, ..., 1``
against 4096 nodes at the same step; the time step is converged to 1e-11: 512 nodes at
``dt = 1e-3`` and ``1.25e-4`` differ by 1.1e-11), from ``benchmarks/references.py``
(output in ``benchmarks/results/references.txt``)::

    nodes   max difference   relative L2
      512   1.7e-4           4.8e-6
     1024   4.0e-5           1.1e-6
     2048   7.9e-6           2.2e-7

The convergence in space is algebraic, not spectral: the initial condition is only
continuous as a periodic function (its slope jumps from -2 to 2 across ``x = +-1``)
and the diffusion of ``1e-4`` smooths that kink slowly. The 512-node solution often
used as the reference in the literature is therefore itself 4.8e-6 (relative L2) from
the converged one, more than the smallest errors published against it.

Example:
    >>> from jno.problems import AllenCahn1D
    >>> t = AllenCahn1D.default(hidden=[8], progress=False)
    >>> t.evaluation_points().shape, t.reference_values().shape
    ((103113, 2), (103113,))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.scipy.special import erf

from jno import ops
from jno.domain import Box
from jno.nnx.networks.constraints import Constrained
from jno.problems._etdrk4 import etdrk4_periodic
from jno.problems._residuals import embeds_periods
from jno.problems.base import Problem, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["AllenCahn1D", "allen_cahn_reference", "initial_kink"]

_EPS, _A = 1e-4, 5.0
_NODES, _DT = 2048, 5e-4
_TIMES = 201  # t = 0, 0.005, ..., 1: every stored time is a multiple of _DT


def _initial(x: Any) -> Any:
    return x**2 * np.cos(np.pi * x)


@functools.lru_cache(maxsize=2)
def allen_cahn_reference(nodes: int = _NODES, dt: float = _DT) -> tuple[np.ndarray, ...]:
    """``(x, t, u)``: the reference on ``nodes`` Fourier nodes of ``[-1, 1)`` at
    ``t = 0, 0.005, ..., 1`` (``u`` of shape ``(201, nodes)``), computed once and cached.

    Example:
        >>> x, t, u = allen_cahn_reference(256, 1e-3)
        >>> u.shape, float(t[-1]), bool(abs(u[0] - x**2 * np.cos(np.pi * x)).max() < 1e-12)
        ((201, 256), 1.0, True)
    """
    times = np.linspace(0.0, 1.0, _TIMES)
    x, u = etdrk4_periodic(
        _initial, lambda v: _A * v - _A * v**3, _EPS, (-1.0, 1.0), nodes, times, dt
    )
    for a in (x, times, u):
        a.setflags(write=False)
    return x, times, u


def initial_kink(x: Any, eps: float = _EPS) -> jax.Array:
    """The kink of the initial condition at ``x = +-1``, as it diffuses and decays:
    ``S(x, t) = 2 exp(-10 t) K(y, t)`` at points ``(n, 2)`` of ``(x, t)``.

    ``K(y, t) = y erf(y / a) + a exp(-(y / a)^2) / sqrt(pi)``, ``a = sqrt(4 eps t)``, is
    ``|y|`` smoothed by the heat equation ``K_t = eps K_yy``, and ``exp(-10 t)`` the decay
    of a perturbation of ``u = -1`` under ``5 u - 5 u^3``. The distance to the kink is
    ``y = (2 / pi) sin(pi (x - 1) / 2)``: ``|y|`` is periodic with period 2, equal to
    ``|x - 1|`` (or ``|x + 1|``) to third order at the kink, and smooth everywhere
    else. ``u(x, 0) - S(x, 0)`` has no slope jump (its first non-smooth term is
    ``|x - 1|^3``), so a smooth periodic network fits ``u - S`` far better than
    ``u``; at ``x = +-1``, ``S_t - eps S_xx + 10 S = 0`` exactly.

    Example:
        >>> import jax.numpy as jnp
        >>> at_t0 = initial_kink(jnp.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]))
        >>> [round(float(v), 5) for v in at_t0]   # 2 |y|: 0 at the kink, 4 / pi at x = 0
        [0.0, 1.27324, 0.0]
    """
    x = jnp.asarray(x)
    position, t = x[:, 0], x[:, 1]
    y = (2.0 / jnp.pi) * jnp.sin(jnp.pi * (position - 1.0) / 2.0)
    # A floor of sqrt(tiny) keeps a and y / a finite at t = 0, where S is then 2 |y|.
    a = jnp.sqrt(4.0 * eps * t + jnp.finfo(jnp.result_type(t)).tiny ** 0.5)
    smoothed = y * erf(y / a) + a * jnp.exp(-((y / a) ** 2)) / jnp.sqrt(jnp.pi)
    return 2.0 * jnp.exp(-2.0 * _A * t) * smoothed


def _on_grid(shape: tuple[int, int]) -> np.ndarray:
    """The reference on the evaluation grid (``x`` fastest-varying last, as ``grid``)."""
    x, _, u = allen_cahn_reference()
    nx, nt = shape
    step = x.size // (nx - 1)
    columns = np.concatenate([u[:, ::step], u[:, :1]], axis=1)  # x = 1 is x = -1
    return np.ascontiguousarray(columns.T).reshape(-1)


class AllenCahn1D(Problem):
    """``u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0`` on ``x`` in ``[-1, 1]``, ``t`` in ``[0, 1]``.

    ``u(x, 0) = x^2 cos(pi x)``, periodic in ``x``. Points are ``(x, t)``. Losses:
    ``"pde"`` on ``"interior"``, ``"ic"`` on ``"initial"``, and ``"bc"`` on
    ``"boundary"``: for each boundary point's time ``t``, ``u(-1, t) - u(1, t)`` and
    ``u_x(-1, t) - u_x(1, t)`` (zero for a network that is periodic by construction).

    ``default()`` networks embed ``x`` periodically (``periodic_inputs``): they satisfy
    ``"bc"`` exactly, so their trainers leave it out (``periodic_terms``) and train
    ``"pde"`` and ``"ic"`` only. ``default(exact=True)`` adds the initial condition's
    kink (:meth:`exact_conditions`). The evaluation grid is 513 x 201
    (``x = -1, -1 + 1/256, ..., 1``,
    ``t = 0, 0.005, ..., 1``), on the nodes of the reference (see the module docstring).

    Args:
        net: the network; see :class:`~jno.problems.base.Problem` for the other keywords.
    """

    domain = Box([-1.0, 0.0], [1.0, 1.0], time_axis=-1)
    point_sets = ("interior", "boundary", "initial")
    default_batch_size = {"interior": 1024, "boundary": 128, "initial": 128}
    grid_shape = (513, 201)
    periodic_inputs = {0: 2.0}
    periodic_terms = ("bc",)
    #: The quasi-Newton recipe with the initial kink imposed (``exact=True``), a 3 x 30
    #: network and 35 000 SSBroyden iterations: 2.3e-6 over three seeds, within 15 minutes
    #: a seed on 2 CPU cores (docs/results.md). The error a 3 x 20 network leaves lies at
    #: late times in the middle, which more points did not remove and more width did.
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(hidden=(30, 30, 30), exact=True, qn_steps=35_000),
        "soap": FirstOrderRecipe(),
    }

    def reference(self, x: Any) -> np.ndarray:
        """The reference at points ``(n, 2)`` of ``(x, t)``: Fourier interpolation in
        ``x``, linear in ``t`` between the stored times (0.005 apart)."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (n, 2) of (x, t) pairs, got shape {x.shape}")
        nodes, times, u = allen_cahn_reference()
        n = nodes.size
        coeffs = np.fft.fft(u, axis=1) / n
        k = np.fft.fftfreq(n, d=1.0 / n)
        k[n // 2] = 0.0  # the Nyquist mode of a real signal carries no sine part
        phase = np.exp(1j * np.pi * np.outer(x[:, 0] + 1.0, k))
        position = np.clip(x[:, 1], 0.0, 1.0) * (times.size - 1)
        lo = np.minimum(np.floor(position).astype(int), times.size - 2)
        w = position - lo
        at = lambda j: np.real(np.sum(coeffs[j] * phase, axis=1))  # noqa: E731
        return (1 - w) * at(lo) + w * at(lo + 1)

    def reference_values(self) -> np.ndarray:
        return _on_grid(tuple(self.grid_shape))

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = S(x, t) + N(x, t)`` with ``S`` the initial condition's kink at
        ``x = +-1`` (:func:`initial_kink`): the slope jump of ``u(x, 0)``, which a
        network smooth and periodic in ``x`` cannot follow, holds exactly, and ``N``
        fits a smooth remainder. ``S`` is periodic and smooth for ``t > 0``, so a
        periodic ``module`` keeps ``bc`` out of the losses; the initial values are
        not imposed, and ``ic`` stays a loss term."""
        periodic = embeds_periods(module, cls.periodic_inputs)
        return Constrained(
            module,
            lambda x: jnp.ones_like(x[:, 0]),
            initial_kink,
            satisfies=cls.periodic_terms if periodic else (),
        )

    def initial_condition(self, x: Any) -> jax.Array:
        """``u(x, 0) = x^2 cos(pi x)``."""
        x = jnp.asarray(x)[:, 0]
        return x**2 * jnp.cos(jnp.pi * x)

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, Any]:
        """``pde``, ``ic: u - x^2 cos(pi x)`` and the periodic ``bc`` pair."""
        xi, xb, x0 = batch["interior"], batch["boundary"], batch["initial"]
        ui = values(u, xi)
        pde = ops.partial(u, xi, 1) - _EPS * ops.partial2(u, xi, 0, 0) + _A * ui**3 - _A * ui
        ic = values(u, x0) - self.initial_condition(x0)
        t = xb[:, 1:]
        left = jnp.concatenate([-jnp.ones_like(t), t], axis=1)
        right = jnp.concatenate([jnp.ones_like(t), t], axis=1)
        bc = (
            values(u, left) - values(u, right),
            ops.partial(u, left, 0) - ops.partial(u, right, 0),
        )
        return {"pde": pde, "bc": bc, "ic": ic}
