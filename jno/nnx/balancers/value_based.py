"""The value-based balancers: :class:`SoftAdapt`, :class:`DWA` and :class:`LbPINNsLossBalancing`.

Each weighs the losses from their values alone (their ratios to earlier losses, or a
learned log-variance per loss); see :class:`~jno.nnx.balancers.base.Balancer` for the
behaviour all balancers share (loss preprocessing modes, NaN/Inf guard, ``config``).
Ratios of losses are computed as ``L / (L_ref + eps)``, so zero losses give finite
weights. Losses are expected to be non-negative.

Example:
    >>> w = SoftAdapt(2)
    >>> w([1.0, 1.0]).tolist()  # the first call: ones, and the losses are remembered
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jno.nnx._checks import check_real
from jno.nnx._dtype import default_float
from jno.nnx.balancers._adam import adam_step
from jno.nnx.balancers.base import Balancer, scaled_softmax
from jno.nnx.state import BalancerState

__all__ = ["DWA", "LbPINNsLossBalancing", "SoftAdapt"]


class SoftAdapt(Balancer):
    """SoftAdapt: softmax of the loss ratios to the previous call.

    Heydari, Narang & Zweig, "SoftAdapt: Techniques for Adaptive Loss Weighting of
    Neural Networks with Multi-Part Loss Functions" (2019), arXiv:1912.12355.

    With ``x`` the preprocessed losses of this call and ``x_prev`` those of the
    previous call::

        w = N * softmax((x / (x_prev + eps)) / beta)

    The first call returns ones and remembers its losses. A loss that decreases
    more slowly than the others (ratio closer to or above 1) gains weight; a small
    ``beta`` makes the weights sharper.

    Args:
        num_losses: Number of losses N.
        beta: Softmax temperature, > 0.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps the ratio finite when ``x_prev`` is 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers import SoftAdapt
        >>> b = SoftAdapt(2, beta=0.5)
        >>> b(jnp.array([1.0, 1.0])).tolist()
        [1.0, 1.0]
        >>> w = b(jnp.array([0.5, 1.0]))  # loss 1 stalls: ratios 0.5 and 1
        >>> [round(float(v), 4) for v in w]
        [0.5379, 1.4621]
    """

    def __init__(self, num_losses: int, beta: float = 0.1, *, mode: str = "raw", eps: float = 1e-8):
        self.beta = check_real("beta", beta, minimum=0.0, min_open=True)
        super().__init__(num_losses, mode=mode, eps=eps)
        self.prev_losses = BalancerState(jnp.ones((self.num_losses,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {"beta": self.beta}

    def _update(self, x: jax.Array) -> jax.Array:
        first = self.calls[...] == 0
        ratio = x / (self.prev_losses[...] + self.eps)
        weights = scaled_softmax(self.num_losses, ratio / self.beta)
        self.prev_losses[...] = x
        return jnp.where(first, 1.0, weights)


class DWA(Balancer):
    """Dynamic Weight Average: softmax of the rate of descent over the two previous calls.

    Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.

    With ``x_{t-1}`` and ``x_{t-2}`` the preprocessed losses of the two previous
    calls::

        w = N * softmax((x_{t-1} / (x_{t-2} + eps)) / temperature)

    The first two calls return ones. The current losses only enter the history, as
    in the paper, where the weights of epoch t come from epochs t-1 and t-2. A loss
    that decreases more slowly gains weight; a large ``temperature`` flattens the
    weights towards ones.

    Args:
        num_losses: Number of losses N.
        temperature: Softmax temperature, > 0.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps the ratio finite when ``x_{t-2}`` is 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers import DWA
        >>> b = DWA(2, temperature=1.0)
        >>> b(jnp.array([4.0, 4.0])).tolist(), b(jnp.array([2.0, 4.0])).tolist()
        ([1.0, 1.0], [1.0, 1.0])
        >>> [round(float(v), 4) for v in b(jnp.array([1.0, 4.0]))]  # ratios 0.5 and 1
        [0.7551, 1.2449]
    """

    def __init__(
        self,
        num_losses: int,
        temperature: float = 2.0,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.temperature = check_real("temperature", temperature, minimum=0.0, min_open=True)
        super().__init__(num_losses, mode=mode, eps=eps)
        self.prev_losses = BalancerState(jnp.ones((self.num_losses,), default_float()))
        self.prev_prev_losses = BalancerState(jnp.ones((self.num_losses,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def _update(self, x: jax.Array) -> jax.Array:
        warm = self.calls[...] < 2
        prev = self.prev_losses[...]
        ratio = prev / (self.prev_prev_losses[...] + self.eps)
        weights = scaled_softmax(self.num_losses, ratio / self.temperature)
        self.prev_prev_losses[...] = prev
        self.prev_losses[...] = x
        return jnp.where(warm, 1.0, weights)


class LbPINNsLossBalancing(Balancer):
    """Self-adaptive loss balancing with learnable log-variances (LbPINNs).

    Xiang, Peng, Liu & Yao, "Self-adaptive loss balanced Physics-informed neural
    networks", Neurocomputing 496 (2022).

    Each loss has a log-variance ``s_i`` and weight ``w_i = 0.5 * exp(-s_i)``; the
    ``s`` minimise ``sum_i w_i * x_i + s_i``, whose gradient is
    ``g_i = 1 - w_i * x_i``. Every call, the first included, takes one Adam step
    (betas 0.9, 0.999, eps 1e-8, rate ``lr_s``, bias-corrected) on ``s`` with that
    gradient, clips ``s`` to ``[-20, 20]`` and returns ``w = 0.5 * exp(-s)``.
    ``s`` settles where ``w_i * x_i = 1``, so a large loss gets a small weight and a
    small loss a large one. ``s``, the Adam moments ``m``, ``v`` and the step count
    (``calls``) are ``BalancerState``: the user's optimizer does not touch them.

    Args:
        num_losses: Number of losses N.
        init_s: Initial log-variance, a scalar or one per loss, inside ``[-20, 20]``.
        lr_s: Adam learning rate of ``s``, > 0.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Used by the ``"l2"`` mode only.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers import LbPINNsLossBalancing
        >>> b = LbPINNsLossBalancing(2, init_s=0.0, lr_s=0.1)
        >>> w = b(jnp.array([10.0, 0.1]))  # g = [-4, 0.95]: first Adam step moves s by lr_s
        >>> [round(float(v), 4) for v in b.s[...]]
        [0.1, -0.1]
        >>> [round(float(v), 4) for v in w]  # the large loss gets the small weight
        [0.4524, 0.5526]
    """

    BETA1 = 0.9
    BETA2 = 0.999
    ADAM_EPS = 1e-8
    S_MIN = -20.0
    S_MAX = 20.0
    GRAD_CLIP = 1e15

    def __init__(
        self,
        num_losses: int,
        init_s: float | Sequence[float] = 0.0,
        lr_s: float = 1e-2,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.lr_s = check_real("lr_s", lr_s, minimum=0.0, min_open=True)
        super().__init__(num_losses, mode=mode, eps=eps)
        n = self.num_losses
        if isinstance(init_s, (str, bytes)):
            raise TypeError(f"init_s must be a number or a sequence of numbers, got {init_s!r}")
        arr = np.asarray(init_s, dtype=np.float64)
        if arr.ndim == 0:
            self.init_s: float | tuple[float, ...] = check_real(
                "init_s", float(arr), minimum=self.S_MIN, maximum=self.S_MAX
            )
        elif arr.shape != (n,):
            raise ValueError(
                f"init_s must be a scalar or a sequence of num_losses={n} values, got {init_s!r}"
            )
        else:
            self.init_s = tuple(
                check_real(f"init_s[{i}]", float(v), minimum=self.S_MIN, maximum=self.S_MAX)
                for i, v in enumerate(arr)
            )
        self.s = BalancerState(jnp.broadcast_to(jnp.asarray(self.init_s, default_float()), (n,)))
        self.m = BalancerState(jnp.zeros((n,), default_float()))
        self.v = BalancerState(jnp.zeros((n,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        init_s = list(self.init_s) if isinstance(self.init_s, tuple) else self.init_s
        return {"init_s": init_s, "lr_s": self.lr_s}

    def _update(self, x: jax.Array) -> jax.Array:
        s = self.s[...]
        # The clip only acts when w * x exceeds ~1e15, where Adam's step (about lr_s * sign)
        # is the same but g * g would overflow the second moment.
        grad = jnp.clip(1.0 - 0.5 * jnp.exp(-s) * x, -self.GRAD_CLIP, self.GRAD_CLIP)
        update, m, v = adam_step(
            grad, self.m[...], self.v[...], self.calls[...], self.lr_s,
            b1=self.BETA1, b2=self.BETA2, eps=self.ADAM_EPS,
        )  # fmt: skip
        s = jnp.clip(s + update, self.S_MIN, self.S_MAX)
        self.m[...] = m
        self.v[...] = v
        self.s[...] = s
        return 0.5 * jnp.exp(-s)
