"""``jno.train.nn``: wrap any Flax NNX module as a trainable network.

The engine's network knows nothing of terms; ``jno.nn`` (the front end's
:func:`jno.frontend.network.nn`) returns a subclass that adds ``net.residual(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import optax
from flax import nnx

from jno.ops.fields import FieldSet
from jno.optim import QuasiNewton
from jno.train.optim import OptimizerSpec

__all__ = ["Network", "nn"]


class Network(nnx.Module):
    """A trainable network: any ``nnx.Module`` plus its optimizer.

    Calling the network calls the wrapped module. :meth:`optimizer` attaches an optax
    transformation (and, through ``.scale``, a learning-rate schedule); calling it again
    replaces the optimizer, which is how multi-phase training (Adam, then L-BFGS) works.

    Args:
        module: The wrapped ``nnx.Module`` (parameters are its ``nnx.Param`` variables).
        name: Name used in logs (``lr/<name>``) when a trainer has several networks.
        fields: Names of the module's outputs (``("u", "v", "p")``), one per output
            column: ``Trainer.losses`` and the terms then get a
            :class:`~jno.ops.FieldSet` of the module (``u, v, p = net``) in its place.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from flax import nnx
        >>> net = nn(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
        >>> net(jnp.ones((5, 2))).shape
        (5, 1)
        >>> spec = net.optimizer(optax.adam(1e-3))
        >>> net.optimizer_spec is spec
        True
    """

    def __init__(
        self, module: nnx.Module, *, name: str | None = None, fields: Sequence[str] | None = None
    ):
        if not isinstance(module, nnx.Module):
            raise TypeError(f"module must be a flax.nnx.Module, got {type(module).__name__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.module = module
        self.name = name
        self.fields: tuple[str, ...] | None = None
        if fields is not None:
            self.fields = FieldSet(module, fields).names
            width = getattr(module, "out_features", None)
            if isinstance(width, int) and width != len(self.fields):
                raise ValueError(
                    f"fields names {len(self.fields)} outputs {list(self.fields)}, but the "
                    f"module has out_features={width}"
                )
        self.optimizer_spec: OptimizerSpec | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def view(self, module: nnx.Module) -> Any:
        """What the losses get for this network's (live) ``module``: the module, or its
        :class:`~jno.ops.FieldSet` when the network has named fields."""
        return module if self.fields is None else FieldSet(module, self.fields)

    def optimizer(self, tx: optax.GradientTransformation) -> OptimizerSpec:
        """Sets (or replaces) the optimizer; returns a spec whose ``.scale(s)`` sets the rate.

        Raises:
            ValueError: a dense quasi-Newton ``tx`` (:class:`jno.optim.QuasiNewton`)
                whose ``P x P`` matrix exceeds its ``max_hessian_bytes`` for this
                network (checked here, before anything is allocated).
        """
        spec = OptimizerSpec(tx)
        if isinstance(tx, QuasiNewton):
            jax.eval_shape(tx.init, nnx.state(self.module, nnx.Param))
        self.optimizer_spec = spec
        return spec


def nn(
    module: nnx.Module, *, name: str | None = None, fields: Sequence[str] | None = None
) -> Network:
    """Wraps ``module`` as a trainable :class:`Network` (``jno.train.nn``).

    Example:
        >>> from flax import nnx
        >>> net = nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), name="u")
        >>> net.name
        'u'
    """
    return Network(module, name=name, fields=fields)
