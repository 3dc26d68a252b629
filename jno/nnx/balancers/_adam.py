"""One bias-corrected Adam step on a balancer's own variables (LbPINNs, GradNorm).

The balancers that learn their weights by gradient descent keep the Adam moments in
:class:`~jno.nnx.state.BalancerState` variables and count steps with their ``calls``
counter; :func:`adam_step` is the arithmetic they share.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jno.nnx._dtype import default_float

__all__ = ["adam_step"]


def adam_step(
    grad: jax.Array,
    mu: jax.Array,
    nu: jax.Array,
    count: jax.Array,
    lr: float,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One Adam step (Kingma & Ba 2015) for the gradient ``grad``.

    With ``t = count + 1`` (``count`` steps taken before this one)::

        mu'  = b1 * mu + (1 - b1) * grad
        nu'  = b2 * nu + (1 - b2) * grad * grad
        update = -lr * (mu' / (1 - b1**t)) / (sqrt(nu' / (1 - b2**t)) + eps)

    Args:
        grad: Gradient of the loss with respect to the variable.
        mu: First moment before this step (zeros at the start).
        nu: Second moment before this step (zeros at the start).
        count: Number of steps taken before this one (an integer scalar).
        lr: Learning rate.
        b1, b2, eps: Adam's decay rates and denominator constant.

    Returns:
        ``(update, mu', nu')``: add ``update`` to the variable (the optax convention)
        and keep the new moments for the next step.

    Example:
        >>> import jax.numpy as jnp
        >>> update, mu, nu = adam_step(jnp.array([-4.0, 0.5]), jnp.zeros(2), jnp.zeros(2),
        ...                            jnp.int32(0), 0.1)
        >>> [round(float(u), 4) for u in update]  # the first step moves by lr against grad
        [0.1, -0.1]
    """
    mu = b1 * mu + (1.0 - b1) * grad
    nu = b2 * nu + (1.0 - b2) * grad * grad
    t = (jnp.asarray(count) + 1).astype(default_float())
    mu_hat = mu / (1.0 - b1**t)
    nu_hat = nu / (1.0 - b2**t)
    return -(lr * mu_hat / (jnp.sqrt(nu_hat) + eps)), mu, nu
