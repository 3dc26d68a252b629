"""The balancers that draw random numbers: :class:`ReLoBRaLo` and :class:`RLW`.

Each keeps its own RNG stream in a :class:`~jno.nnx.state.BalancerState` holding
the raw ``uint32`` key data of a ``threefry2x32`` key (``jax.random.key_data``), so
it checkpoints as a plain array. Every accepted call splits the key once and draws
from the new subkey: the same seed gives the same sequence, eagerly, under
``nnx.jit`` and under ``nnx.scan``. A call rejected by the NaN/Inf guard leaves the
key unchanged. Import them from :mod:`jno.nnx.balancers`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_real, check_seed
from jno.nnx._dtype import default_float
from jno.nnx.balancers.base import Balancer, scaled_softmax
from jno.nnx.state import BalancerState

__all__ = ["RLW", "ReLoBRaLo"]

_IMPL = "threefry2x32"


def _next_key(state: BalancerState) -> jax.Array:
    """Splits the stored key, stores one half and returns the other for drawing."""
    key, sub = jax.random.split(jax.random.wrap_key_data(state[...], impl=_IMPL))
    state[...] = jax.random.key_data(key)
    return sub


def _key_state(seed: Any) -> BalancerState:
    return BalancerState(jax.random.key_data(jax.random.key(seed, impl=_IMPL)))


class ReLoBRaLo(Balancer):
    """ReLoBRaLo: Relative Loss Balancing with Random Lookback.

    Bischof & Kraus, "Multi-Objective Loss Balancing for Physics-Informed Deep
    Learning" (2021), arXiv:2110.09813.

    With ``x`` the preprocessed losses of this call, ``x_0`` those of the first
    call, ``x_prev`` those of the previous call and
    ``w_hat(ref) = N * softmax(x / (tau * ref + eps))``, each call draws
    ``rho ~ Bernoulli(expected_rho)`` and updates the weights ``lam``::

        lam = alpha * (rho * lam + (1 - rho) * w_hat(x_0)) + (1 - alpha) * w_hat(x_prev)

    The first call returns ones and remembers its losses as ``x_0`` and ``x_prev``.
    ``alpha`` is the memory of the exponential moving average; ``rho = 0`` (a
    "lookback", probability ``1 - expected_rho``) resets the history to the weights
    relative to the first losses. A loss that falls more slowly than the others
    gains weight; ``tau`` is the softmax temperature. ``lam`` is kept in
    ``last_weights``.

    Args:
        num_losses: Number of losses N.
        alpha: EMA factor in ``[0, 1]``.
        tau: Softmax temperature, > 0.
        expected_rho: Probability in ``[0, 1]`` of keeping the history.
        seed: Seed of the balancer's own RNG stream.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps the ratios finite when a reference loss is 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers import ReLoBRaLo
        >>> b = ReLoBRaLo(2, alpha=0.5, tau=1.0, expected_rho=1.0)
        >>> b(jnp.array([1.0, 1.0])).tolist()
        [1.0, 1.0]
        >>> w = b(jnp.array([1.0, 2.0]))  # 0.5 * 1 + 0.5 * 2 * softmax([1, 2])
        >>> [round(float(v), 4) for v in w]
        [0.7689, 1.2311]
    """

    def __init__(
        self,
        num_losses: int,
        alpha: float = 0.99,
        tau: float = 0.1,
        expected_rho: float = 0.999,
        seed: int = 42,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.alpha = check_real("alpha", alpha, minimum=0.0, maximum=1.0)
        self.tau = check_real("tau", tau, minimum=0.0, min_open=True)
        self.expected_rho = check_real("expected_rho", expected_rho, minimum=0.0, maximum=1.0)
        self.seed = check_seed("seed", seed)
        super().__init__(num_losses, mode=mode, eps=eps)
        n = self.num_losses
        self.initial_losses = BalancerState(jnp.ones((n,), default_float()))
        self.prev_losses = BalancerState(jnp.ones((n,), default_float()))
        self.key = _key_state(seed)

    def _hparams(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tau": self.tau,
            "expected_rho": self.expected_rho,
            "seed": self.seed,
        }

    def _w_hat(self, x: jax.Array, ref: jax.Array) -> jax.Array:
        return scaled_softmax(self.num_losses, x / (self.tau * ref + self.eps))

    def _update(self, x: jax.Array) -> jax.Array:
        first = self.calls[...] == 0
        initial = jnp.where(first, x, self.initial_losses[...])
        prev = jnp.where(first, x, self.prev_losses[...])
        rho = jax.random.bernoulli(_next_key(self.key), self.expected_rho).astype(default_float())
        history = rho * self.last_weights[...] + (1.0 - rho) * self._w_hat(x, initial)
        lam = self.alpha * history + (1.0 - self.alpha) * self._w_hat(x, prev)
        self.initial_losses[...] = initial
        self.prev_losses[...] = x
        return jnp.where(first, 1.0, lam)


class RLW(Balancer):
    """Random Loss Weighting: fresh Dirichlet weights on every call.

    Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A
    Litmus Test for Multi-Task Learning", TMLR (2022), arXiv:2111.10603.

    Each call draws::

        w = N * Dirichlet(alpha, ..., alpha)

    (``jax.random.dirichlet``; for ``alpha = 1`` the equivalent ``e / sum(e)`` with
    ``e`` N draws of ``jax.random.exponential``).

    so the weights are positive, sum to N and have mean 1; the losses are ignored
    except by the NaN/Inf guard. ``alpha = 1`` is uniform on the simplex; a large
    ``alpha`` concentrates the weights near ones, a small one near the corners.
    A strong, cheap baseline against the adaptive methods.

    Args:
        num_losses: Number of losses N.
        alpha: Dirichlet concentration, > 0.
        seed: Seed of the balancer's own RNG stream.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing (no effect on
            the weights).
        eps: Unused by the weights; kept for a uniform constructor.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers import RLW
        >>> a, b = RLW(3, seed=0), RLW(3, seed=0)
        >>> wa, wb = a(jnp.ones(3)), b(jnp.ones(3))
        >>> bool(jnp.all(wa == wb)), round(float(wa.sum()), 4), bool(jnp.all(wa > 0))
        (True, 3.0, True)
    """

    def __init__(
        self,
        num_losses: int,
        alpha: float = 1.0,
        seed: int = 42,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.alpha = check_real("alpha", alpha, minimum=0.0, min_open=True)
        self.seed = check_seed("seed", seed)
        super().__init__(num_losses, mode=mode, eps=eps)
        self.key = _key_state(seed)

    def _hparams(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "seed": self.seed}

    def _update(self, x: jax.Array) -> jax.Array:
        del x
        key = _next_key(self.key)
        n = self.num_losses
        if self.alpha == 1.0:
            # Dirichlet(1, ..., 1) is a normalised vector of Exp(1) draws; this avoids the
            # gamma sampler's rejection loop, which is slower to compile and to run.
            e = jax.random.exponential(key, (n,), default_float())
            return n * e / jnp.sum(e)
        concentration = jnp.full((n,), self.alpha, default_float())
        return n * jax.random.dirichlet(key, concentration)
