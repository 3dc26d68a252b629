"""Differential operators on a network, evaluated on a batch of points.

Every operator takes a callable ``u`` (a function, an :class:`flax.nnx.Module`, ...)
and points ``x`` of shape ``(n, d)``. ``u(x)`` returns ``(n,)`` or ``(n, 1)`` (the same
thing: one scalar per point) or, for :func:`divergence`, a vector field ``(n, d)``.

A network with several outputs (``u``, ``v``, ``p`` of a flow) is differentiated per
output: ``output=k`` picks column ``k``, or pass one of its fields
(:func:`fields`, :mod:`jno.ops.fields`); ``divergence(U, x, outputs=("u", "v"))`` takes
the vector field from chosen outputs. Inside a shared run one Taylor pass per (network,
points) carries the derivatives of every output the loss asks for.

How derivatives are taken:
    A network built on :class:`jno.nnx.JetModule` (``MLP``, ``ModifiedMLP``, or ``jno.nn``
    wrapping one) propagates the requested input derivatives forward through its layers
    in one pass (Taylor mode, see :mod:`jno.nnx.networks.jets`): the primal activations are
    computed once and shared by every derivative. Inside a loss function run through
    :func:`share_derivatives` (the ``Trainer`` and ``jno.core`` do this for you), all
    operators called on the same network and the same points array share a single such
    pass, and the network's own value ``u(x)`` comes from it too.

    Any other callable ``u`` is differentiated with JAX's forward mode. A PINN network
    acts *row-wise*: output row ``k`` depends on input row ``k`` only. For such a ``u``
    the Jacobian of the whole batch function is block diagonal, so one forward-mode
    product (``jax.jvp``) with the tangent ``e_i`` tiled over all ``n`` rows returns
    ``du/dx_i`` at every point at once, and a jvp of that jvp returns a second
    derivative. :func:`grad` takes one reverse pass instead (the gradient of
    ``sum_k u(x_k)``), which is cheaper than ``d`` forward passes.

    A network that mixes rows (batch norm in training mode, attention over the batch,
    ...) breaks that assumption: pass ``pointwise=False`` and each point is then fed to
    ``u`` on its own, as a batch of one row, under ``jax.vmap``. The result is the
    derivative of that one-point function.

Example:
    >>> import jax.numpy as jnp
    >>> from jno import ops
    >>> u = lambda x: x[:, 0] ** 2 + 3.0 * x[:, 0] * x[:, 1]
    >>> x = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    >>> ops.grad(u, x).tolist()
    [[8.0, 3.0], [-2.0, 1.5]]
    >>> ops.laplacian(u, x).tolist()
    [2.0, 2.0]
"""

from jno.ops.boundary import neumann, normal_derivative, robin
from jno.ops.derivatives import (
    divergence,
    grad,
    hessian,
    laplacian,
    partial,
    partial2,
    share_derivatives,
)
from jno.ops.fields import Field, FieldSet, fields

__all__ = [
    "Field",
    "FieldSet",
    "divergence",
    "fields",
    "grad",
    "hessian",
    "laplacian",
    "neumann",
    "normal_derivative",
    "partial",
    "partial2",
    "robin",
    "share_derivatives",
]
