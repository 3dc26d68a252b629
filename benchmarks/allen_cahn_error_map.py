"""Where the Allen-Cahn recipe's error lives: bands of ``t`` and of ``x``.

Trains ``AllenCahn1D.recipes["quasi-newton"]`` (float64) for ``--seed`` and prints, on the
513 x 201 evaluation grid, the relative L2 error, then for bands of ``t`` and of ``x``
the share of the squared error and the largest absolute error, and the largest and RMS
absolute error at a few times. ``u(x, 0) = x^2 cos(pi x)`` is periodic but its slope
jumps from -2 to 2 across ``x = +-1``; the bands near ``x = +-1`` and early times show
what that costs a network that is smooth and periodic in ``x``.

``--soft --hidden 20,20,20 --qn-steps 20000`` is the recipe before it imposed the kink
(:func:`jno.problems.initial_kink`); ``--hidden 20,20,20 --qn-steps 40000`` the kink on
a 3 x 20 network, at half the iterations it ran with (``allen_cahn_error_map_kink.log``).
The packaged recipe is now 3 x 30 with the kink.

Usage:
    .venv/bin/python benchmarks/allen_cahn_error_map.py --seed 0 --soft --hidden 20,20,20 \\
        --qn-steps 20000 > benchmarks/results/allen_cahn_error_map.log
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from jno.problems import AllenCahn1D  # noqa: E402

T_BANDS = ((0.0, 0.001), (0.001, 0.05), (0.05, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))
X_BANDS = ((-1.0, -0.95), (-0.95, -0.5), (-0.5, 0.5), (0.5, 0.95), (0.95, 1.0))


def _band(values: np.ndarray, lo: float, hi: float, last: bool) -> np.ndarray:
    return (values >= lo) & ((values <= hi) if last else (values < hi))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--qn-steps", type=int, help="the recipe's by default")
    parser.add_argument("--soft", action="store_true", help="without the initial kink")
    parser.add_argument(
        "--hidden",
        type=lambda s: tuple(int(w) for w in s.split(",")),
        help="hidden widths, e.g. 20,20,20; the recipe's by default",
    )
    args = parser.parse_args()

    recipe = AllenCahn1D.recipes["quasi-newton"]
    if args.qn_steps is not None:
        recipe = recipe.replace(qn_steps=args.qn_steps)
    if args.soft:
        recipe = recipe.replace(exact=False)
    if args.hidden is not None:
        recipe = recipe.replace(hidden=args.hidden)
    start = time.perf_counter()
    trainer = recipe.trainer(AllenCahn1D, seed=args.seed, progress=False)
    recipe.run(trainer)
    print(f"trained {recipe.label} in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    points = np.asarray(trainer.evaluation_points())
    error = np.asarray(trainer.predict()).ravel() - np.asarray(trainer.reference_values()).ravel()
    reference = np.asarray(trainer.reference_values()).ravel()
    x, t = points[:, 0], points[:, 1]
    squared = error**2
    print(f"seed {args.seed}, {recipe.label}")
    print(f"relative L2: {np.sqrt(squared.sum() / np.sum(reference**2)):.3e}")
    print("| band | share of squared error | largest abs. error |")
    print("|---|---|---|")
    for name, values, bands in (("t", t, T_BANDS), ("x", x, X_BANDS)):
        for i, (lo, hi) in enumerate(bands):
            inside = _band(values, lo, hi, last=i == len(bands) - 1)
            share = squared[inside].sum() / squared.sum()
            print(
                f"| {name} in [{lo}, {hi}{']' if i == len(bands) - 1 else ')'} | {share:.3f} | "
                f"{np.sqrt(squared[inside].max()):.2e} |"
            )
    both = (np.abs(x) >= 0.95) & (t < 0.2)
    print(
        f"| abs(x) >= 0.95 and t < 0.2 ({both.mean():.1%} of the grid) | "
        f"{squared[both].sum() / squared.sum():.3f} | {np.sqrt(squared[both].max()):.2e} |"
    )
    print("| t | largest abs. error | RMS abs. error |")
    print("|---|---|---|")
    for time_value in (0.0, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0):
        at = np.isclose(t, time_value)
        print(
            f"| {time_value} | {np.abs(error[at]).max():.2e} | {np.sqrt(squared[at].mean()):.2e} |"
        )


if __name__ == "__main__":
    main()
