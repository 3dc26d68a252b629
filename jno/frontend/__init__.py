"""The front end: terms, their algebra, ``jno.core`` -> ``Crux`` and ``jno.fn.adaptive``.

A *term* (:mod:`jno.frontend.terms`, public as ``jno.terms``) is a named scalar loss of
networks on points; terms combine with numbers and with the weight placeholders of the
balancer factories in :mod:`jno.frontend.fn` (``jno.fn.adaptive``), and
:func:`~jno.frontend.crux.core` (``jno.core``) compiles a list of them into a
:class:`~jno.frontend.crux.Crux`, a :class:`~jno.train.Trainer`.
:func:`~jno.frontend.network.nn` (``jno.nn``) wraps a Flax module as a network whose
``.residual(fn, points)`` builds a term. The front end builds on the engine
(:mod:`jno.train`), the building blocks (:mod:`jno.nnx`) and :mod:`jno.ops`; the engine
never imports it.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno import frontend
    >>> net = frontend.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> pde = net.residual(lambda u, x: u(x) - x, jnp.ones((4, 1)), name="pde")
    >>> frontend.terms.residual is frontend.residual, pde
    (True, pde)
"""

from jno.frontend import fn, terms
from jno.frontend.crux import Crux, core
from jno.frontend.network import TermNetwork, nn
from jno.frontend.terms import (
    Data,
    Expr,
    Residual,
    Term,
    Tracker,
    Weight,
    balance,
    data,
    residual,
)

__all__ = [
    "Crux",
    "Data",
    "Expr",
    "Residual",
    "Term",
    "TermNetwork",
    "Tracker",
    "Weight",
    "balance",
    "core",
    "data",
    "fn",
    "nn",
    "residual",
    "terms",
]
