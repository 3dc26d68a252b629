"""Loss preprocessing for the adaptive balancers: ``raw``, ``minmax`` and ``l2``.

A balancer never looks at the raw losses directly: it first passes them through a
:class:`LossNormalizer`. The normalised values only drive the weight computation;
the losses that are trained stay untouched.

Modes (``L`` is the length-N loss vector of the current call):

* ``"raw"``: ``x = L``.
* ``"minmax"``: each loss is scaled to ``[0, 1]`` over its own observed range,
  ``x_i = (L_i - min_i) / (max_i - min_i)``, where ``min_i`` and ``max_i`` are the
  running minimum and maximum of loss ``i`` over every call so far, the current one
  included (kept in :class:`~jno.nnx.state.BalancerState` variables). While a loss
  has only ever shown one value (``max_i == min_i``, e.g. on the first call) its
  range is a single point and ``x_i = 1``: a loss that has not moved counts as
  sitting at the top of its range, which keeps ratios against it finite and
  neutral. ``eps`` is not used, so tiny losses (``1e-10``) still spread over
  ``[0, 1]``.
* ``"l2"``: ``x = L / (||L||_2 + eps)``. All-zero losses give ``x = 0``.

Every mode maps finite losses to finite values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jno.nnx._checks import check_choice, check_real
from jno.nnx._dtype import default_float
from jno.nnx.state import BalancerState

__all__ = ["MODES", "LossNormalizer"]

MODES = ("raw", "minmax", "l2")


class LossNormalizer(nnx.Module):
    """Preprocesses a loss vector before a balancer computes weights from it.

    Args:
        num_losses: Number of losses N.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` (see the module docstring).
        eps: Added to the L2 norm in ``"l2"`` mode; must be > 0.

    Raises:
        ValueError: ``mode`` is not one of ``MODES`` or ``eps`` is not > 0.

    Calling ``normalizer(losses)`` with an ``(N,)`` array of the default float dtype returns the
    normalised ``(N,)`` array; in ``"minmax"`` mode it also folds the losses into
    the running ``min`` / ``max`` state.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.normalize import LossNormalizer
        >>> norm = LossNormalizer(2, mode="minmax")
        >>> norm(jnp.array([4.0, 1.0])).tolist()  # one value seen so far: top of range
        [1.0, 1.0]
        >>> norm(jnp.array([2.0, 3.0])).tolist()
        [0.0, 1.0]
        >>> norm(jnp.array([3.0, 2.0])).tolist()
        [0.5, 0.5]
        >>> LossNormalizer(2, mode="l2")(jnp.array([3.0, 4.0])).tolist()
        [0.6000000238418579, 0.800000011920929]
    """

    def __init__(self, num_losses: int, *, mode: str = "raw", eps: float = 1e-8):
        self.mode = check_choice("mode", mode, MODES)
        self.eps = check_real("eps", eps, minimum=0.0, min_open=True)
        self.num_losses = int(num_losses)
        if mode == "minmax":
            # Finite extremes instead of +-inf keep every state value finite; the first
            # call replaces them by its losses.
            dtype = default_float()
            big = float(jnp.finfo(dtype).max)
            self.min = BalancerState(jnp.full((self.num_losses,), big, dtype))
            self.max = BalancerState(jnp.full((self.num_losses,), -big, dtype))

    def __call__(self, losses: jax.Array) -> jax.Array:
        if self.mode == "raw":
            return losses
        if self.mode == "l2":
            # Losses above 2**60 are scaled by the exact power of two 2**-70 first, so the
            # squares cannot overflow float32 (nor float64); the ratio is unchanged.
            big = jnp.max(jnp.abs(losses)) > 2.0**60
            scale = jnp.where(big, 2.0**-70, 1.0)
            scaled = losses * scale
            return scaled / (jnp.sqrt(jnp.sum(scaled * scaled)) + self.eps * scale)
        lo = jnp.minimum(self.min[...], losses)
        hi = jnp.maximum(self.max[...], losses)
        self.min[...] = lo
        self.max[...] = hi
        span = hi - lo
        has_range = span > 0
        return jnp.where(has_range, (losses - lo) / jnp.where(has_range, span, 1.0), 1.0)
