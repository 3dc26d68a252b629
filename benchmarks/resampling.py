"""The amortised cost of residual-adaptive points (RAD) against uniform redraws.

Burgers 1-D as packaged (``jno.problems.Burgers1D.default``: MLP 3 x 50, 1024
interior, 128 boundary and 128 initial points, Adam), three variants timed in blocks
of ``--steps`` steps (a multiple of ``--every``, so each RAD block holds the same number
of redraws), interleaved over ``--rounds`` rounds in one process:

* ``uniform``: the interior points redrawn uniformly every step (the default);
* ``fixed``: one fixed draw;
* ``rad``: :class:`jno.resampling.RAD` with ``every`` and ``pool_factor``: the residual
  of a pool of ``pool_factor x 1024`` candidates every ``every`` steps.

Target: RAD with ``every=100`` and a pool of 4x the set costs <= 1.10x the uniform
step. Run::

    .venv/bin/python benchmarks/resampling.py [--every 100] [--steps 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jno.problems import Burgers1D  # noqa: E402
from jno.resampling import RAD  # noqa: E402

from common import interleaved  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--pool-factor", type=int, default=4)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.steps % args.every:
        parser.error("--steps must be a multiple of --every")
    common = {"seed": 0, "log_every": 10**9, "progress": False}
    every, factor = args.every, args.pool_factor
    trainers = {
        "uniform": Burgers1D.default(**common),
        "fixed": Burgers1D.default(resample=False, **common),
        "rad": Burgers1D.default(
            adaptive_points=lambda b: RAD(b, every=every, pool_factor=factor), **common
        ),
    }
    for t in trainers.values():  # start at a multiple of every, after compiling
        t.fit(args.every)
    times = interleaved(
        {k: (lambda t=t: t.fit(args.steps)) for k, t in trainers.items()},
        rounds=args.rounds,
        steps=args.steps,
    )
    print(f"Burgers1D default, RAD every={every}, pool {factor}x, {args.steps}-step blocks")
    print("| variant | ms/step (wall) | ms/step (CPU) | ratio to uniform (wall, CPU) |")
    print("|---|---|---|---|")
    for name in trainers:
        print(
            f"| {name} | {1e3 * times.median(name):.3f} | {1e3 * times.median(name, 'cpu'):.3f} "
            f"| {times.ratio(name, 'uniform'):.3f}, {times.ratio(name, 'uniform', 'cpu'):.3f} |"
        )


if __name__ == "__main__":
    main()
