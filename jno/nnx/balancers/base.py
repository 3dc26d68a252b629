"""The :class:`Balancer` base class shared by every adaptive loss balancer.

The base turns the user's losses into a validated vector of the default float dtype
(:func:`~jno.nnx._dtype.default_float`), preprocesses it
with a :class:`~jno.nnx.balancers.normalize.LossNormalizer`, lets the subclass compute the
new weights, and guards the result: when a loss, a new weight or a new state value
is NaN or Inf, every :class:`~jno.nnx.state.BalancerState` variable of the balancer
keeps its previous value and the previous weights are returned. The guard is a
``jnp.where`` per variable, so it is free of host round trips and works under
``nnx.jit``, ``nnx.scan`` and ``nnx.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.nnx._checks import check_positive_int
from jno.nnx._dtype import default_float
from jno.nnx.balancers.normalize import LossNormalizer
from jno.nnx.state import BalancerState

__all__ = ["Balancer", "check_num_losses", "scaled_softmax"]

_INT32_MAX = int(np.iinfo(np.int32).max)


def scaled_softmax(n: int, logits: jax.Array) -> jax.Array:
    """``n * softmax(logits)``, with ``+inf`` logits (a huge loss over a tiny reference
    overflowing the float dtype) capped at its largest value so the result stays finite."""
    logits = jnp.asarray(logits)
    return n * jax.nn.softmax(jnp.minimum(logits, jnp.finfo(logits.dtype).max))


def check_num_losses(num_losses: Any) -> int:
    """Returns ``num_losses`` as an int; raises ValueError unless it is an integer >= 1.

    A wrong type is a ValueError here too (unlike :func:`~jno.nnx._checks.check_int`):
    balancers have always reported every bad ``num_losses`` the same way.

    Example:
        >>> check_num_losses(3)
        3
        >>> check_num_losses(3.0)
        Traceback (most recent call last):
        ...
        ValueError: num_losses must be an integer >= 1, got 3.0
    """
    try:
        return check_positive_int("num_losses", num_losses)
    except TypeError:
        raise ValueError(f"num_losses must be an integer >= 1, got {num_losses!r}") from None


class Balancer(nnx.Module):
    """Base class of the adaptive loss balancers.

    ``balancer(losses)`` takes a length-N jax array (or a sequence of N scalars)
    and returns an ``(N,)`` weight array of the default float dtype (float32, or float64
    under ``jax_enable_x64``), ``jax.lax.stop_gradient``-ed and
    always finite, updating the balancer's state in place. All state lives in
    :class:`~jno.nnx.state.BalancerState` variables (never ``nnx.Param``), so an
    ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` leaves it alone and it is saved and
    restored with the model.

    Subclasses implement :meth:`_update` (new weights from the preprocessed losses,
    updating their own state) and :meth:`_hparams` (their constructor arguments).

    Args:
        num_losses: Number of losses N (an integer >= 1).
        mode: Loss preprocessing, ``"raw"``, ``"minmax"`` or ``"l2"``
            (see :mod:`jno.nnx.balancers.normalize`).
        eps: Small positive constant that keeps ratios of losses finite.

    Attributes:
        num_losses: N.
        calls: ``BalancerState`` int32 count of accepted calls (a call that sees a
            NaN or Inf does not count).
        last_weights: ``BalancerState`` with the weights of the last accepted call,
            ones before the first.
        normalizer: The :class:`~jno.nnx.balancers.normalize.LossNormalizer`.

    Raises:
        ValueError: ``num_losses`` is not an integer >= 1, ``mode`` is unknown or
            ``eps`` is not > 0; at call time, when the number of losses differs
            from ``num_losses``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.base import Balancer
        >>> class Inverse(Balancer):  # weights 1 / L, normalised to sum to N
        ...     def _update(self, x):
        ...         inv = 1.0 / (x + self.eps)
        ...         return self.num_losses * inv / jnp.sum(inv)
        >>> b = Inverse(2)
        >>> b(jnp.array([1.0, 3.0])).tolist()
        [1.5, 0.5]
        >>> b([1.0, jnp.nan]).tolist()  # non-finite: previous weights, state unchanged
        [1.5, 0.5]
        >>> int(b.calls[...]), b.config()
        (1, {'class': 'Inverse', 'num_losses': 2, 'mode': 'raw', 'eps': 1e-08})
    """

    #: What the balancer needs besides the loss values: ``"losses"`` (nothing else),
    #: ``"grads"`` (per-term gradients, :mod:`jno.nnx.balancers.gradient`) or ``"ntk"``
    #: (per-term NTK diagonals, :class:`~jno.nnx.balancers.ntk.NTKBalancer`). The Trainer
    #: reads it to decide what to compute.
    requires: ClassVar[str] = "losses"

    def __init__(self, num_losses: int, *, mode: str = "raw", eps: float = 1e-8):
        #: The Trainer calls the balancer on steps ``step % update_every == 0`` and reuses
        #: ``last_weights`` in between; value-based balancers update every step.
        self.update_every = 1
        self.num_losses = check_num_losses(num_losses)
        self.normalizer = LossNormalizer(self.num_losses, mode=mode, eps=eps)
        self.mode = mode
        self.eps = float(eps)
        self.calls = BalancerState(jnp.zeros((), jnp.int32))
        self.last_weights = BalancerState(jnp.ones((self.num_losses,), default_float()))

    def _update(self, x: jax.Array) -> jax.Array:
        """Returns the new ``(N,)`` weights from the preprocessed losses ``x`` and
        updates the subclass's state. ``self.calls`` still holds the number of
        earlier accepted calls."""
        raise NotImplementedError

    def _hparams(self) -> dict[str, Any]:
        """The subclass's own constructor arguments, for :meth:`config`."""
        return {}

    def config(self) -> dict[str, Any]:
        """Class name and constructor arguments (JSON-serialisable), for logging."""
        return {
            "class": type(self).__name__,
            "num_losses": self.num_losses,
            **self._hparams(),
            "mode": self.mode,
            "eps": self.eps,
        }

    def loss_vector(self, losses: jax.Array | Sequence[Any]) -> jax.Array:
        """``losses`` as the ``(num_losses,)`` vector of the default float, without
        gradient; for a subclass whose ``__call__`` takes more than the losses (with
        :meth:`guarded`).

        Raises:
            ValueError: not ``num_losses`` scalars.
        """
        n = self.num_losses
        if isinstance(losses, (list, tuple)):
            items = [jnp.asarray(item) for item in losses]
            for i, item in enumerate(items):
                if item.size != 1:
                    raise ValueError(f"losses[{i}] must be a scalar, got shape {item.shape}")
            if len(items) != n:
                raise ValueError(f"expected num_losses={n} losses, got {len(items)}")
            vec = jnp.stack([item.reshape(()).astype(default_float()) for item in items])
        else:
            vec = jnp.asarray(losses)
            if vec.ndim != 1:
                raise ValueError(
                    f"losses must be a 1-D array of length num_losses={n}, got shape {vec.shape}"
                )
            if vec.shape[0] != n:
                raise ValueError(f"expected num_losses={n} losses, got {vec.shape[0]}")
            vec = vec.astype(default_float())
        return jax.lax.stop_gradient(vec)

    def __call__(self, losses: jax.Array | Sequence[Any]) -> jax.Array:
        """Returns the ``(N,)`` weights (default float) for ``losses``; updates the state."""
        vec = self.loss_vector(losses)
        return self.guarded(vec, lambda: self._update(self.normalizer(vec)))

    def guarded(
        self,
        vec: jax.Array,
        compute: Callable[[], jax.Array],
        inputs_ok: jax.Array | bool = True,
    ) -> jax.Array:
        """Runs ``compute()`` (new weights, updating the state in place) under the NaN
        guard, as every call does; a subclass with its own ``__call__`` uses it. When
        ``vec``, ``inputs_ok`` (extra inputs such as gradients), the new weights or any new
        state value is not finite, every ``BalancerState`` keeps its old value and the
        previous weights are returned."""
        variables = [v for _, v in nnx.iter_graph(self) if isinstance(v, BalancerState)]
        old = [v[...] for v in variables]
        previous_weights = self.last_weights[...]

        weights = compute().astype(default_float())
        count = self.calls[...]
        self.calls[...] = jnp.where(count < _INT32_MAX, count + 1, count)
        self.last_weights[...] = weights

        # last_weights is among the variables, so the new weights are checked too.
        ok = jnp.all(jnp.isfinite(vec)) & jnp.asarray(inputs_ok)
        for v in variables:
            if jnp.issubdtype(v[...].dtype, jnp.inexact):
                ok = ok & jnp.all(jnp.isfinite(v[...]))
        for v, before in zip(variables, old):
            v[...] = jnp.where(ok, v[...], before)
        return jax.lax.stop_gradient(jnp.where(ok, weights, previous_weights))
