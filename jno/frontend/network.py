"""``jno.nn``: a trainable network that also builds terms (``net.residual(fn, points)``).

:class:`TermNetwork` is the engine's :class:`~jno.train.network.Network` plus the
front-end method :meth:`TermNetwork.residual`; everything the engine does with a
``Network`` (training, checkpoints, ``isinstance`` checks) it does with a
``TermNetwork``. The engine's own ``jno.train.nn`` builds a plain ``Network``, which
terms accept as well (``jno.residual(fn, points, nets=net)``).

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jno
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), name="u")
    >>> bc = net.residual(lambda u, x: u(x), jnp.zeros((1, 1)), name="bc")
    >>> isinstance(net, jno.train.Network), bc.name, bc.nets[0] is net
    (True, 'bc', True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flax import nnx

from jno.frontend.terms import Residual, neumann, residual, robin
from jno.train.network import Network

__all__ = ["TermNetwork", "nn"]


class TermNetwork(Network):
    """A :class:`~jno.train.network.Network` whose :meth:`residual` builds a term of it.

    Args:
        module: The wrapped ``nnx.Module``.
        name: Name used in logs when a trainer has several networks.
        fields: Names of the module's outputs: ``fn(u, x)`` of its residuals then gets
            their :class:`~jno.ops.FieldSet` as ``u`` (``u.p``, ``u, v, p = U``).
    """

    def residual(
        self,
        fn: Callable[..., Any],
        points: Any,
        *,
        name: str | None = None,
        reduce: str = "mse",
    ) -> Residual:
        """A residual term of this network: ``mean(fn(u, x) ** 2)`` over ``points``.

        Same as ``jno.residual(fn, points, nets=self, name=name, reduce=reduce)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> net = nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> pde = net.residual(lambda u, x: u(x) - x, jnp.ones((4, 1)), name="pde")
            >>> pde.name, pde.reduce
            ('pde', 'mse')
        """
        return residual(fn, points, nets=self, name=name, reduce=reduce)

    def neumann(self, points: Any, normals: Any, value: Any = None, **kwargs: Any) -> Residual:
        """A Neumann term of this network: :func:`jno.terms.neumann` ``(self, ...)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> net = nn(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
            >>> net.neumann(jnp.ones((3, 2)), jnp.ones((3, 2)) / 2**0.5, 1.0, name="wall").name
            'wall'
        """
        return neumann(self, points, normals, value, **kwargs)

    def robin(self, points: Any, normals: Any, **kwargs: Any) -> Residual:
        """A Robin term of this network: :func:`jno.terms.robin` ``(self, ...)``."""
        return robin(self, points, normals, **kwargs)


def nn(
    module: nnx.Module, *, name: str | None = None, fields: Sequence[str] | None = None
) -> TermNetwork:
    """Wraps ``module`` as a trainable network with ``.residual`` (``jno.nn``).

    Example:
        >>> from flax import nnx
        >>> net = nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), name="u")
        >>> type(net).__name__, net.name
        ('TermNetwork', 'u')
    """
    return TermNetwork(module, name=name, fields=fields)
