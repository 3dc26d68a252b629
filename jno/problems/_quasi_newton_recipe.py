"""The quasi-Newton recipe: float64, an Adam warm-up, then dense quasi-Newton blocks
between RAD redraws (Urbán, Stefanou & Pons, J. Comput. Phys. 2024; Kiyani et al. 2025).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jno.nnx._checks import check_bool, check_choice, check_int, check_real
from jno.nnx.networks.constraints import Constrained
from jno.nnx.networks.mlp import MLP
from jno.nnx.schedules import LearningRateSchedule
from jno.optim import METHODS, LeastSquares, QuasiNewton, bfgs, engd, levenberg_marquardt
from jno.problems._phase_timing import step_seconds
from jno.problems._recipe_parts import (
    batch_sizes,
    core_network,
    current_spec,
    point_counts,
    same,
    set_optimizer,
)
from jno.resampling import RAD
from jno.train.optim import OptimizerSpec

__all__ = ["Budget", "QuasiNewtonRecipe"]


@dataclasses.dataclass(frozen=True)
class QuasiNewtonRecipe:
    """Float64, an Adam warm-up, then dense quasi-Newton blocks between RAD redraws.

    A recipe has two kinds of settings. The *phases* (``adam_steps``, ``adam_lr``,
    ``method``, ``qn_steps``, ``keep_hessian``, ``max_linesearch_steps``) are applied
    by :meth:`run` to any trainer: it sets each phase's optimizer itself, one optimizer
    over all networks when there are several (one line search, one inverse Hessian).
    The *build* settings (``hidden``, ``points``, ``boundary_points``, ``redraw_every``,
    ``pool_factor``, ``rad_k``, ``rad_c``) describe the trainer :meth:`trainer` builds;
    on a trainer built otherwise :meth:`run` checks each against it and refuses, by
    name, one it contradicts or cannot check. None keeps the trainer's own; a recipe
    whose build settings are all None is :meth:`phases`.

    Attributes:
        hidden: hidden widths of the tanh MLP (inputs standardised to ``[-1, 1]``).
        points: residual points of the PDE (a fixed draw, moved by RAD).
        boundary_points: points of each other set (boundary, initial), drawn once.
        adam_steps: Adam steps of the warm-up (rate ``adam_lr``, decayed by 0.9 every
            1000 steps).
        adam_lr: Adam's initial rate.
        method: the quasi-Newton update, one of :data:`jno.optim.METHODS`.
        qn_steps: quasi-Newton iterations after the warm-up.
        redraw_every: steps between RAD redraws (counted from step 0, so the first one
            is at the end of the warm-up when ``adam_steps`` is a multiple of it); None
            for no RAD (the points stay where they were drawn).
        pool_factor: RAD's candidate pool, in multiples of ``points``.
        rad_k, rad_c: RAD's exponents (``p ~ |r|^k / mean |r|^k + c``).
        keep_hessian: keep the inverse Hessian across redraws (else a fresh one per
            block).
        max_linesearch_steps: evaluations per line search.
        gauss_newton: a Gauss-Newton phase after the quasi-Newton one, one of
            :data:`GAUSS_NEWTON` (``jno.optim.levenberg_marquardt`` or ``jno.optim.engd``
            on the trainer's residual vector), or None.
        gauss_newton_steps: its iterations.
        exact: build the problem's network with its conditions imposed exactly
            (``problem.default(exact=True)``, :meth:`~jno.problems.Problem.exact_conditions`);
            on a trainer built otherwise, True is checked (its network must impose
            them), False keeps whatever network the trainer has.
    """

    hidden: tuple[int, ...] | None = (20, 20, 20)
    points: int | None = 8000
    boundary_points: int | None = 400
    adam_steps: int = 5000
    adam_lr: float = 1e-3
    method: str = "ssbroyden"
    qn_steps: int = 20000
    redraw_every: int | None = 5000
    pool_factor: int | None = 8
    rad_k: float | None = 1.0
    rad_c: float | None = 1.0
    keep_hessian: bool = True
    max_linesearch_steps: int = 25
    gauss_newton: str | None = None
    gauss_newton_steps: int = 0
    exact: bool | None = False

    def __post_init__(self):
        if self.hidden is not None and (
            not self.hidden
            or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in self.hidden)
        ):
            raise ValueError(f"hidden must be positive widths or None, got {self.hidden!r}")
        for name in ("points", "boundary_points", "redraw_every", "pool_factor"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        for name in ("rad_k", "rad_c"):
            if getattr(self, name) is not None:
                check_real(name, getattr(self, name), minimum=0.0)
        for name in ("adam_steps", "qn_steps", "gauss_newton_steps"):
            check_int(name, getattr(self, name), minimum=0)
        if self.gauss_newton is not None:
            check_choice("gauss_newton", self.gauss_newton, GAUSS_NEWTON)
        elif self.gauss_newton_steps:
            raise ValueError(
                f"gauss_newton_steps={self.gauss_newton_steps} needs gauss_newton, one of "
                f"{GAUSS_NEWTON}"
            )
        if self.exact is not None:
            check_bool("exact", self.exact)
        check_real("adam_lr", self.adam_lr, minimum=0.0, min_open=True)
        check_choice("method", self.method, METHODS)

    def replace(self, **changes: Any) -> QuasiNewtonRecipe:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return dataclasses.replace(self, **changes)

    def phases(self) -> QuasiNewtonRecipe:
        """This recipe's phases alone, its build settings None: what :meth:`run` applies
        to a trainer you built, with your network and points.

        Example:
            >>> r = QuasiNewtonRecipe().phases()
            >>> r.hidden, r.points, r.redraw_every, r.adam_steps
            (None, None, None, 5000)
        """
        return self.replace(**dict.fromkeys(BUILD_SETTINGS))

    @property
    def total_steps(self) -> int:
        """Adam steps plus quasi-Newton and Gauss-Newton iterations."""
        return self.adam_steps + self.qn_steps + self.gauss_newton_steps

    @property
    def float64(self) -> bool:
        """Whether the recipe needs float64 (``jax_enable_x64``): yes."""
        return True

    @property
    def label(self) -> str:
        """``"MLP 3 x 20, Adam 5000 + ssbroyden 20000"``-style summary of the recipe."""
        widths = self.hidden
        if widths is None:
            net = "your network"
        elif len(set(widths)) == 1:
            net = f"MLP {len(widths)} x {widths[0]}"
        else:
            net = "MLP " + "-".join(map(str, widths))
        label = f"{net}, Adam {self.adam_steps} + {self.method} {self.qn_steps}"
        if self.gauss_newton_steps:
            label += f" + {self.gauss_newton} {self.gauss_newton_steps}"
        return label + (", exact conditions" if self.exact else "")

    def optimizer(self) -> Any:
        """A fresh quasi-Newton transformation of this recipe."""
        return bfgs(method=self.method, max_linesearch_steps=self.max_linesearch_steps)

    def gauss_newton_optimizer(self) -> Any:
        """A fresh transformation of the Gauss-Newton phase (None without one)."""
        if self.gauss_newton is None:
            return None
        return levenberg_marquardt() if self.gauss_newton == "levenberg_marquardt" else engd()

    def trainer(self, problem: type, *, seed: int = 0, **kwargs: Any) -> Any:
        """The problem's trainer for this recipe (``problem.default`` with its network,
        points and RAD sampler); ``kwargs`` are any further trainer keywords.

        Raises:
            RuntimeError: float64 is not enabled (``jax_enable_x64``): the quasi-Newton
                phase needs it to go below float32's rounding of the loss.
        """
        if jnp.dtype(jnp.asarray(1.0).dtype) != jnp.float64:
            raise RuntimeError(
                "the quasi-newton recipe trains in float64: call "
                "jax.config.update('jax_enable_x64', True) before building arrays"
            )
        sizes = batch_sizes(problem, self.points, self.boundary_points)
        adaptive = None
        if self.redraw_every is not None:
            rad = {"pool_factor": self.pool_factor, "k": self.rad_k, "c": self.rad_c}
            rad = {k: v for k, v in rad.items() if v is not None}
            every = self.redraw_every
            adaptive = lambda base: RAD(base, every=every, seed=seed, **rad)  # noqa: E731
        if self.exact:
            kwargs.setdefault("exact", True)
        return problem.default(
            seed=seed,
            hidden=None if self.hidden is None else list(self.hidden),
            lr=self.adam_lr,
            batch_size=sizes,
            resample=False,
            adaptive_points=adaptive,
            **kwargs,
        )

    def run(self, trainer: Any, *, until: int | None = None) -> Any:
        """Trains ``trainer`` through the recipe's phases up to step ``until`` (default:
        :attr:`total_steps`); resumes from the trainer's checkpoint when it has one, in
        whichever phase it was written. Any ``Trainer``, ``Crux`` or ``Problem``: see
        the class docstring for what is applied and what is checked.

        Returns:
            The trainer's history.

        Raises:
            ValueError: a build setting contradicts the trainer, or cannot be checked
                on it; the message names each.
        """
        until = self.total_steps if until is None else check_int("until", until, minimum=0)
        refused = self.contradictions(trainer)
        if refused:
            raise ValueError(
                "the quasi-newton recipe does not fit this trainer: "
                + "; ".join(refused)
                + ". Build the trainer with recipe.trainer(...), or set those settings "
                "to None (recipe.phases() has them all None) to keep the trainer's own"
            )
        start = max(trainer.step, trainer.latest_checkpoint_step() or 0)
        second_order = self.adam_steps + self.qn_steps
        if self.gauss_newton_steps and start > second_order:
            # The checkpoint holds the Gauss-Newton phase's state.
            return self._gauss_newton_phase(trainer, until)
        quasi_newton = isinstance(_current_tx(trainer), QuasiNewton)
        if start > self.adam_steps and not quasi_newton:
            # The checkpoint holds a quasi-Newton state: restore it into that optimizer.
            set_optimizer(trainer, self.optimizer())
            quasi_newton = True
        if not quasi_newton and not same(current_spec(trainer), self._adam()):
            set_optimizer(trainer, self._adam().tx, self._adam().schedule)
        trainer.fit(until=min(until, self.adam_steps))
        if until <= self.adam_steps:
            return trainer.history
        qn_until = min(until, second_order)
        blocks = self.redraw_every or max(qn_until, 1)
        at_boundary = trainer.step % blocks == 0
        if not quasi_newton:
            trainer.history.mark(trainer.step, _METHOD_LABELS[self.method])
        if not quasi_newton or (not self.keep_hessian and at_boundary):
            set_optimizer(trainer, self.optimizer())
        if self.keep_hessian:
            trainer.fit(until=qn_until)
        while trainer.step < qn_until:
            block_end = (trainer.step // blocks + 1) * blocks
            trainer.fit(until=min(qn_until, block_end))
            if trainer.step < qn_until:
                set_optimizer(trainer, self.optimizer())
        if until <= second_order or not self.gauss_newton_steps:
            return trainer.history
        return self._gauss_newton_phase(trainer, until)

    def _gauss_newton_phase(self, trainer: Any, until: int) -> Any:
        if not isinstance(_current_tx(trainer), LeastSquares):
            trainer.history.mark(trainer.step, _METHOD_LABELS[self.gauss_newton])
            set_optimizer(trainer, self.gauss_newton_optimizer())
        return trainer.fit(until=until)

    def sized_to(self, seconds: float, trainer: Any, *, probe: int = 20) -> Budget:
        """This recipe with its step counts scaled to take about ``seconds`` on ``trainer``.

        Times ``probe`` fused steps of each phase on ``trainer``'s current state (after
        compiling them; the results are thrown away: the trainer's networks, optimizer
        states and step stay as they were), then scales ``adam_steps`` and ``qn_steps``
        by one factor, so that the phases keep their proportions and ``adam_steps *
        adam_step_seconds + qn_steps * qn_step_seconds`` is ``seconds``.
        ``redraw_every`` stays: it belongs to the trainer's RAD sampler, already built.
        Call it on the trainer before training it. The probe of the quasi-Newton phase
        starts where the Adam phase starts, where line searches may take more or fewer
        evaluations than later: the result is an estimate.

        Returns:
            The :class:`Budget`: the sized recipe and the measured seconds per step.
        """
        seconds = check_real("seconds", seconds, minimum=0.0, min_open=True)
        probe = check_int("probe", probe, minimum=1)
        adam = step_seconds(trainer, self._adam().tx, self._adam().schedule, probe)
        qn = step_seconds(trainer, self.optimizer(), None, probe)
        planned = self.adam_steps * adam + self.qn_steps * qn
        factor = seconds / planned if planned > 0 else 1.0
        sized = self.replace(
            adam_steps=round(self.adam_steps * factor), qn_steps=round(self.qn_steps * factor)
        )
        return Budget(sized, adam, qn)

    def _adam(self) -> OptimizerSpec:
        """The warm-up's optimizer: Adam at ``adam_lr``, decayed by 0.9 every 1000 steps."""
        schedule = LearningRateSchedule.exponential(self.adam_lr, 0.9, 1000)
        return OptimizerSpec(optax.adam(1.0)).scale(schedule)

    def contradictions(self, trainer: Any) -> list[str]:
        """The build settings that ``trainer`` contradicts or on which they cannot be
        checked, each with the reason (empty for a trainer :meth:`trainer` built).

        Example:
            >>> import jax.numpy as jnp, optax
            >>> from flax import nnx
            >>> import jno
            >>> class Fit(jno.Trainer):
            ...     def losses(self, net, batch):
            ...         return {"data": jnp.mean(net(batch["x"]) ** 2)}
            >>> net = jno.nn(jno.nnx.MLP(1, [8, 8], 1, rngs=nnx.Rngs(0)))
            >>> t = Fit(net, points={"x": jnp.ones((4, 1))}, progress=False)
            >>> QuasiNewtonRecipe().phases().replace(hidden=(8, 8)).contradictions(t)
            []
            >>> QuasiNewtonRecipe().phases().replace(hidden=(20, 20, 20)).contradictions(t)
            ['hidden=(20, 20, 20): the network has hidden widths (8, 8)']
        """
        out = []
        nets = trainer.nets
        if self.exact and not isinstance(nets[0].module, Constrained):
            out.append("exact=True: the trainer's network imposes no conditions exactly")
        if self.hidden is not None:
            # The field network is the first (an inverse problem's unknowns follow it).
            widths = _mlp_widths(core_network(nets[0].module))
            if widths is None:
                out.append(f"hidden={self.hidden}: the trainer's network is not a jno.nnx.MLP")
            elif widths != tuple(self.hidden):
                out.append(f"hidden={self.hidden}: the network has hidden widths {widths}")
        refused, rad = point_counts(trainer, self.points, self.boundary_points)
        out += refused
        for name, attr in RAD_SETTINGS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if rad is None:
                out.append(f"{name}={value}: the trainer has no RAD point set")
            elif getattr(rad, attr) != value:
                out.append(f"{name}={value}: its RAD set has {attr}={getattr(rad, attr)}")
        return out


class Budget(NamedTuple):
    """A recipe sized to a time budget (:meth:`QuasiNewtonRecipe.sized_to`) and the
    seconds per step measured for each phase."""

    recipe: QuasiNewtonRecipe
    adam_step_seconds: float
    qn_step_seconds: float


#: The settings that describe the trainer :meth:`QuasiNewtonRecipe.trainer` builds.
BUILD_SETTINGS = (
    "exact",
    "hidden",
    "points",
    "boundary_points",
    "redraw_every",
    "pool_factor",
    "rad_k",
    "rad_c",
)
#: The Gauss-Newton phases a recipe may end with.
GAUSS_NEWTON = ("levenberg_marquardt", "engd")
#: How the phases are named on the history's marks (``History.mark``).
_METHOD_LABELS = {
    "bfgs": "BFGS",
    "ssbfgs": "SSBFGS",
    "ssbroyden": "SSBroyden",
    "levenberg_marquardt": "Levenberg-Marquardt",
    "engd": "ENGD",
}
#: Recipe setting -> attribute of the RAD sampler it must equal.
RAD_SETTINGS = {"redraw_every": "every", "pool_factor": "pool_factor", "rad_k": "k", "rad_c": "c"}


def _mlp_widths(module: Any) -> tuple[int, ...] | None:
    if not isinstance(module, MLP):
        return None
    widths = tuple(getattr(layer, "out_features", None) for layer in module.layers[:-1])
    return None if None in widths else tuple(int(w) for w in widths)


def _current_tx(trainer: Any) -> Any:
    spec = current_spec(trainer)
    return None if spec is None else spec.tx
