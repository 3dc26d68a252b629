"""Exact-count interior points of a CSG domain against a plain uniform draw.

Domain: the four-hole plate, the unit square minus four disks of radius 0.1 centred at
(0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7) (area 1 - 4 pi 0.01, 87 % of its
bounding box). Two compiled functions of a key, each drawing ``--n`` points:

* ``jno``: ``plate.interior(n).sample`` inside ``jax.jit``: rejection from the bounding
  box with an exact count (a first batch of ``n`` candidates whose rejected slots are
  packed into bit words, and a ``while_loop`` of short top-up batches scattered into
  them);
* ``plain``: ``jax.random.uniform(key, (2 n,)).reshape(n, 2) * (hi - lo) + lo`` in plain
  JAX (no jno code), the bounding box's uniform points, which an exact-count sampler
  cannot beat. The flat draw holds the same numbers as a draw of shape ``(n, 2)`` and
  is the faster of the two on XLA's CPU backend.

Both are compiled first, then timed in interleaved blocks of ``--draws`` draws (fresh
keys, ``block_until_ready`` on every result) over ``--rounds`` rounds; the ratio is the
median over rounds of ``jno / plain`` in the same round. Target: ratio <= 2.

Usage:
    .venv/bin/python benchmarks/domain_sampling.py --n 100000 --rounds 7 [--x64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved  # noqa: E402

HOLES = [(0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)]


def plain_draw(n: int, lo, hi, dtype):
    """Uniform points of the box ``[lo, hi]``, plain JAX."""
    lo, hi = np.asarray(lo, dtype), np.asarray(hi, dtype)
    return jax.jit(
        lambda key: jax.random.uniform(key, (2 * n,), dtype).reshape(n, 2) * (hi - lo) + lo
    )


def jno_draw(n: int):
    """The plate, its bounds and its compiled exact-count interior draw."""
    from jno.domain import Disk, Rectangle

    plate = Rectangle([0.0, 0.0], [1.0, 1.0])
    for k, c in enumerate(HOLES):
        plate = plate - Disk(c, 0.1, name=f"hole{k}")
    return plate, jax.jit(plate.interior(n, resample=True).sample)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="points per draw")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--draws", type=int, default=20, help="draws per timed block")
    parser.add_argument("--x64", action="store_true", help="sample in float64")
    args = parser.parse_args(argv)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    dtype = jax.numpy.zeros(()).dtype
    plate, sample = jno_draw(args.n)
    baseline = plain_draw(args.n, *plate.bounds, dtype)
    keys = list(jax.random.split(jax.random.key(0), args.draws))
    x = np.asarray(sample(keys[0]))
    assert x.shape == (args.n, 2) and bool(plate.contains(x).all())
    times = interleaved(
        {"jno": lambda: [sample(k) for k in keys], "plain": lambda: [baseline(k) for k in keys]},
        rounds=args.rounds,
        steps=args.draws,
    )
    print(
        f"four-hole plate, n={args.n}, {dtype}, {args.rounds} rounds of {args.draws} draws; "
        f"fill fraction {plate.fill_fraction:.4f}"
    )
    print("| draw | ms/draw (wall) | ms/draw (CPU) |")
    print("|---|---|---|")
    for name in ("jno", "plain"):
        print(
            f"| {name} | {1e3 * times.median(name):.3f} | {1e3 * times.median(name, 'cpu'):.3f} |"
        )
    print(
        f"ratio jno / plain: {times.ratio('jno', 'plain'):.3f} (wall), "
        f"{times.ratio('jno', 'plain', 'cpu'):.3f} (CPU); target <= 2"
    )


if __name__ == "__main__":
    main()
