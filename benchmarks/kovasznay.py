"""Kovasznay flow (steady Navier-Stokes, Re = 20, fields u, v, p) with the quasi-Newton
recipe: the relative L2 error of each field and the wall time, per seed.

Each seed trains ``jno.problems.Kovasznay2D`` in float64 with
``Kovasznay2D.recipes["quasi-newton"]`` (changed by the options, if any) (a tanh MLP, Adam on a
fixed draw of points, then SSBroyden with RAD redraws), and prints one JSON line per
seed on stdout: the errors on the 101 x 101 grid against the exact solution (the
pressure up to its mean), the final losses and the seconds it took. Progress goes to
stderr.

Usage:
    .venv/bin/python benchmarks/kovasznay.py --seeds 0,1,2 > benchmarks/results/kovasznay.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

from jno.problems import Kovasznay2D  # noqa: E402

from common import add_recipe_options, recipe_changes, seeds  # noqa: E402


def run(seed: int, changes: dict) -> dict:
    recipe = Kovasznay2D.recipes["quasi-newton"].replace(**changes)
    start = time.perf_counter()
    trainer = recipe.trainer(Kovasznay2D, seed=seed, progress=None, log_every=1000)
    history = recipe.run(trainer)
    seconds = time.perf_counter() - start
    return {
        "seed": seed,
        "recipe": recipe.label,
        **{f"error {k}": v for k, v in trainer.relative_l2().items()},
        "loss pde": float(history["loss/pde"][-1]),
        "loss bc": float(history["loss/bc"][-1]),
        "steps": trainer.step,
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_options(p)
    args = p.parse_args(argv)
    changes = recipe_changes(args)
    for seed in seeds(args):
        print(json.dumps(run(seed, changes)), flush=True)
        print(f"seed {seed} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
