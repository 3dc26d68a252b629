"""One compiled program per eager call of a shape's geometry methods.

A geometry method (``distance``, ``normal``, ...) is a few dozen small ``jax.numpy``
operations. Called eagerly, JAX would dispatch them one by one and compile each for
every new number of points; :func:`compiled` instead runs the whole method as one
``jax.jit`` program with the shape as a static argument (shapes hash by identity).
Under a trace (``jax.jit``, ``vmap``, ``grad``, ``jvp`` of user code) the method runs
as written, inlined in the caller's program. The points are checked before any
tracing, so a wrong shape raises the usual error at the call.

Example:
    >>> from jno.domain import Disk
    >>> Disk([0.0, 0.0], 1.0).distance([[0.0, 0.0], [0.0, 3.0]]).tolist()
    [1.0, -2.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

from jno.domain._args import point_array

Method = TypeVar("Method", bound=Callable[..., Any])


def compiled(method: Method) -> Method:
    """Wrap ``method(self, x, ...)`` of a shape so that an eager call is one program.

    ``x`` is checked and turned into an array (:func:`~jno.domain._args.point_array`);
    when no argument holds a tracer, the call goes through ``jax.jit`` with ``self``
    static (the other arguments are arrays too), else straight to ``method``.

    Args:
        method: a geometry method ``(self, x, *arrays) -> array`` of pure JAX code.

    Returns:
        the wrapped method, with the docstring and signature of ``method``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.domain import Disk
        >>> class Twice(Disk):
        ...     @compiled
        ...     def distance(self, x):
        ...         return 2 * super().distance(x)
        >>> Twice([0, 0], 1.0).distance(jnp.zeros((1, 2))).tolist()
        [2.0]
    """
    jitted = jax.jit(method, static_argnums=0)

    @functools.wraps(method)
    def wrapper(self: Any, x: Any, *arrays: Any, **named: Any) -> Any:
        x = point_array(x, self.dim)
        leaves = jax.tree_util.tree_leaves((x, arrays, named))
        if any(isinstance(a, jax.core.Tracer) for a in leaves):
            return method(self, x, *arrays, **named)
        return jitted(self, x, *arrays, **named)

    return wrapper  # type: ignore[return-value]
