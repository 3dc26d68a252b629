"""One-seed pilots of the ingredients past the quasi-Newton recipe (float64).

Builds ``Problem.recipes["quasi-newton"]`` with the given changes, trains its Adam and
quasi-Newton phases (printing the relative L2 error every 5 000 steps), then optionally
runs a Gauss-Newton phase (``--gauss-newton-steps``), printing the loss, the error, the
damping and the rejected updates every ``--every`` iterations. The wall times are
indicative only: the run logs every ``--every`` steps, and some pilots shared the CPU.

Usage (the pilots of ``docs/results.md#past-the-published-records``)::

    .venv/bin/python benchmarks/pilots.py --problem Burgers1D --adam 2000 \\
        --gauss-newton-steps 600 --every 20 > benchmarks/results/pilot_lm_from_adam.log
    .venv/bin/python benchmarks/pilots.py --problem Burgers1D --qn 20000 \\
        --gauss-newton-steps 300 --every 20 > benchmarks/results/pilot_lm_after_qn.log
    .venv/bin/python benchmarks/pilots.py --problem Burgers1D --qn 20000 --exact \\
        > benchmarks/results/pilot_exact.log
    .venv/bin/python benchmarks/pilots.py --problem Burgers1D --qn 20000 --redraw 1000 \\
        > benchmarks/results/pilot_redraw_1000.log
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jno  # noqa: E402
from jno.problems import AllenCahn1D, Burgers1D, Helmholtz2D, KleinGordon1D, Poisson2D  # noqa: E402
from jno.problems._recipe_parts import set_optimizer  # noqa: E402

PROBLEMS = {c.__name__: c for c in (Burgers1D, Poisson2D, Helmholtz2D, KleinGordon1D, AllenCahn1D)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem", default="Burgers1D", choices=list(PROBLEMS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adam", type=int, default=5000, help="Adam steps")
    p.add_argument("--qn", type=int, default=0, help="quasi-Newton iterations")
    p.add_argument("--redraw", type=int, default=None, help="RAD's redraw_every")
    p.add_argument("--exact", action="store_true", help="the problem's exact conditions")
    p.add_argument("--attention", choices=("rba", "vrba"), help="residual attention on pde")
    p.add_argument("--gauss-newton", choices=("levenberg_marquardt", "engd"), default=None)
    p.add_argument("--gauss-newton-steps", type=int, default=0)
    p.add_argument("--solver", default=None, help="the Gauss-Newton solver")
    p.add_argument("--every", type=int, default=10, help="steps between logs and prints")
    a = p.parse_args(argv)
    cls = PROBLEMS[a.problem]
    changes = {"adam_steps": a.adam, "qn_steps": a.qn}
    if a.redraw:
        changes["redraw_every"] = a.redraw
    recipe = cls.recipes["quasi-newton"].replace(**changes)
    extra = {"exact": True} if a.exact else {}
    if a.attention:
        n = recipe.points
        extra["attention"] = {"pde": jno.nnx.RBA(n) if a.attention == "rba" else jno.nnx.VRBA(n)}
    trainer = recipe.trainer(cls, seed=a.seed, progress=False, log_every=a.every, **extra)
    start = time.time()
    for stop in range(5000, recipe.total_steps + 1, 5000):
        recipe.run(trainer, until=stop)
        error = trainer.history["error/u"][-1]
        print(stop, f"{time.time() - start:.0f}s", f"{error:.3e}", flush=True)
    recipe.run(trainer)
    error = trainer.history["error/u"][-1]
    print(
        f"phase 1 ({a.adam} adam, {a.qn} qn) {time.time() - start:.1f}s error {error:.3e}",
        flush=True,
    )
    if not a.gauss_newton_steps:
        return
    kwargs = {} if a.solver is None else {"solver": a.solver}
    if a.gauss_newton == "engd":
        set_optimizer(trainer, jno.optim.engd(**kwargs))
    else:
        set_optimizer(trainer, jno.optim.levenberg_marquardt(**kwargs))
    start = time.time()
    for _ in range(a.gauss_newton_steps // a.every):
        history = trainer.fit(a.every)
        state = trainer.trained.opt_states[0]
        print(
            f"{trainer.step} {time.time() - start:.1f}s loss {history['loss/total'][-1]:.3e} "
            f"error {history['error/u'][-1]:.3e} damping {float(state.damping):.2e} "
            f"rej {int(state.rejections)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
