"""Functional front end: ``jno.fn.adaptive`` holds the factories of adaptive components.

``jno.fn.adaptive`` is a namespace (a class of static methods, never instantiated).
Each factory builds one adaptive module whose state lives on the device: the
loss-adaptive learning-rate schedules (``dlrs``, ``reduce_on_plateau``), the loss
balancers (``relobralo``, ``softadapt``, ``dwa``, ``lbpinns_loss_balancing``, ``rlw``),
the gradient- and NTK-based ones (``grad_norm_balancer``, ``lr_annealing``,
``gradnorm``, ``ntk_balancer``) and causal weights in time (``causal_weights``).
A balancer factory takes the list of terms to balance and returns one weight
placeholder per term (see :mod:`jno.terms`); ``jno.core`` computes the weights inside
its compiled step.

Example:
    >>> import jno
    >>> s = jno.fn.adaptive.dlrs(lr0=1e-3, window=10)
    >>> type(s).__name__, s.stateful
    ('DLRS', True)
"""

from __future__ import annotations

from collections.abc import Sequence

from jno.frontend.terms import Expr, Weight, balance
from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt
from jno.nnx.balancers.causal import CausalWeights
from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing
from jno.nnx.balancers.ntk import NTKBalancer
from jno.nnx.schedules import DLRS, ReduceOnPlateau


def _count(terms: Sequence[Expr]) -> int:
    if isinstance(terms, Expr) or not isinstance(terms, list | tuple) or not terms:
        raise TypeError(f"terms must be a non-empty list of terms, e.g. [pde, bc], got {terms!r}")
    return len(terms)


__all__ = ["adaptive"]


class adaptive:  # noqa: N801 - a lower-case namespace, used as jno.fn.adaptive.<factory>
    """Factories of adaptive components (``jno.fn.adaptive.<name>(...)``).

    Add a factory as a ``staticmethod`` whose arguments mirror the constructor it wraps,
    with a docstring and a doctest.
    """

    def __init__(self) -> None:
        raise TypeError("jno.fn.adaptive is a namespace of factories; call its functions")

    @staticmethod
    def dlrs(
        lr0: float = 1e-3,
        window: int = 10,
        decremental_factor: float = 0.5,
        stagnation_factor: float = 0.1,
        increment_factor: float = 0.1,
        min_lr: float | None = 1e-10,
        max_lr: float | None = 1.0,
        eps: float = 1e-12,
    ) -> DLRS:
        """Dynamic Learning Rate Scheduler: a :class:`~jno.nnx.schedules.DLRS`.

        Pass it to ``net.optimizer(optax.adam(1)).scale(...)``; each step's losses move
        the rate up or down from the recent loss trend (see ``DLRS`` for the rule).

        Example:
            >>> import jno
            >>> s = jno.fn.adaptive.dlrs(lr0=1e-3, window=5, min_lr=1e-6, max_lr=1e-2)
            >>> s.config()["window"], float(s(0, [2.0]))
            (5, 0.0010000000474974513)
        """
        return DLRS(
            lr0=lr0, window=window, decremental_factor=decremental_factor,
            stagnation_factor=stagnation_factor, increment_factor=increment_factor,
            min_lr=min_lr, max_lr=max_lr, eps=eps,
        )  # fmt: skip

    @staticmethod
    def reduce_on_plateau(
        lr0: float,
        factor: float = 0.5,
        patience: int = 100,
        cooldown: int = 0,
        threshold: float = 1e-4,
        min_lr: float | None = 0.0,
        max_lr: float | None = None,
    ) -> ReduceOnPlateau:
        """Reduce-on-plateau schedule: a :class:`~jno.nnx.schedules.ReduceOnPlateau`.

        Example:
            >>> import jno
            >>> s = jno.fn.adaptive.reduce_on_plateau(1e-3, factor=0.1, patience=50)
            >>> s.config()["factor"]
            0.1
        """
        return ReduceOnPlateau(
            lr0, factor=factor, patience=patience, cooldown=cooldown, threshold=threshold,
            min_lr=min_lr, max_lr=max_lr,
        )  # fmt: skip

    # ------------------------------------------------------------------- balancers
    @staticmethod
    def relobralo(
        terms: Sequence[Expr],
        alpha: float = 0.99,
        tau: float = 0.1,
        expected_rho: float = 0.999,
        seed: int = 42,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """ReLoBRaLo weights for ``terms``: one :class:`~jno.nnx.balancers.ReLoBRaLo`.

        Returns one weight placeholder per term (see ``ReLoBRaLo`` for the update).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> pde = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="pde")
            >>> bc = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="bc")
            >>> w_pde, w_bc = jno.fn.adaptive.relobralo([pde, bc], alpha=0.99, seed=42)
            >>> w_pde, type(w_pde.group.module).__name__
            (w_pde, 'ReLoBRaLo')
        """
        module = ReLoBRaLo(
            _count(terms), alpha=alpha, tau=tau, expected_rho=expected_rho, seed=seed,
            mode=mode, eps=eps,
        )  # fmt: skip
        return balance(module, terms)

    @staticmethod
    def softadapt(
        terms: Sequence[Expr], beta: float = 0.1, *, mode: str = "raw", eps: float = 1e-8
    ) -> tuple[Weight, ...]:
        """SoftAdapt weights for ``terms`` (:class:`~jno.nnx.balancers.SoftAdapt`).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
            >>> len(jno.fn.adaptive.softadapt([a, 2 * a], beta=0.5, mode="l2"))
            2
        """
        return balance(SoftAdapt(_count(terms), beta=beta, mode=mode, eps=eps), terms)

    @staticmethod
    def dwa(
        terms: Sequence[Expr], temperature: float = 2.0, *, mode: str = "raw", eps: float = 1e-8
    ) -> tuple[Weight, ...]:
        """Dynamic Weight Average weights for ``terms`` (:class:`~jno.nnx.balancers.DWA`).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
            >>> (w,) = jno.fn.adaptive.dwa([a], temperature=1.0)
            >>> w.group.module.temperature
            1.0
        """
        return balance(DWA(_count(terms), temperature=temperature, mode=mode, eps=eps), terms)

    @staticmethod
    def lbpinns_loss_balancing(
        terms: Sequence[Expr],
        init_s: float | Sequence[float] = 0.0,
        lr_s: float = 1e-2,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """LbPINNs weights (learnable log-variances) for ``terms``.

        See :class:`~jno.nnx.balancers.LbPINNsLossBalancing`.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
            >>> b = net.residual(lambda u, x: u(x) - 1, jnp.ones((4, 1)), name="b")
            >>> w = jno.fn.adaptive.lbpinns_loss_balancing([a, b], init_s=0.0, lr_s=1e-2)
            >>> w[0].group.module.config()["lr_s"]
            0.01
        """
        module = LbPINNsLossBalancing(_count(terms), init_s=init_s, lr_s=lr_s, mode=mode, eps=eps)
        return balance(module, terms)

    @staticmethod
    def rlw(
        terms: Sequence[Expr],
        alpha: float = 1.0,
        seed: int = 42,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """Random Loss Weighting for ``terms`` (:class:`~jno.nnx.balancers.RLW`).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
            >>> [w.index for w in jno.fn.adaptive.rlw([a, a + 1 * a], seed=0)]
            [0, 1]
        """
        return balance(RLW(_count(terms), alpha=alpha, seed=seed, mode=mode, eps=eps), terms)

    # ------------------------------------------------ gradient, NTK and causal weighting
    @staticmethod
    def grad_norm_balancer(
        terms: Sequence[Expr],
        momentum: float = 0.9,
        update_every: int = 100,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """Inverse gradient-norm weights for ``terms``
        (:class:`~jno.nnx.balancers.gradient.GradNormBalancer`).

        ``jno.core`` computes the per-term gradients every ``update_every`` steps.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> pde = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="pde")
            >>> bc = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="bc")
            >>> w = jno.fn.adaptive.grad_norm_balancer([pde, bc], update_every=10)
            >>> w[0].group.module.update_every, w[0].group.module.requires
            (10, 'grads')
        """
        module = GradNormBalancer(
            _count(terms), momentum=momentum, update_every=update_every, mode=mode, eps=eps
        )
        return balance(module, terms)

    @staticmethod
    def lr_annealing(
        terms: Sequence[Expr],
        reference: int = 0,
        beta: float = 0.9,
        update_every: int = 10,
        weighted_gradients: bool = True,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """Learning-rate annealing weights for ``terms``
        (:class:`~jno.nnx.balancers.gradient.LRAnnealing`); ``terms[reference]`` is the
        PDE residual, whose weight stays 1.

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> pde = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="pde")
            >>> bc = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="bc")
            >>> w_pde, w_bc = jno.fn.adaptive.lr_annealing([pde, bc])
            >>> type(w_bc.group.module).__name__, w_bc.group.module.update_every
            ('LRAnnealing', 10)
        """
        module = LRAnnealing(
            _count(terms), reference=reference, beta=beta, update_every=update_every,
            weighted_gradients=weighted_gradients, mode=mode, eps=eps,
        )  # fmt: skip
        return balance(module, terms)

    @staticmethod
    def gradnorm(
        terms: Sequence[Expr],
        alpha: float = 1.5,
        lr: float = 1e-2,
        update_every: int = 1,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """GradNorm's learnable weights for ``terms``
        (:class:`~jno.nnx.balancers.gradient.GradNorm`).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> a = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="a")
            >>> b = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="b")
            >>> jno.fn.adaptive.gradnorm([a, b], alpha=0.5)[1].group.module.config()["alpha"]
            0.5
        """
        module = GradNorm(
            _count(terms), alpha=alpha, lr=lr, update_every=update_every, mode=mode, eps=eps
        )
        return balance(module, terms)

    @staticmethod
    def ntk_balancer(
        terms: Sequence[Expr],
        momentum: float = 0.0,
        update_every: int = 100,
        *,
        mode: str = "raw",
        eps: float = 1e-8,
    ) -> tuple[Weight, ...]:
        """NTK-trace weights ``tr(K) / tr(K_i)`` for ``terms``
        (:class:`~jno.nnx.balancers.ntk.NTKBalancer`); each term must be a plain residual or data
        term (its pointwise values give the NTK diagonal).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
            >>> pde = net.residual(lambda u, x: u(x), jnp.ones((4, 1)), name="pde")
            >>> bc = net.residual(lambda u, x: u(x) - 1, jnp.zeros((1, 1)), name="bc")
            >>> jno.fn.adaptive.ntk_balancer([pde, bc])[0].group.module.requires
            'ntk'
        """
        module = NTKBalancer(
            _count(terms), momentum=momentum, update_every=update_every, mode=mode, eps=eps
        )
        return balance(module, terms)

    @staticmethod
    def causal_weights(
        num_chunks: int = 32,
        epsilons: float | Sequence[float] = (1e-2, 1e-1, 1.0, 1e1, 1e2),
        delta: float = 0.99,
    ) -> CausalWeights:
        """Causal weights in time (:class:`~jno.nnx.balancers.causal.CausalWeights`).

        Pass the module as ``causal=`` to a :class:`~jno.train.trainer.Trainer` (or a
        time-dependent problem of :mod:`jno.problems`); ``Trainer.causal_loss`` then
        weighs the time chunks of a residual.

        Example:
            >>> import jno
            >>> cw = jno.fn.adaptive.causal_weights(16, epsilons=(0.5, 1.0))
            >>> cw.num_chunks, float(cw.epsilon)
            (16, 0.5)
        """
        return CausalWeights(num_chunks, epsilons=epsilons, delta=delta)
