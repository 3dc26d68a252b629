"""Accuracy of the first-order recipe and its ablations: relative L2 along the run.

Each run builds ``Problem.recipes["soap"]`` (:class:`jno.problems.recipes.FirstOrderRecipe`)
changed by one variant, trains it in float32 and records the relative L2 error every
``--report-every`` steps and the wall time, appending one JSON line per run to ``--out``
as soon as it finishes. Runs are sequential (each uses every core).

Variants (the rest of the recipe equal):

- ``pirate-soap``: the recipe (PirateNet + RWF, SOAP);
- ``pirate-adam``: Adam in place of SOAP;
- ``mlp-soap``: an MLP of the same width and depth with RWF, SOAP;
- ``modified-soap``: a ModifiedMLP of the same width and depth with RWF, SOAP.

Examples (from the repository root)::

    .venv/bin/python benchmarks/first_order.py --problems Burgers1D Helmholtz2D \\
        --variants pirate-soap pirate-adam --seeds 0 1 2 --out benchmarks/results/first_order.jsonl
    .venv/bin/python benchmarks/first_order.py --table benchmarks/results/first_order.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from jno.problems import AllenCahn1D, Burgers1D, Helmholtz2D, KleinGordon1D, Poisson2D

PROBLEMS = {
    "Poisson2D": Poisson2D,
    "Helmholtz2D": Helmholtz2D,
    "Burgers1D": Burgers1D,
    "KleinGordon1D": KleinGordon1D,
    "AllenCahn1D": AllenCahn1D,
}
VARIANTS = {
    "pirate-soap": {},
    "pirate-adam": {"optimizer": "adam"},
    "mlp-soap": {"network": "mlp"},
    "modified-soap": {"network": "modified"},
}


def run_one(problem: str, variant: str, seed: int, changes: dict, report_every: int) -> dict:
    cls = PROBLEMS[problem]
    recipe = cls.recipes["soap"].replace(**VARIANTS[variant], **changes)
    start = time.perf_counter()
    trainer = recipe.trainer(cls, seed=seed, progress=False, log_every=500)
    trace = []
    for mark in sorted({*range(report_every, recipe.steps, report_every), recipe.steps}):
        recipe.run(trainer, until=mark)
        err = trainer.relative_l2()
        elapsed = time.perf_counter() - start
        trace.append([mark, err, round(elapsed, 1)])
        print(
            f"{problem} {variant} seed {seed} step {mark}: {err:.3e} ({elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return {
        "problem": problem,
        "variant": variant,
        "label": recipe.label,
        "seed": seed,
        "relative_l2": trace[-1][1],
        "best_relative_l2": min(e for _, e, _ in trace),
        "wall_s": trace[-1][2],
        "trace": trace,
        "recipe": dict(vars(recipe)),
    }


def fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.2e}"


def table(path: str) -> str:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [
        "| problem | recipe | steps | rel. L2 mean ± std | per seed: rel. L2 (wall) |",
        "|---|---|---|---|---|",
    ]
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["problem"], r["label"], r["recipe"]["steps"]), []).append(r)
    for (problem, label, steps), rs in groups.items():
        errs = [r["relative_l2"] for r in rs]
        std = fmt(statistics.stdev(errs)) if len(errs) > 1 else "-"
        seeds = "; ".join(f"s{r['seed']} {fmt(r['relative_l2'])} ({r['wall_s']:.0f} s)" for r in rs)
        out.append(
            f"| {problem} | {label} | {steps} | {fmt(statistics.mean(errs))} ± {std} | {seeds} |"
        )
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=["AllenCahn1D"], choices=list(PROBLEMS))
    p.add_argument("--variants", nargs="+", default=["pirate-soap"], choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--report-every", type=int, default=2000)
    p.add_argument("--steps", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--depth", type=int)
    p.add_argument("--points", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--out", default="benchmarks/results/first_order.jsonl")
    p.add_argument("--table", metavar="JSONL", help="print the table of a results file and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return
    names = ("steps", "width", "depth", "points", "lr")
    changes = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for problem in args.problems:
        for variant in args.variants:
            for seed in args.seeds:
                record = run_one(problem, variant, seed, changes, args.report_every)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
