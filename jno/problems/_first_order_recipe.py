"""The first-order recipe: PirateNet, weight factorization, SOAP, causal and
gradient-norm weights (Wang et al., JMLR 2024 and arXiv:2502.00604, 2025)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jno.frontend.network import nn
from jno.nnx._checks import check_bool, check_choice, check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.balancers.causal import CausalWeights
from jno.nnx.balancers.gradient import GradNormBalancer
from jno.nnx.networks.mlp import MLP
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.nnx.networks.piratenet import PirateNet
from jno.nnx.schedules import LearningRateSchedule
from jno.optim import soap

__all__ = ["FirstOrderRecipe"]

NETWORKS = ("pirate", "mlp", "modified")
OPTIMIZERS = ("soap", "adam")


@dataclasses.dataclass(frozen=True)
class FirstOrderRecipe:
    """A first-order network and optimizer recipe, with fresh points every step.

    The defaults are the recipe of the PirateNet and SOAP studies, scaled to a CPU:
    a :class:`~jno.nnx.PirateNet` (one residual block of three layers, random weight
    factorization, the problem's exact periodic embedding) whose output layer is first
    fitted by least squares to the initial condition at every time, SOAP with a linear
    warm-up and cosine decay, causal weights on the residual of time-dependent problems
    and gradient-norm weights of the terms (:class:`~jno.nnx.GradNormBalancer`).
    ``replace(network="mlp")`` or ``replace(optimizer="adam")`` changes one ingredient
    with the rest equal, for comparisons.

    Attributes:
        network: ``"pirate"``, ``"mlp"`` (tanh MLP) or ``"modified"``
            (:class:`~jno.nnx.ModifiedMLP`).
        width: the width of every hidden layer.
        depth: hidden layers (a PirateNet has three per block, so a multiple of 3).
        weight_factorization: ``(mean, stddev)`` of random weight factorization of
            every dense layer, or None.
        fourier_scale: standard deviation of the PirateNet's Fourier features (of the
            standardised inputs; 0.5 lets the initial fit resolve the initial
            conditions of the packaged problems at width 64, 1.0 does not).
        fit_output: fit a PirateNet's output layer to the initial condition (the
            reference at the initial time, taken at every time) before training.
        optimizer: ``"soap"`` (:func:`jno.optim.soap`) or ``"adam"``.
        lr: the peak learning rate.
        warmup_steps: steps of the linear warm-up to ``lr``.
        lr_end: the rate the cosine decay reaches at ``steps``.
        steps: training steps.
        points: residual points, drawn afresh every step.
        boundary_points: points of each other set, drawn afresh every step.
        causal_chunks: time chunks of the causal weights (time-dependent problems;
            0 for none).
        causal_epsilon: the causality parameter (fixed).
        balance_every: steps between two updates of the gradient-norm weights (0:
            no balancer, all weights one).
    """

    network: str = "pirate"
    width: int = 64
    depth: int = 3
    weight_factorization: tuple[float, float] | None = (1.0, 0.1)
    fourier_scale: float = 0.5
    fit_output: bool = True
    optimizer: str = "soap"
    lr: float = 1e-3
    warmup_steps: int = 500
    lr_end: float = 1e-5
    steps: int = 10000
    points: int = 2048
    boundary_points: int = 256
    causal_chunks: int = 16
    causal_epsilon: float = 1.0
    balance_every: int = 500

    def __post_init__(self):
        check_choice("network", self.network, NETWORKS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_int("width", self.width, minimum=2)
        check_int("depth", self.depth, minimum=1)
        if self.network == "pirate" and self.depth % 3:
            raise ValueError(
                f"depth must be a multiple of 3 for a PirateNet (3 layers a block), "
                f"got {self.depth}"
            )
        if self.network == "pirate" and self.width % 2:
            raise ValueError(f"width must be even for a PirateNet, got {self.width}")
        for name in ("points", "boundary_points", "steps"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("warmup_steps", "causal_chunks", "balance_every"):
            check_int(name, getattr(self, name), minimum=0)
        if self.warmup_steps >= self.steps:
            raise ValueError(
                f"warmup_steps must be below steps={self.steps}, got {self.warmup_steps}"
            )
        check_real("lr", self.lr, minimum=0.0, min_open=True)
        check_real("lr_end", self.lr_end, minimum=0.0, maximum=self.lr)
        check_real("fourier_scale", self.fourier_scale, minimum=0.0, min_open=True)
        check_real("causal_epsilon", self.causal_epsilon, minimum=0.0, min_open=True)
        check_bool("fit_output", self.fit_output)
        rwf = self.weight_factorization
        if rwf is not None and (
            not isinstance(rwf, tuple)
            or len(rwf) != 2
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in rwf)
            or rwf[1] < 0
        ):
            raise ValueError(
                f"weight_factorization must be (mean, stddev >= 0) or None, got {rwf!r}"
            )

    def replace(self, **changes: Any) -> FirstOrderRecipe:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return dataclasses.replace(self, **changes)

    @property
    def total_steps(self) -> int:
        """The training steps."""
        return self.steps

    @property
    def float64(self) -> bool:
        """Whether the recipe needs float64: no, it trains in the default dtype."""
        return False

    @property
    def label(self) -> str:
        """``"PirateNet 1 x 3 x 64 + RWF, SOAP"``-style summary of the recipe."""
        if self.network == "pirate":
            net = f"PirateNet {self.depth // 3} x 3 x {self.width}"
        else:
            net = f"{'MLP' if self.network == 'mlp' else 'ModifiedMLP'} {self.depth} x {self.width}"
        rwf = " + RWF" if self.weight_factorization is not None else ""
        return f"{net}{rwf}, {self.optimizer.upper() if self.optimizer == 'soap' else 'Adam'}"

    def module(self, problem: type, seed: int) -> nnx.Module:
        """The recipe's network for ``problem`` (inputs standardised to its box, its
        periodic embedding), initialised from ``seed``."""
        common = dict(
            rngs=nnx.Rngs(seed),
            input_lo=problem.domain.lo,
            input_hi=problem.domain.hi,
            periodic=problem.periodic_inputs,
            weight_factorization=self.weight_factorization,
        )
        dim = problem.domain.dim
        if self.network == "pirate":
            return PirateNet(
                dim, self.width, 1, blocks=self.depth // 3, fourier_scale=self.fourier_scale,
                **common,
            )  # fmt: skip
        cls = MLP if self.network == "mlp" else ModifiedMLP
        return cls(dim, [self.width] * self.depth, 1, jnp.tanh, **common)

    def transformation(self) -> optax.GradientTransformation:
        """The optimizer at unit rate (the schedule scales it)."""
        if self.optimizer == "soap":
            return soap(1.0)
        return optax.adam(1.0)

    def schedule(self) -> LearningRateSchedule:
        """Linear warm-up to ``lr``, then cosine decay to ``lr_end`` at ``steps``."""
        return LearningRateSchedule.warmup_cosine(
            self.steps, self.warmup_steps, lr0=self.lr, lr_end=self.lr_end
        )

    def trainer(self, problem: type, *, seed: int = 0, **kwargs: Any) -> Any:
        """The problem's trainer for this recipe; ``kwargs`` are further trainer keywords.

        Example:
            >>> from jno.problems import AllenCahn1D
            >>> recipe = AllenCahn1D.recipes["soap"].replace(width=8, points=64)
            >>> t = recipe.trainer(AllenCahn1D, seed=0, progress=False)
            >>> type(t.nets[0].module).__name__, type(t.balancer).__name__
            ('PirateNet', 'GradNormBalancer')
        """
        net = nn(self.module(problem, seed))
        net.optimizer(self.transformation()).scale(self.schedule())
        sizes = {name: self.boundary_points for name in problem.point_sets}
        sizes[problem.causal_points] = self.points
        time_dependent = problem.domain.time_axis is not None
        if self.causal_chunks and time_dependent and "causal" not in kwargs:
            kwargs["causal"] = CausalWeights(
                self.causal_chunks, epsilons=self.causal_epsilon, delta=1.0
            )
        if self.balance_every and "balancer" not in kwargs:
            terms = problem(net, seed=seed, batch_size=sizes, progress=False).check()
            kwargs["balancer"] = GradNormBalancer(len(terms), update_every=self.balance_every)
        trainer = problem(net, seed=seed, batch_size=sizes, **kwargs)
        if self.fit_output and self.network == "pirate" and time_dependent:
            net.module.fit_output(*self._initial_data(trainer))
        return trainer

    def _initial_data(self, trainer: Any) -> tuple[jax.Array, jax.Array]:
        """Points on a grid of the box and the initial condition at their position: the
        reference at the initial time (a network that ignores time fits it at every
        time, the PirateNet paper's initialisation)."""
        box = trainer.domain
        axis = box.time_axis % box.dim
        grid = np.asarray(box.grid([32] * box.dim), np.float64)
        start = grid.copy()
        start[:, axis] = box.lo[axis]
        dtype = default_float()
        initial = np.asarray(trainer.reference(start), np.float64)
        return jnp.asarray(grid, dtype), jnp.asarray(initial, dtype)

    def run(self, trainer: Any, *, until: int | None = None) -> Any:
        """Trains ``trainer`` (built by :meth:`trainer`) to step ``until`` (default:
        :attr:`steps`), resuming from its checkpoint when it has one.

        Returns:
            The trainer's history.
        """
        until = self.steps if until is None else check_int("until", until, minimum=0)
        return trainer.fit(until=until)
