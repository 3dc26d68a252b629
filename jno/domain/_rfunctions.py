"""Rvachev's R0 functions: Boolean combinations of signed distances (positive inside).

``r_or(a, b) = a + b + sqrt(a^2 + b^2)`` is positive exactly where ``a > 0`` or
``b > 0`` and zero exactly on the boundary of the union; ``r_and(a, b) = a + b -
sqrt(a^2 + b^2)`` likewise for the intersection. Both keep a distance normalised to
first order: where one argument is zero and the other is not, the result's gradient is
the zero argument's gradient. Their derivatives are singular only where ``a = b = 0``
(the corners of the combination).

Example:
    >>> import jax.numpy as jnp
    >>> from jno.domain._rfunctions import r_and, r_or
    >>> float(r_or(jnp.float32(0.0), jnp.float32(-1.0))), float(r_and(jnp.float32(2.0), 0.0))
    (0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import jax
import jax.numpy as jnp


def r_or(a: jax.Array, b: jax.Array) -> jax.Array:
    """R0 disjunction (union).

    Example:
        >>> float(r_or(1.0, -1.0)) > 0
        True
    """
    return a + b + jnp.sqrt(a * a + b * b)


def r_and(a: jax.Array, b: jax.Array) -> jax.Array:
    """R0 conjunction (intersection).

    Example:
        >>> float(r_and(1.0, -1.0)) < 0
        True
    """
    return a + b - jnp.sqrt(a * a + b * b)


def r_and_all(values: Sequence[jax.Array]) -> jax.Array:
    """R0 conjunction of several values, folded left to right.

    Example:
        >>> float(r_and_all([1.0, 1.0, 0.0]))
        0.0
    """
    return reduce(r_and, values)
