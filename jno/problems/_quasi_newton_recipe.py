"""The quasi-Newton recipe: float64, an Adam warm-up, then dense quasi-Newton blocks
between RAD redraws (Urbán, Stefanou & Pons, J. Comput. Phys. 2024; Kiyani et al. 2025).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from jno.nnx._checks import check_choice, check_int, check_real
from jno.optim import METHODS, QuasiNewton, bfgs
from jno.resampling import RAD

__all__ = ["QuasiNewtonRecipe"]


@dataclasses.dataclass(frozen=True)
class QuasiNewtonRecipe:
    """Float64, an Adam warm-up, then dense quasi-Newton blocks between RAD redraws.

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
            is at the end of the warm-up when ``adam_steps`` is a multiple of it).
        pool_factor: RAD's candidate pool, in multiples of ``points``.
        rad_k, rad_c: RAD's exponents (``p ~ |r|^k / mean |r|^k + c``).
        keep_hessian: keep the inverse Hessian across redraws (else a fresh one per
            block).
        max_linesearch_steps: evaluations per line search.
    """

    hidden: tuple[int, ...] = (20, 20, 20)
    points: int = 8000
    boundary_points: int = 400
    adam_steps: int = 5000
    adam_lr: float = 1e-3
    method: str = "ssbroyden"
    qn_steps: int = 20000
    redraw_every: int = 5000
    pool_factor: int = 8
    rad_k: float = 1.0
    rad_c: float = 1.0
    keep_hessian: bool = True
    max_linesearch_steps: int = 25

    def __post_init__(self):
        if not self.hidden or any(
            not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in self.hidden
        ):
            raise ValueError(f"hidden must be positive widths, got {self.hidden!r}")
        for name in ("points", "boundary_points", "redraw_every", "pool_factor"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("adam_steps", "qn_steps"):
            check_int(name, getattr(self, name), minimum=0)
        check_real("adam_lr", self.adam_lr, minimum=0.0, min_open=True)
        check_choice("method", self.method, METHODS)

    def replace(self, **changes: Any) -> QuasiNewtonRecipe:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return dataclasses.replace(self, **changes)

    @property
    def total_steps(self) -> int:
        """Adam steps plus quasi-Newton iterations."""
        return self.adam_steps + self.qn_steps

    @property
    def float64(self) -> bool:
        """Whether the recipe needs float64 (``jax_enable_x64``): yes."""
        return True

    @property
    def label(self) -> str:
        """``"MLP 3 x 20, Adam 5000 + ssbroyden 20000"``-style summary of the recipe."""
        widths = self.hidden
        net = (
            f"MLP {len(widths)} x {widths[0]}"
            if len(set(widths)) == 1
            else "MLP " + "-".join(map(str, widths))
        )
        return f"{net}, Adam {self.adam_steps} + {self.method} {self.qn_steps}"

    def optimizer(self) -> Any:
        """A fresh quasi-Newton transformation of this recipe."""
        return bfgs(method=self.method, max_linesearch_steps=self.max_linesearch_steps)

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
        sizes = {name: self.boundary_points for name in problem.point_sets}
        sizes[problem.causal_points] = self.points
        every, factor, k, c = self.redraw_every, self.pool_factor, self.rad_k, self.rad_c
        return problem.default(
            seed=seed,
            hidden=list(self.hidden),
            lr=self.adam_lr,
            batch_size=sizes,
            resample=False,
            adaptive_points=lambda base: RAD(
                base, every=every, pool_factor=factor, k=k, c=c, seed=seed
            ),
            **kwargs,
        )

    def run(self, trainer: Any, *, until: int | None = None) -> Any:
        """Trains ``trainer`` (built by :meth:`trainer`) through the recipe's phases up
        to step ``until`` (default: :attr:`total_steps`); resumes from the trainer's
        checkpoint when it has one, in whichever phase it was written.

        Returns:
            The trainer's history.
        """
        until = self.total_steps if until is None else check_int("until", until, minimum=0)
        net = trainer.nets[0]
        start = max(trainer.step, trainer.latest_checkpoint_step() or 0)
        quasi_newton = isinstance(net.optimizer_spec.tx, QuasiNewton)
        if start > self.adam_steps and not quasi_newton:
            # The checkpoint holds a quasi-Newton state: restore it into that optimizer.
            net.optimizer(self.optimizer())
            quasi_newton = True
        trainer.fit(until=min(until, self.adam_steps))
        if until <= self.adam_steps:
            return trainer.history
        at_boundary = trainer.step % self.redraw_every == 0
        if not quasi_newton or (not self.keep_hessian and at_boundary):
            net.optimizer(self.optimizer())
        if self.keep_hessian:
            return trainer.fit(until=until)
        while trainer.step < until:
            block_end = (trainer.step // self.redraw_every + 1) * self.redraw_every
            trainer.fit(until=min(until, block_end))
            if trainer.step < until:
                net.optimizer(self.optimizer())
        return trainer.history
