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
from jno.problems._recipe_checks import (
    balancer_contradictions,
    causal_contradictions,
    has_initial_condition,
    network_contradictions,
    time_dependent,
)
from jno.problems._recipe_parts import batch_sizes, current_spec, point_counts, same, set_optimizer
from jno.train.optim import OptimizerSpec

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

    As :class:`~jno.problems.recipes.QuasiNewtonRecipe`, the settings are of two kinds.
    The *phase* (``optimizer``, ``lr``, ``warmup_steps``, ``lr_end``, ``steps``) is set
    by :meth:`run` on any trainer (one optimizer over all networks when there are
    several). The *build* settings (the network's, ``fit_output``, the point counts,
    the causal and gradient-norm weights) describe the trainer :meth:`trainer` builds;
    :meth:`run` checks each against a trainer built otherwise and refuses, by name, one
    it contradicts or cannot check. None keeps the trainer's own (``network=None``
    keeps its network, and then ``width``, ``depth``, ``weight_factorization`` and
    ``fourier_scale`` must be None too); :meth:`phases` has them all None.

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
        fit_output: fit a PirateNet's output layer to the problem's initial condition
            (``initial_condition(x)``, taken at every time) before training: when
            :meth:`trainer` builds it, and again (the same least-squares fit) when
            :meth:`run` starts at step 0. A problem without time has no initial
            condition: nothing is fitted.
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

    network: str | None = "pirate"
    width: int | None = 64
    depth: int | None = 3
    weight_factorization: tuple[float, float] | None = (1.0, 0.1)
    fourier_scale: float | None = 0.5
    fit_output: bool | None = True
    optimizer: str = "soap"
    lr: float = 1e-3
    warmup_steps: int = 500
    lr_end: float = 1e-5
    steps: int = 10000
    points: int | None = 2048
    boundary_points: int | None = 256
    causal_chunks: int | None = 16
    causal_epsilon: float | None = 1.0
    balance_every: int | None = 500

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.network is None:
            described = [k for k in NETWORK_SETTINGS if getattr(self, k) is not None]
            if described:
                raise ValueError(
                    f"{described[0]}={getattr(self, described[0])!r} describes the recipe's "
                    "network, but network=None keeps the trainer's own: set network too, "
                    "or None"
                )
        else:
            check_choice("network", self.network, NETWORKS)
            for name in ("width", "depth", "fourier_scale"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name} must be set with network={self.network!r}, got None")
            check_int("width", self.width, minimum=2)
            check_int("depth", self.depth, minimum=1)
            if self.network == "pirate" and self.depth % 3:
                raise ValueError(
                    f"depth must be a multiple of 3 for a PirateNet (3 layers a block), "
                    f"got {self.depth}"
                )
            if self.network == "pirate" and self.width % 2:
                raise ValueError(f"width must be even for a PirateNet, got {self.width}")
            check_real("fourier_scale", self.fourier_scale, minimum=0.0, min_open=True)
        for name in ("points", "boundary_points"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("steps", self.steps, minimum=1)
        for name in ("causal_chunks", "balance_every"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=0)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        if self.warmup_steps >= self.steps:
            raise ValueError(
                f"warmup_steps must be below steps={self.steps}, got {self.warmup_steps}"
            )
        check_real("lr", self.lr, minimum=0.0, min_open=True)
        check_real("lr_end", self.lr_end, minimum=0.0, maximum=self.lr)
        if self.causal_epsilon is not None:
            check_real("causal_epsilon", self.causal_epsilon, minimum=0.0, min_open=True)
        if self.fit_output is not None:
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

    def phases(self) -> FirstOrderRecipe:
        """This recipe's phase alone, its build settings None: what :meth:`run` applies
        to a trainer you built, with your network, points and weights.

        Example:
            >>> r = FirstOrderRecipe().phases()
            >>> r.network, r.points, r.balance_every, r.optimizer, r.steps
            (None, None, None, 'soap', 10000)
        """
        return self.replace(**dict.fromkeys(BUILD_SETTINGS))

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
        if self.network is None:
            net = "your network"
        elif self.network == "pirate":
            net = f"PirateNet {self.depth // 3} x 3 x {self.width}"
        else:
            net = f"{'MLP' if self.network == 'mlp' else 'ModifiedMLP'} {self.depth} x {self.width}"
        rwf = " + RWF" if self.weight_factorization is not None else ""
        return f"{net}{rwf}, {self.optimizer.upper() if self.optimizer == 'soap' else 'Adam'}"

    def module(self, problem: type, seed: int) -> nnx.Module:
        """The recipe's network for ``problem`` (inputs standardised to its box, its
        periodic embedding, an output per field), initialised from ``seed``.

        Raises:
            ValueError: ``network`` is None (the recipe has no network to build).
        """
        if self.network is None:
            raise ValueError("network=None keeps a trainer's own network: the recipe builds none")
        outputs = len(problem.fields)
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
                dim, self.width, outputs, blocks=self.depth // 3,
                fourier_scale=self.fourier_scale,
                **common,
            )  # fmt: skip
        cls = MLP if self.network == "mlp" else ModifiedMLP
        return cls(dim, [self.width] * self.depth, outputs, jnp.tanh, **common)

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
        for key, setting in (("balancer", "balance_every"), ("causal", "causal_chunks")):
            if key in kwargs and getattr(self, setting):
                raise ValueError(
                    f"{key}= is the recipe's ({setting}={getattr(self, setting)}): set "
                    f"{setting}=None to pass your own"
                )
        fields = problem.fields if len(problem.fields) > 1 else None
        net = nn(self.module(problem, seed), fields=fields)
        net.optimizer(self.transformation()).scale(self.schedule())
        sizes = batch_sizes(problem, self.points, self.boundary_points)
        if self.causal_chunks and time_dependent(problem):
            kwargs["causal"] = CausalWeights(
                self.causal_chunks, epsilons=self.causal_epsilon or 1.0, delta=1.0
            )
        if self.balance_every:
            terms = problem(net, seed=seed, batch_size=sizes, progress=False).check()
            kwargs["balancer"] = GradNormBalancer(len(terms), update_every=self.balance_every)
        trainer = problem(net, seed=seed, batch_size=sizes, **kwargs)
        if len(trainer.nets) > 1:  # an inverse problem: one optimizer over all networks
            set_optimizer(trainer, self.transformation(), self.schedule())
        if self._fits_output(trainer):
            self._fit_output(trainer)
        return trainer

    def _fits_output(self, trainer: Any) -> bool:
        """Whether ``fit_output`` applies: set, on a PirateNet, in time."""
        module = trainer.nets[0].module
        return bool(self.fit_output) and isinstance(module, PirateNet) and time_dependent(trainer)

    def _fit_output(self, trainer: Any) -> None:
        if not has_initial_condition(trainer):
            raise ValueError(
                f"fit_output=True fits the problem's initial condition, but "
                f"{type(trainer).__name__} defines none (initial_condition(x)): set "
                "fit_output=False"
            )
        trainer.nets[0].module.fit_output(*self._initial_data(trainer))

    def _initial_data(self, trainer: Any) -> tuple[jax.Array, jax.Array]:
        """Points on a grid of the box and the problem's initial condition at their
        position (a network that ignores time fits it at every time, the PirateNet
        paper's initialisation). Never the reference: that may be measured data."""
        box = trainer.domain
        axis = box.time_axis % box.dim
        grid = np.asarray(box.grid([32] * box.dim), np.float64)
        start = grid.copy()
        start[:, axis] = box.lo[axis]
        dtype = default_float()
        initial = np.asarray(trainer.initial_condition(start), np.float64)
        return jnp.asarray(grid, dtype), jnp.asarray(initial, dtype)

    def run(self, trainer: Any, *, until: int | None = None) -> Any:
        """Trains ``trainer`` to step ``until`` (default: :attr:`steps`) with the
        recipe's optimizer and schedule, resuming from its checkpoint when it has one.
        Any ``Trainer``, ``Crux`` or ``Problem``: see the class docstring for what is
        applied and what is checked.

        Returns:
            The trainer's history.

        Raises:
            ValueError: a build setting contradicts the trainer, or cannot be checked
                on it; the message names each.
        """
        until = self.steps if until is None else check_int("until", until, minimum=0)
        refused = self.contradictions(trainer)
        if refused:
            raise ValueError(
                "the first-order recipe does not fit this trainer: "
                + "; ".join(refused)
                + ". Build the trainer with recipe.trainer(...), or set those settings "
                "to None (recipe.phases() has them all None) to keep the trainer's own"
            )
        phase = OptimizerSpec(self.transformation()).scale(self.schedule())
        if not same(current_spec(trainer), phase):
            set_optimizer(trainer, self.transformation(), self.schedule())
        fresh = trainer.step == 0 and trainer.latest_checkpoint_step() is None
        if fresh and self._fits_output(trainer):
            self._fit_output(trainer)
        return trainer.fit(until=until)

    def contradictions(self, trainer: Any) -> list[str]:
        """The build settings that ``trainer`` contradicts or on which they cannot be
        checked, each with the reason (empty for a trainer :meth:`trainer` built).

        Example:
            >>> import jax.numpy as jnp
            >>> from flax import nnx
            >>> import jno
            >>> class Fit(jno.Trainer):
            ...     def losses(self, net, batch):
            ...         return {"data": jnp.mean(net(batch["x"]) ** 2)}
            >>> net = jno.nn(jno.nnx.MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
            >>> t = Fit(net, points={"x": jnp.ones((4, 1))}, progress=False)
            >>> FirstOrderRecipe().phases().contradictions(t)
            []
            >>> FirstOrderRecipe().phases().replace(balance_every=100).contradictions(t)
            ['balance_every=100: the trainer has no balancer']
        """
        out = network_contradictions(self, trainer.nets[0].module)
        if self._fits_output(trainer) and not has_initial_condition(trainer):
            out.append("fit_output=True: the trainer defines no initial condition to fit")
        refused, _ = point_counts(trainer, self.points, self.boundary_points)
        out += refused
        if self.points is not None or self.boundary_points is not None:
            fixed = [k for k, v in trainer.points.items() if not getattr(v, "resample", False)]
            if fixed:
                setting = "points" if self.points is not None else "boundary_points"
                out.append(
                    f"{setting}={getattr(self, setting)}: the recipe draws fresh points "
                    f"every step, the trainer's sets {fixed} are drawn once"
                )
        out += causal_contradictions(self, trainer)
        out += balancer_contradictions(self.balance_every, trainer.balancer)
        return out


#: The settings that describe the network of the trainer :meth:`FirstOrderRecipe.trainer`
#: builds (they need ``network``).
NETWORK_SETTINGS = ("width", "depth", "weight_factorization", "fourier_scale")
#: Every setting that describes the trainer :meth:`FirstOrderRecipe.trainer` builds.
BUILD_SETTINGS = (
    "network",
    *NETWORK_SETTINGS,
    "fit_output",
    "points",
    "boundary_points",
    "causal_chunks",
    "causal_epsilon",
    "balance_every",
)
