"""Neural-tangent-kernel loss balancing for PINNs.

:func:`ntk_diagonal` computes the diagonal of the empirical NTK of a residual vector,
``K(x_p, x_p) = ||d r_p / d theta||^2``, and :class:`NTKBalancer` turns the NTK traces of
the N loss terms into weights that equalise their convergence rates
(Wang, Yu & Perdikaris 2022). The balancer's state lives in
:class:`~jno.nnx.state.BalancerState` variables, so it runs inside a compiled step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_positive_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.balancers.base import Balancer
from jno.nnx.state import BalancerState

__all__ = ["NTKBalancer", "NTKBasedBalancer", "ntk_diagonal"]


def _flat_residual(out: Any) -> jax.Array:
    if isinstance(out, (tuple, list)):
        return jnp.concatenate([jnp.reshape(jnp.asarray(o), (-1,)) for o in out])
    return jnp.reshape(jnp.asarray(out), (-1,))


def ntk_diagonal(residual_fn: Callable[[Any], Any], params: Any) -> jax.Array:
    """Diagonal of the empirical neural tangent kernel of a residual vector.

    For ``r = residual_fn(params)`` of length n::

        K(x_p, x_p) = ||d r_p / d params||^2 = sum over every parameter entry theta of
                      (d r_p / d theta)^2

    computed from the per-point Jacobian (``jax.jacrev`` of the residual vector). The
    cost is n backward passes and an ``(n, P)`` Jacobian for P parameters, so on large
    point sets it is usually evaluated on a subsample (the traces it feeds
    :class:`NTKBalancer` are then means times n, whose ratios are what matter).

    Args:
        residual_fn: ``params -> residual``. The residual is an array of any shape
            (``(n,)`` or ``(n, 1)``, flattened) or a tuple/list of arrays, each flattened
            and concatenated.
        params: A pytree of float arrays (a dict, or the ``nnx.Param`` state of
            ``nnx.split(net, nnx.Param, ...)``); it must hold no integer leaves.

    Returns:
        The ``(n,)`` NTK diagonal, non-negative.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.ntk import ntk_diagonal
        >>> x = jnp.array([[1.0, 2.0], [3.0, 0.0], [0.0, 0.5]])
        >>> params = {"w": jnp.array([0.3, -0.7])}
        >>> ntk_diagonal(lambda p: x @ p["w"], params).tolist()  # linear model: ||x_p||^2
        [5.0, 9.0, 0.25]
        >>> both = ntk_diagonal(lambda p: (x[:2] @ p["w"], 2.0 * x[2:] @ p["w"]), params)
        >>> both.tolist()
        [5.0, 9.0, 1.0]
    """
    jac = jax.jacrev(lambda p: _flat_residual(residual_fn(p)))(params)
    leaves = jax.tree_util.tree_leaves(jac)
    if not leaves:  # no parameters: the kernel is zero
        return jnp.zeros_like(_flat_residual(residual_fn(params)))
    rows = [jnp.sum(jnp.reshape(leaf, (leaf.shape[0], -1)) ** 2, axis=1) for leaf in leaves]
    return sum(rows[1:], rows[0])


class NTKBasedBalancer(Balancer):
    """Interface of the balancers whose weights come from per-term NTK diagonals.

    The trainer computes, every ``update_every`` steps, the per-point NTK diagonal of
    each term's residual (:func:`ntk_diagonal`) and calls
    ``balancer(losses, ntk_diagonals)``; in between it reuses ``last_weights``. A
    subclass sets ``self.update_every`` and implements ``__call__``.

    Example:
        >>> issubclass(NTKBalancer, NTKBasedBalancer)
        True
    """

    requires: ClassVar[str] = "ntk"
    update_every: int

    def __call__(  # type: ignore[override]
        self, losses: jax.Array | Sequence[Any], ntk_diagonals: jax.Array | Sequence[Any]
    ) -> jax.Array:
        raise NotImplementedError


class NTKBalancer(NTKBasedBalancer):
    """NTK loss balancing: each term weighted by the total NTK trace over its own.

    Wang, Yu & Perdikaris, "When and why PINNs fail to train: a neural tangent kernel
    perspective", J. Comput. Phys. 449 (2022), 110768.

    Under gradient flow, loss term i decays at rates set by the eigenvalues of its NTK
    block ``K_i``; its average rate is ``tr(K_i) / n_i``. Terms with a small trace are
    learned slowly. With ``tr(K) = sum_i tr(K_i)``::

        lam_hat_i = tr(K) / (tr(K_i) + eps)
        lam       = momentum * lam_prev + (1 - momentum) * lam_hat

    ``lam_prev`` is ones before the first call and the previous weights after it;
    ``momentum=0`` is the paper's plain assignment. The weights do not depend on the
    loss values, which are only checked for NaN/Inf (and ``mode`` has no effect on the
    weights). A call where a loss, a trace or a new weight is not finite keeps the
    previous weights and state.

    The NTK is costly, so the Trainer updates the weights every ``update_every`` steps
    (``requires = "ntk"`` tells it to compute the per-term diagonals with
    :func:`ntk_diagonal`) and reuses ``last_weights`` in between.

    Args:
        num_losses: Number of loss terms N.
        momentum: Weight of the previous weights in the running average, in ``[0, 1)``.
        update_every: Steps between NTK evaluations in the Trainer, an integer >= 1.
        mode: ``"raw"``, ``"minmax"`` or ``"l2"``; accepted for a uniform interface.
        eps: Keeps ``lam_hat`` finite when a trace is 0.

    Attributes:
        traces: ``BalancerState`` ``(N,)`` traces ``tr(K_i)`` of the last accepted call.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.balancers.ntk import NTKBalancer
        >>> b = NTKBalancer(2, update_every=10)
        >>> diags = [jnp.array([1.0, 2.0, 1.0]), jnp.array([36.0])]  # traces 4 and 36
        >>> [round(float(v), 4) for v in b(jnp.array([0.5, 0.1]), diags)]  # 40/4, 40/36
        [10.0, 1.1111]
        >>> b2 = NTKBalancer(2, momentum=0.5)
        >>> [round(float(v), 4) for v in b2(jnp.array([0.5, 0.1]), jnp.array([4.0, 36.0]))]
        [5.5, 1.0556]
    """

    def __init__(
        self,
        num_losses: int,
        *,
        momentum: float = 0.0,
        update_every: int = 100,
        mode: str = "raw",
        eps: float = 1e-8,
    ):
        check_real("momentum", momentum)  # NaN and infinities: "must be finite"
        momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0, max_open=True)
        update_every = check_positive_int("update_every", update_every)
        super().__init__(num_losses, mode=mode, eps=eps)
        self.momentum = momentum
        self.update_every = update_every
        self.traces = BalancerState(jnp.zeros((self.num_losses,), default_float()))

    def _hparams(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "update_every": self.update_every}

    def _traces(self, ntk_diagonals: jax.Array | Sequence[Any]) -> jax.Array:
        n = self.num_losses
        if isinstance(ntk_diagonals, (list, tuple)):
            if len(ntk_diagonals) != n:
                raise ValueError(f"expected num_losses={n} NTK diagonals, got {len(ntk_diagonals)}")
            items = [jnp.asarray(d) for d in ntk_diagonals]
            for i, d in enumerate(items):
                if d.ndim > 1:
                    raise ValueError(
                        f"ntk_diagonals[{i}] must be a 1-D NTK diagonal, got shape {d.shape}"
                    )
            traces = jnp.stack([jnp.sum(d.astype(default_float())) for d in items])
        else:
            arr = jnp.asarray(ntk_diagonals)
            if arr.ndim not in (1, 2) or arr.shape[0] != n:
                raise ValueError(
                    f"ntk_diagonals must be a list of num_losses={n} NTK diagonals, an ({n},) "
                    f"array of traces or an ({n}, n) array of diagonals, got shape {arr.shape}"
                )
            arr = arr.astype(default_float())
            traces = arr if arr.ndim == 1 else jnp.sum(arr, axis=1)
        return jax.lax.stop_gradient(traces)

    def __call__(  # type: ignore[override]
        self, losses: jax.Array | Sequence[Any], ntk_diagonals: jax.Array | Sequence[Any]
    ) -> jax.Array:
        """Returns the ``(N,)`` weights from the per-term NTK diagonals (a list of N
        1-D arrays) or traces (an ``(N,)`` array) and updates the state."""
        vec = self.loss_vector(losses)
        traces = self._traces(ntk_diagonals)

        def compute() -> jax.Array:
            lam_hat = jnp.sum(traces) / (traces + self.eps)
            self.traces[...] = traces
            return self.momentum * self.last_weights[...] + (1.0 - self.momentum) * lam_hat

        return self.guarded(vec, compute, inputs_ok=jnp.all(jnp.isfinite(traces)))
