"""Compiled draws shared by equal samplers.

A sampler is a function of the key only, so two samplers built from equal arguments
(the same kind of shape with the same bounds, the same ``n``, the same parts) draw the
same points. Each gets the one ``jax.jit`` of its description here: a program compiles
once per process however many equal boxes and point sets a script builds, instead of
once per point set.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import jax

__all__ = ["shared_draw"]

_LIMIT = 512  # descriptions kept; the oldest is dropped (its program with it)
_DRAWS: OrderedDict[Hashable, Callable[[jax.Array], jax.Array]] = OrderedDict()


def shared_draw(
    description: Hashable, make: Callable[[], Callable[[jax.Array], jax.Array]]
) -> Callable[[jax.Array], jax.Array]:
    """The compiled draw of ``description``, made from ``make()`` the first time.

    Args:
        description: hashable, equal exactly when the draws of ``make()`` are equal
            functions of the key.
        make: builds the draw, a pure function of the key.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> a = shared_draw(("ones", 3), lambda: lambda key: jnp.ones(3))
        >>> a is shared_draw(("ones", 3), lambda: lambda key: jnp.zeros(3))
        True
    """
    draw = _DRAWS.get(description)
    if draw is None:
        draw = _DRAWS[description] = jax.jit(make())
        if len(_DRAWS) > _LIMIT:
            _DRAWS.popitem(last=False)
    else:
        _DRAWS.move_to_end(description)
    return draw
