"""The floating dtype the library creates its arrays in.

Every float array jno makes (sampled points, balancer and schedule state, metrics,
weights, constants) uses :func:`default_float`: float32 by default, float64 once
``jax.config.update("jax_enable_x64", True)`` is set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["default_float"]


def default_float() -> np.dtype:
    """The current default floating dtype of JAX, read at call time.

    Returns:
        ``float64`` when ``jax_enable_x64`` is set, ``float32`` otherwise.

    Example:
        >>> default_float()  # without jax_enable_x64
        dtype('float32')
    """
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))
