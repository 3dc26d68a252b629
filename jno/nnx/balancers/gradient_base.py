"""Base of the gradient-based balancers: the per-term gradient matrix and the base class.

:func:`per_term_gradients` turns the accepted gradient layouts into one ``(N, P)``
matrix; :class:`GradientBalancer` is the base of the balancers of
:mod:`jno.nnx.balancers.gradient`, which re-exports both names.

Example:
    >>> import jax.numpy as jnp
    >>> from jno.nnx.balancers.gradient_base import per_term_gradients
    >>> grads = [{"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([0.0, 3.0])}]
    >>> per_term_gradients(grads, 2).tolist()
    [[1.0, 2.0], [0.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_positive_int
from jno.nnx._dtype import default_float
from jno.nnx.balancers.base import Balancer, check_num_losses

__all__ = ["GradientBalancer", "per_term_gradients"]


def _ravel(tree: Any) -> jax.Array:
    leaves = [
        jnp.asarray(leaf).astype(default_float()).reshape(-1) for leaf in jax.tree.leaves(tree)
    ]
    return jnp.concatenate(leaves) if leaves else jnp.zeros((0,), default_float())


def per_term_gradients(grads: Any, num_losses: int) -> jax.Array:
    """Stacks the gradients of N losses into an ``(N, P)`` matrix (default float).

    Row ``i`` is the gradient of loss ``i`` flattened over all P parameters (leaves in
    ``jax.tree.leaves`` order), ``jax.lax.stop_gradient``-ed.

    Args:
        grads: One of
            * a ``list`` or ``tuple`` of N gradient pytrees, one per loss
              (e.g. ``[jax.grad(l)(params) for l in loss_fns]``);
            * an ``(N, P)`` array;
            * any other pytree whose every leaf has leading axis N, such as
              ``jax.jacrev(loss_vector)(params)`` for a dict or ``nnx.State`` of params.
              Leaves are reshaped to ``(N, -1)`` and concatenated. A ``jacrev`` over
              params that are themselves a list or tuple would be read as one pytree
              per loss: wrap them in a dict.
        num_losses: N.

    Returns:
        The ``(N, P)`` matrix, of the default float dtype (float32, float64 under
        ``jax_enable_x64``).

    Raises:
        ValueError: the number of gradients (list length or leading axis) is not
            ``num_losses``, the per-loss gradients differ in size, or there are no
            parameters.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jno.nnx.balancers.gradient import per_term_gradients
        >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
        >>> loss_vector = lambda p: jnp.stack([jnp.sum(p["w"]) * p["b"], p["b"] ** 2])
        >>> per_term_gradients(jax.jacrev(loss_vector)(params), 2).tolist()  # b, then w
        [[3.0, 3.0, 3.0], [6.0, 0.0, 0.0]]
    """
    n = check_num_losses(num_losses)
    if type(grads) in (list, tuple):
        if len(grads) != n:
            raise ValueError(
                f"expected num_losses={n} gradient pytrees (one per loss), got {len(grads)}"
            )
        rows = [_ravel(tree) for tree in grads]
        sizes = sorted({int(r.shape[0]) for r in rows})
        if len(sizes) != 1:
            raise ValueError(f"the per-loss gradients must have the same size, got sizes {sizes}")
        mat = jnp.stack(rows)
    else:
        leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(grads)]
        for leaf in leaves:
            if leaf.ndim == 0 or leaf.shape[0] != n:
                raise ValueError(
                    f"every leaf of grads must have leading axis num_losses={n}, "
                    f"got a leaf of shape {leaf.shape}"
                )
        cols = [leaf.astype(default_float()).reshape(n, -1) for leaf in leaves]
        mat = jnp.concatenate(cols, axis=1) if cols else jnp.zeros((n, 0), default_float())
    if mat.shape[1] == 0:
        raise ValueError("grads holds no parameters (P = 0)")
    return jax.lax.stop_gradient(mat)


class GradientBalancer(Balancer):
    """Base class of the balancers that weigh losses by their per-term gradients.

    ``balancer(losses, grads)`` returns the ``(N,)`` weights; ``grads`` is anything
    :func:`per_term_gradients` accepts. Subclasses implement
    ``_update_from_grads(x, g)`` (``x`` the preprocessed losses, ``g`` the ``(N, P)``
    gradient matrix) and :meth:`_hparams`. A call with a NaN or Inf in the losses or
    gradients returns the previous weights and leaves every state variable and
    ``calls`` unchanged.

    Embedded use: call the balancer on the steps where the per-term gradients are
    computed (``jax.jacrev(loss_vector)(params)``, N backward passes) and use
    ``balancer.last_weights[...]`` in between. The jno ``Trainer`` calls it on the
    steps ``step % update_every == 0`` and reuses ``last_weights`` otherwise.

    Args:
        num_losses: Number of losses N.
        update_every: Steps between two gradient-based updates, an integer >= 1
            (read by the Trainer; the balancer itself updates on every call).
        mode: ``"raw"``, ``"minmax"`` or ``"l2"`` loss preprocessing.
        eps: Small positive constant keeping ratios finite.

    Raises:
        TypeError: ``update_every`` is not an integer.
        ValueError: ``update_every`` < 1, or a base-class argument is invalid.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.gradient import GradientBalancer
        >>> class InverseNorm(GradientBalancer):  # weights 1 / ||g_i||
        ...     def _update_from_grads(self, x, g):
        ...         return 1.0 / (jnp.linalg.norm(g, axis=1) + self.eps)
        >>> b = InverseNorm(2, update_every=5)
        >>> b(jnp.array([1.0, 1.0]), jnp.array([[3.0, 4.0], [0.5, 0.0]])).tolist()
        [0.20000000298023224, 2.0]
        >>> b(jnp.array([1.0, 1.0]), jnp.array([[jnp.inf, 0.0], [1.0, 0.0]])).tolist()
        [0.20000000298023224, 2.0]
        >>> int(b.calls[...]), b.config()["update_every"]
        (1, 5)
    """

    requires: ClassVar[str] = "grads"

    def __init__(
        self, num_losses: int, *, update_every: int = 1, mode: str = "raw", eps: float = 1e-8
    ):
        update_every = check_positive_int("update_every", update_every)
        super().__init__(num_losses, mode=mode, eps=eps)
        self.update_every = update_every

    def _hparams(self) -> dict[str, Any]:
        return {"update_every": self.update_every}

    def _update_from_grads(self, x: jax.Array, g: jax.Array) -> jax.Array:
        """Returns the new ``(N,)`` weights from the preprocessed losses ``x`` and the
        ``(N, P)`` gradients ``g``, updating the subclass's state."""
        raise NotImplementedError

    def __call__(  # type: ignore[override]
        self, losses: jax.Array | Sequence[Any], grads: Any
    ) -> jax.Array:
        """Returns the ``(N,)`` weights (default float dtype) and updates the state."""
        vec = self.loss_vector(losses)
        g = per_term_gradients(grads, self.num_losses)
        return self.guarded(
            vec,
            lambda: self._update_from_grads(self.normalizer(vec), g),
            inputs_ok=jnp.all(jnp.isfinite(g)),
        )
