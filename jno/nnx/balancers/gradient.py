"""Gradient-based loss balancers: weights from the per-term gradients of the losses.

``balancer(losses, grads)`` takes the N losses and their gradients with respect to the
trained parameters (one gradient per loss, see :func:`per_term_gradients` for the
accepted layouts) and returns N weights (default float dtype,
``jax.lax.stop_gradient``-ed, always finite), updating its
:class:`~jno.nnx.state.BalancerState` variables in place. Like the value-based
balancers of :mod:`jno.nnx.balancers` it runs inside ``nnx.jit``, ``nnx.scan`` and
``nnx.vmap`` with no host round trip, and a call that sees a NaN or Inf (in a loss or
in a gradient) keeps the previous weights and state.

Per-term gradients cost one backward pass per loss, so these balancers are meant to be
updated every ``update_every`` steps and reused in between: on update steps compute
``grads = jax.jacrev(loss_vector)(params)`` and call the balancer; on the other steps
read ``balancer.last_weights[...]``. The jno ``Trainer`` does this itself (the class
attribute ``requires = "grads"`` tells it to).

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jno.nnx.balancers.gradient import GradNormBalancer
    >>> params = {"a": jnp.array([1.0, 2.0])}
    >>> loss_vector = lambda p: jnp.stack([jnp.sum(p["a"] ** 2), 0.1 * jnp.sum(p["a"])])
    >>> b = GradNormBalancer(2, momentum=0.0)
    >>> w = b(loss_vector(params), jax.jacrev(loss_vector)(params))
    >>> [round(float(v), 3) for v in w]  # gradient norms 4.472 and 0.141
    [0.516, 16.311]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_bool, check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.balancers._adam import adam_step
from jno.nnx.balancers.base import check_num_losses
from jno.nnx.balancers.gradient_base import GradientBalancer, per_term_gradients
from jno.nnx.state import BalancerState

__all__ = [
    "GradNorm",
    "GradNormBalancer",
    "GradientBalancer",
    "LRAnnealing",
    "per_term_gradients",
]


class GradNormBalancer(GradientBalancer):
    """Inverse gradient-norm weighting with an exponential moving average.

    The gradient-norm weighting of Wang, Sankaran, Wang & Perdikaris, "An Expert's
    Guide to Training Physics-informed Neural Networks" (2023), arXiv:2308.08468, as
    in the ``jaxpi`` library: each term is scaled so that all weighted gradients have
    the mean norm::

        n_i     = ||g_i||_2
        w_hat_i = mean_j(n_j) / (n_i + eps)
        w       = momentum * w_prev + (1 - momentum) * w_hat

    ``w_prev`` (state ``ema_weights``) is ones before the first call. A term with a
    small gradient gets a large weight. The losses only enter the NaN guard.

    Args:
        num_losses: Number of losses N.
        momentum: EMA factor of the previous weights, in ``[0, 1)``.
        update_every: Steps between two updates (read by the Trainer).
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps ``w_hat`` finite for a zero gradient.

    Raises:
        ValueError: ``momentum`` outside ``[0, 1)``, ``update_every`` < 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.gradient import GradNormBalancer
        >>> b = GradNormBalancer(2, momentum=0.5)
        >>> g = jnp.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])  # norms 5 and 1, mean 3
        >>> [round(float(v), 4) for v in b(jnp.array([1.0, 1.0]), g)]  # 0.5 + 0.5 * [0.6, 3]
        [0.8, 2.0]
    """

    def __init__(
        self,
        num_losses: int,
        *,
        momentum: float = 0.9,
        update_every: int = 100,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0, max_open=True)
        super().__init__(num_losses, update_every=update_every, mode=mode, eps=eps)
        self.ema_weights = BalancerState(jnp.ones((self.num_losses,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {"momentum": self.momentum, **super()._hparams()}

    def _update_from_grads(self, x: jax.Array, g: jax.Array) -> jax.Array:
        norms = jnp.linalg.norm(g, axis=1)
        w_hat = jnp.mean(norms) / (norms + self.eps)
        w = self.momentum * self.ema_weights[...] + (1.0 - self.momentum) * w_hat
        self.ema_weights[...] = w
        return w


class LRAnnealing(GradientBalancer):
    """Learning-rate annealing of PINN loss weights (Algorithm 1 of Wang et al.).

    Wang, Teng & Perdikaris, "Understanding and mitigating gradient flow pathologies
    in physics-informed neural networks", SIAM J. Sci. Comput. 43(5) (2021),
    arXiv:2001.04536.

    The reference term ``r`` (the PDE residual) keeps weight 1. Every other term has
    a weight ``lam_i`` (state ``lambdas``, ones at start) updated as::

        lam_hat_i = max_k |g_r,k| / (mean_k |g_i,k| + eps)
        lam_i     = (1 - beta) * lam_i + beta * lam_hat_i

    with max and mean over all parameters; the new estimate weighs ``beta`` (0.9 in
    the paper and its code). A term whose gradients are small next to the residual's
    gets a weight above 1.

    By default (``weighted_gradients=True``) the denominator is ``mean_k |lam_i * g_i,k|``
    with the current ``lam_i``, as the authors' published code computes it (it
    differentiates ``lam_i * L_i``); the fixed point is
    ``lam_i = sqrt(max|g_r| / mean|g_i|)``. With ``weighted_gradients=False`` it is
    the formula as printed, with fixed point ``lam_i = max|g_r| / mean|g_i|``; that form
    feeds back on itself (a larger weight fits the term better, which shrinks its
    gradients and raises the weight again): on Helmholtz2D it drives the boundary weight
    past 1e7 and the network to zero, while the default reaches a few hundred and trains
    (``docs/results.md``).

    Args:
        num_losses: Number of losses N.
        reference: Index of the reference (residual) term, ``0 <= reference < N``.
        beta: Weight of the new estimate, in ``(0, 1]``.
        update_every: Steps between two updates (read by the Trainer).
        weighted_gradients: Take the gradients of ``lam_i * L_i`` in the denominator
            (default), not those of ``L_i``.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps ``lam_hat`` finite for a zero gradient.

    Raises:
        TypeError: ``reference`` is not an integer.
        ValueError: ``reference`` out of range, ``beta`` outside ``(0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.gradient import LRAnnealing
        >>> b = LRAnnealing(2, weighted_gradients=False)
        >>> g = jnp.array([[1.0, -4.0, 2.0], [0.5, 0.5, -0.5]])  # max |g_0| 4, mean |g_1| 0.5
        >>> [round(float(v), 4) for v in b(jnp.array([1.0, 1.0]), g)]  # 0.1 + 0.9 * 8
        [1.0, 7.3]
    """

    def __init__(
        self,
        num_losses: int,
        *,
        reference: int = 0,
        beta: float = 0.9,
        update_every: int = 10,
        weighted_gradients: bool = True,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        n = check_num_losses(num_losses)
        reference = check_int(
            "reference", reference, minimum=0, maximum=n - 1, rule=f"in [0, num_losses={n})"
        )
        self.beta = check_real("beta", beta, minimum=0.0, maximum=1.0, min_open=True)
        weighted_gradients = check_bool("weighted_gradients", weighted_gradients)
        super().__init__(n, update_every=update_every, mode=mode, eps=eps)
        self.reference = reference
        self.weighted_gradients = weighted_gradients
        self.lambdas = BalancerState(jnp.ones((n,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "beta": self.beta,
            "weighted_gradients": self.weighted_gradients,
            **super()._hparams(),
        }

    def _update_from_grads(self, x: jax.Array, g: jax.Array) -> jax.Array:
        lam = self.lambdas[...]
        abs_g = jnp.abs(g)
        mean_abs = jnp.mean(abs_g, axis=1)
        if self.weighted_gradients:
            mean_abs = jnp.abs(lam) * mean_abs
        lam_hat = jnp.max(abs_g[self.reference]) / (mean_abs + self.eps)
        lam = (1.0 - self.beta) * lam + self.beta * lam_hat
        is_ref = jnp.arange(self.num_losses) == self.reference
        lam = jnp.where(is_ref, 1.0, lam)
        self.lambdas[...] = lam
        return lam


class GradNorm(GradientBalancer):
    """GradNorm: learnable weights that equalise the training rates of the terms.

    Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
    Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv:1711.02257.

    With ``x`` the preprocessed losses, ``x0`` those of the first call (state
    ``initial_losses``), ``n_i = ||g_i||_2`` and the current weights ``w`` (state
    ``weights``, ones at start)::

        G_i  = w_i * n_i,           Gbar = mean(G)
        r_i  = (x_i / (x0_i + eps)) / (mean_j(x_j / (x0_j + eps)) + eps)
        T_i  = Gbar * r_i ** alpha                      (held constant)
        grad_i = d/dw_i sum_j |G_j - T_j| = sign(G_i - T_i) * n_i

    Every call, the first included, takes one Adam step on ``w`` with ``grad``
    (rate ``lr``, betas 0.9, 0.999, eps 1e-8, bias-corrected; moments in ``m``,
    ``v``, step count ``calls``), clips ``w`` to ``>= 1e-6`` and renormalises it to
    ``sum(w) = N``; the call returns these weights. A term that trains more slowly
    than the others (larger ``r_i``) is pushed towards a larger weighted gradient;
    ``alpha = 0`` asks for equal weighted gradient norms. The ``eps`` in the mean of
    ``r`` keeps all-zero losses finite.

    The paper takes the gradients with respect to the last shared layer; passing the
    gradients of a subset of the parameters (e.g. the last layer) does the same here
    and is cheaper.

    Args:
        num_losses: Number of losses N.
        alpha: Restoring-force strength, >= 0.
        lr: Adam learning rate of ``w``, > 0.
        update_every: Steps between two updates (read by the Trainer).
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Keeps the loss ratios finite.

    Raises:
        ValueError: ``alpha`` < 0, ``lr`` <= 0, ``update_every`` < 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.gradient import GradNorm
        >>> b = GradNorm(2, alpha=1.5, lr=0.1)
        >>> g = jnp.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])  # G = [5, 1], T = [3, 3]
        >>> [round(float(v), 4) for v in b(jnp.array([2.0, 1.0]), g)]  # Adam moves w by lr
        [0.9, 1.1]
    """

    BETA1 = 0.9
    BETA2 = 0.999
    ADAM_EPS = 1e-8
    W_MIN = 1e-6
    GRAD_CLIP = 1e15

    def __init__(
        self,
        num_losses: int,
        *,
        alpha: float = 1.5,
        lr: float = 1e-2,
        update_every: int = 1,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        self.alpha = check_real("alpha", alpha, minimum=0.0)
        self.lr = check_real("lr", lr, minimum=0.0, min_open=True)
        super().__init__(num_losses, update_every=update_every, mode=mode, eps=eps)
        n = self.num_losses
        self.weights = BalancerState(jnp.ones((n,), default_float()))
        self.initial_losses = BalancerState(jnp.ones((n,), default_float()))
        self.m = BalancerState(jnp.zeros((n,), default_float()))
        self.v = BalancerState(jnp.zeros((n,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "lr": self.lr, **super()._hparams()}

    def _update_from_grads(self, x: jax.Array, g: jax.Array) -> jax.Array:
        x0 = jnp.where(self.calls[...] == 0, x, self.initial_losses[...])
        self.initial_losses[...] = x0
        w = self.weights[...]
        norms = jnp.linalg.norm(g, axis=1)
        gw = w * norms
        ratio = x / (x0 + self.eps)
        r = ratio / (jnp.mean(ratio) + self.eps)
        target = jnp.mean(gw) * r**self.alpha
        # The clip only matters for gradient norms above ~1e15, where g * g would
        # overflow the second moment; Adam's step (about lr * sign) is unchanged.
        grad = jnp.clip(jnp.sign(gw - target) * norms, -self.GRAD_CLIP, self.GRAD_CLIP)
        update, m, v = adam_step(
            grad, self.m[...], self.v[...], self.calls[...], self.lr,
            b1=self.BETA1, b2=self.BETA2, eps=self.ADAM_EPS,
        )  # fmt: skip
        w = jnp.maximum(w + update, self.W_MIN)
        w = self.num_losses * w / jnp.sum(w)
        self.m[...] = m
        self.v[...] = v
        self.weights[...] = w
        return w
