"""Inverse Burgers 1-D (nu unknown, learned from samples of the solution) with the
quasi-Newton recipe: the errors of nu and u and the wall time, per seed.

Each seed trains ``jno.problems.BurgersInverse1D`` in float64 with its quasi-Newton
recipe (changed by the options, if any), the samples drawn and noised with the seed,
and prints one JSON line per seed on stdout: the learned ``nu`` and its relative
error, the relative L2 error of ``u`` on the 256 x 101 grid against the Cole-Hopf
solution, the final losses and the seconds it took. Progress goes to stderr.

Usage:
    .venv/bin/python benchmarks/burgers_inverse.py --seeds 0,1,2 \\
        > benchmarks/results/burgers_inverse.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

from jno.problems import BurgersInverse1D  # noqa: E402

from common import add_recipe_options, recipe_changes, seeds  # noqa: E402


def run(seed: int, changes: dict, noise: float) -> dict:
    recipe = BurgersInverse1D.recipes["quasi-newton"].replace(**changes)
    start = time.perf_counter()
    trainer = recipe.trainer(
        BurgersInverse1D, seed=seed, progress=None, log_every=1000, noise=noise, data_seed=seed
    )
    history = recipe.run(trainer)
    seconds = time.perf_counter() - start
    return {
        "seed": seed,
        "recipe": recipe.label,
        "noise": noise,
        "nu": trainer.learned_nu(),
        "error nu": trainer.nu_error(),
        "error u": trainer.relative_l2(),
        "loss pde": float(history["loss/pde"][-1]),
        "loss data": float(history["loss/data"][-1]),
        "steps": trainer.step,
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_options(p)
    p.add_argument("--noise", type=float, default=0.0, help="relative noise of the samples")
    args = p.parse_args(argv)
    changes = recipe_changes(args)
    for seed in seeds(args):
        print(json.dumps(run(seed, changes, args.noise)), flush=True)
        print(f"seed {seed} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
