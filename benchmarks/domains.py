"""Problems on CSG domains with the quasi-Newton recipe: the relative L2 error and the
wall time, per seed.

``--problem`` is one of ``poissonholes2d`` (a square less four disks, Neumann data on
the holes), ``laplacelshape2d`` (the L-shaped domain, the corner singularity) and
``poissoncavity3d`` (a cube less a ball). Each seed trains the problem in float64 with
its ``recipes["quasi-newton"]`` (changed by the options, if any) and prints one JSON
line on stdout: the error against the exact solution on the problem's evaluation grid
(the grid points inside the domain), the final losses and the seconds it took.
``--exact`` imposes the problem's boundary conditions exactly
(``Problem.default(exact=True)``); ``--no-rad`` keeps the first draw of points.
Progress goes to stderr.

Usage:
    .venv/bin/python benchmarks/domains.py --problem poissonholes2d --seeds 0,1,2 \\
        > benchmarks/results/domains_poisson_holes.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

from jno.problems import LaplaceLShape2D, PoissonCavity3D, PoissonHoles2D  # noqa: E402

from common import add_recipe_options, recipe_changes, seeds  # noqa: E402

PROBLEMS = {
    "poissonholes2d": PoissonHoles2D,
    "laplacelshape2d": LaplaceLShape2D,
    "poissoncavity3d": PoissonCavity3D,
}


def run(problem: type, seed: int, changes: dict, exact: bool) -> dict:
    recipe = problem.recipes["quasi-newton"].replace(**changes)
    start = time.perf_counter()
    trainer = recipe.trainer(problem, seed=seed, progress=None, log_every=1000, exact=exact)
    history = recipe.run(trainer)
    seconds = time.perf_counter() - start
    losses = {f"loss {k}": float(history[f"loss/{k}"][-1]) for k in trainer.term_names}
    return {
        "problem": problem.__name__,
        "seed": seed,
        "recipe": recipe.label,
        "exact": exact,
        "rad": recipe.redraw_every is not None,
        "error": trainer.relative_l2(),
        **losses,
        "steps": trainer.step,
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem", choices=sorted(PROBLEMS), required=True)
    p.add_argument("--exact", action="store_true", help="impose the boundary data exactly")
    p.add_argument("--no-rad", action="store_true", help="no RAD redraws")
    add_recipe_options(p)
    args = p.parse_args(argv)
    changes = recipe_changes(args)
    if args.no_rad:
        changes.update(redraw_every=None, pool_factor=None, rad_k=None, rad_c=None)
    for seed in seeds(args):
        print(json.dumps(run(PROBLEMS[args.problem], seed, changes, args.exact)), flush=True)
        print(f"seed {seed} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
