"""Burgers 1-D: viscous Burgers with a shock-like front, Cole-Hopf reference solution.

The reference solution is computed here, in float64 numpy, from the Cole-Hopf formula
(no downloaded data). For ``u(x, 0) = -sin(pi x)``,

    u(x, t) = - int sin(pi (x - eta)) f(x - eta) G(eta) d eta / int f(x - eta) G(eta) d eta

with ``f(y) = exp(-cos(pi y) / (2 pi nu))`` and the heat kernel
``G(eta) = exp(-eta^2 / (4 nu t))``. Substituting ``eta = sqrt(4 nu t) s`` turns both
integrals into Gauss-Hermite quadratures in ``s``. The exponent of ``f`` spans
``+-1 / (2 pi nu)`` (``+-50`` for ``nu = 0.01 / pi``), so the largest exponent of
each point is subtracted before exponentiating.

Accuracy for ``nu = 0.01 / pi`` on the 256 x 100 grid ``t > 0``
(``benchmarks/references.py``, output in ``benchmarks/results/references.txt``): 100,
150 and 200 nodes agree with 300 to 2.2e-15, and 200 nodes agree to 1.3e-15 with a
20001-point trapezoidal rule over ``|s| <= 40``. The steepest slope at ``x = 0`` is
``u_x = -152.00516`` at ``t = 1.6037 / pi``, the value of Basdevant et al. (1986),
Comput. Fluids 14, 23-41.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno import ops
from jno.domain import Box
from jno.nnx._checks import check_int
from jno.nnx.networks.constraints import Constrained
from jno.problems.base import Problem, real_parameter, values
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe

__all__ = ["Burgers1D", "cole_hopf"]

_MAX_NODES = 300  # numpy's Gauss-Hermite weights underflow beyond ~370 nodes
_CHUNK = 4096  # points per block: bounds the (points x nodes) temporaries


def _nodes(nodes: Any) -> int:
    return check_int("nodes", nodes, minimum=2, maximum=_MAX_NODES)


def cole_hopf(x: Any, t: Any, nu: float = 0.01 / np.pi, nodes: int = 200) -> np.ndarray:
    """Burgers solution for ``u(x, 0) = -sin(pi x)`` by Gauss-Hermite quadrature.

    Solves ``u_t + u u_x = nu u_xx`` on the real line (so ``u(+-1, t) = 0``: the
    solution is odd and 2-periodic). At ``t = 0`` the initial condition is returned.

    Args:
        x: positions, any shape (broadcast against ``t``).
        t: times ``>= 0``.
        nu: viscosity ``> 0``.
        nodes: Gauss-Hermite nodes, 2 to 300; 200 is converged to ~1e-15 for
            ``nu = 0.01 / pi``, ``t <= 1`` (see the module docstring).

    Returns:
        float64 array of the broadcast shape of ``x`` and ``t``.

    Raises:
        ValueError: ``nu <= 0``, a negative or non-finite ``t``, or ``nodes`` out of range.

    Example:
        >>> import numpy as np
        >>> from jno.problems.burgers import cole_hopf
        >>> cole_hopf([-0.5, 0.0, 1.0], 0.0).tolist()
        [1.0, -0.0, -1.2246467991473532e-16]
        >>> u = cole_hopf(np.array([-0.5, 0.5]), 0.5)
        >>> bool(abs(u[0] + u[1]) < 1e-12)    # odd in x
        True
    """
    nu = real_parameter("nu", nu, positive=True)
    nodes = _nodes(nodes)
    x, t = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(t, np.float64))
    if not (np.isfinite(t).all() and (t >= 0).all()):
        raise ValueError(f"t must be finite and >= 0, got min {np.min(t)}")
    shape = x.shape
    x, t = x.ravel(), t.ravel()
    out = -np.sin(np.pi * x)
    s, w = np.polynomial.hermite.hermgauss(nodes)
    log_w = np.log(w)
    (later,) = np.nonzero(t > 0)
    for start in range(0, later.size, _CHUNK):
        idx = later[start : start + _CHUNK]
        y = x[idx, None] - np.sqrt(4.0 * nu * t[idx, None]) * s
        expo = log_w - np.cos(np.pi * y) / (2.0 * np.pi * nu)
        kernel = np.exp(expo - expo.max(axis=1, keepdims=True))
        out[idx] = -np.sum(np.sin(np.pi * y) * kernel, axis=1) / np.sum(kernel, axis=1)
    return out.reshape(shape)


@functools.lru_cache(maxsize=8)
def grid_reference(nu: float, nodes: int, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`cole_hopf` on Burgers1D's grid of ``shape``, computed once per arguments
    (read-only float64 ``(n,)``)."""
    grid = np.asarray(Burgers1D.domain.grid(list(shape)), np.float64)
    ref = cole_hopf(grid[:, 0], grid[:, 1], nu, nodes)
    ref.setflags(write=False)
    return ref


class Burgers1D(Problem):
    """``u_t + u u_x = nu u_xx`` on ``x`` in ``[-1, 1]``, ``t`` in ``[0, 1]``.

    ``u(x, 0) = -sin(pi x)``, ``u(-1, t) = u(1, t) = 0``, ``nu = 0.01 / pi`` by default:
    a front steepens at ``x = 0`` (slope about -152 at ``t = 0.51``). Points are
    ``(x, t)``. Losses: ``"pde"`` on ``"interior"``, ``"bc"`` (``u``) on ``"boundary"``
    and ``"ic"`` (``u + sin(pi x)``) on ``"initial"``.

    The reference is :func:`cole_hopf` (float64 numpy on the host, not traceable); on
    the 256 x 101 evaluation grid (``x`` in ``[-1, 1]``, ``t = 0, 0.01, ..., 1``) it is
    computed once per ``(nu, nodes)`` and cached.

    Args:
        net: the network; see :class:`~jno.problems.base.Problem` for the other keywords.
        nu: viscosity ``> 0``.
        nodes: Gauss-Hermite nodes of the reference, 2 to 300.

    Raises:
        ValueError: ``nu <= 0`` or ``nodes`` out of range.

    Example:
        >>> from jno.problems import Burgers1D
        >>> t = Burgers1D.default(hidden=[8], progress=False)
        >>> t.evaluation_points().shape, t.reference_values().shape
        ((25856, 2), (25856,))
    """

    domain = Box([-1.0, 0.0], [1.0, 1.0], time_axis=-1)
    point_sets = ("interior", "boundary", "initial")
    default_batch_size = {"interior": 1024, "boundary": 128, "initial": 128}
    grid_shape = (256, 101)
    #: The quasi-Newton recipe: a 3 x 30 network and 40 000 SSBroyden iterations, 4.5e-8
    #: over three seeds in 11 to 12 minutes a seed on 2 CPU cores (docs/results.md).
    recipes = {
        "quasi-newton": QuasiNewtonRecipe(hidden=(30, 30, 30), qn_steps=40_000),
        "soap": FirstOrderRecipe(),
    }

    def __init__(self, net: Any, *, nu: float = 0.01 / np.pi, nodes: int = 200, **kwargs: Any):
        self.nu = real_parameter("nu", nu, positive=True)
        self.nodes = _nodes(nodes)
        super().__init__(net, **kwargs)

    def parameters(self) -> dict[str, Any]:
        return {"nu": self.nu, "nodes": self.nodes}

    def reference(self, x: Any) -> np.ndarray:
        """Cole-Hopf solution at points ``(n, 2)`` of ``(x, t)``: float64 numpy ``(n,)``."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (n, 2) of (x, t) pairs, got shape {x.shape}")
        return cole_hopf(x[:, 0], x[:, 1], self.nu, self.nodes)

    def reference_values(self) -> np.ndarray:
        return grid_reference(self.nu, self.nodes, tuple(self.grid_shape))

    def initial_condition(self, x: Any) -> jax.Array:
        """``u(x, 0) = -sin(pi x)``."""
        return -jnp.sin(jnp.pi * jnp.asarray(x)[:, 0])

    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``u = -sin(pi x) + t (1 - x^2) N``: the initial condition and the zero
        boundary values hold exactly (``ic`` and ``bc`` leave the losses)."""
        return Constrained(
            module,
            lambda x: x[:, 1] * (1.0 - x[:, 0] ** 2),
            lambda x: -jnp.sin(jnp.pi * x[:, 0]),
            satisfies=("bc", "ic"),
        )

    def residuals(
        self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        """``pde: u_t + u u_x - nu u_xx``, ``bc: u``, ``ic: u + sin(pi x)``."""
        xi, xb, x0 = batch["interior"], batch["boundary"], batch["initial"]
        u_x = ops.partial(u, xi, 0)
        pde = ops.partial(u, xi, 1) + values(u, xi) * u_x - self.nu * ops.partial2(u, xi, 0, 0)
        ic = values(u, x0) - self.initial_condition(x0)
        return {"pde": pde, "bc": values(u, xb), "ic": ic}
