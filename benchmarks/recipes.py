"""Accuracy of the packaged quasi-Newton recipes: relative L2 along the run, 3 seeds.

Each run builds ``Problem.recipes["quasi-newton"]`` (optionally changed by the options),
trains it in float64 and records the relative L2 error every ``--report-every`` steps
and the wall time, appending one JSON line per seed to ``--out`` as soon as it finishes.
Runs are sequential (each uses every core).

Examples (from the repository root)::

    .venv/bin/python benchmarks/recipes.py --problems Burgers1D --seeds 0 1 2 \\
        --out benchmarks/results/quasi_newton.jsonl
    .venv/bin/python benchmarks/recipes.py --table benchmarks/results/quasi_newton.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from jno.problems import AllenCahn1D, Burgers1D, Helmholtz2D, KleinGordon1D, Poisson2D  # noqa: E402

PROBLEMS = {
    "Poisson2D": Poisson2D,
    "Helmholtz2D": Helmholtz2D,
    "Burgers1D": Burgers1D,
    "KleinGordon1D": KleinGordon1D,
    "AllenCahn1D": AllenCahn1D,
}


def attention_of(kind: str | None, n: int) -> dict:
    """The trainer keywords of ``--attention`` for a residual set of ``n`` points."""
    if kind is None:
        return {}
    from jno.nnx import RBA, VRBA

    return {"attention": {"pde": RBA(n) if kind == "rba" else VRBA(n)}}


def run_one(
    problem: str, seed: int, changes: dict, report_every: int, attention: str | None = None
) -> dict:
    cls = PROBLEMS[problem]
    recipe = cls.recipes["quasi-newton"].replace(**changes)
    start = time.perf_counter()
    extra = attention_of(attention, recipe.points)
    trainer = recipe.trainer(cls, seed=seed, progress=False, log_every=500, **extra)
    trace = []
    marks = sorted(
        {*range(recipe.adam_steps, recipe.total_steps, report_every), recipe.total_steps}
    )
    for mark in marks:
        recipe.run(trainer, until=mark)
        err = trainer.relative_l2()
        elapsed = time.perf_counter() - start
        trace.append([mark, err, round(elapsed, 1)])
        print(f"{problem} seed {seed} step {mark}: {err:.3e} ({elapsed:.0f} s)", file=sys.stderr)
    final = {k: float(trainer.history[f"loss/{k}"][-1]) for k in trainer.term_names}
    return {
        "problem": problem,
        "seed": seed,
        "relative_l2": trace[-1][1],
        "wall_s": trace[-1][2],
        "trace": trace,
        "final_losses": final,
        "recipe": {k: v for k, v in vars(recipe).items()},
        "attention": attention,
    }


def fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.2e}"


def _widths(hidden) -> str:
    if len(set(hidden)) == 1:
        return f"MLP {len(hidden)} x {hidden[0]}"
    return "MLP " + "-".join(map(str, hidden))


def table(path: str) -> str:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [
        "| problem | recipe | rel. L2 mean ± std | per seed: rel. L2 (wall) |",
        "|---|---|---|---|",
    ]
    groups: dict[tuple, list] = {}
    for r in rows:
        rc = r["recipe"]
        label = (
            f"{_widths(rc['hidden'])}, {rc['points']} pts, Adam {rc['adam_steps']}"
            f" + {rc['method']} {rc['qn_steps']}, RAD every {rc['redraw_every']}"
            + ("" if rc["keep_hessian"] else ", fresh H per block")
            + (", no redraw" if rc["redraw_every"] >= rc["adam_steps"] + rc["qn_steps"] else "")
            + (
                f" + {rc['gauss_newton']} {rc['gauss_newton_steps']}"
                if rc.get("gauss_newton_steps")
                else ""
            )
            + (", exact conditions" if rc.get("exact") else "")
            + (f", {r['attention'].upper()} on pde" if r.get("attention") else "")
        )
        groups.setdefault((r["problem"], label), []).append(r)
    for (problem, label), rs in groups.items():
        errs = [r["relative_l2"] for r in rs]
        std = fmt(statistics.stdev(errs)) if len(errs) > 1 else "-"
        seeds = "; ".join(f"s{r['seed']} {fmt(r['relative_l2'])} ({r['wall_s']:.0f} s)" for r in rs)
        out.append(f"| {problem} | {label} | {fmt(statistics.mean(errs))} ± {std} | {seeds} |")
    return "\n".join(out)


def trace_table(path: str) -> str:
    """The relative L2 of every run along its steps, one row per problem and step."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = ["| problem | step | relative L2 per seed |", "|---|---|---|"]
    for problem in dict.fromkeys(r["problem"] for r in rows):
        runs = [r for r in rows if r["problem"] == problem]
        for i, (step, *_) in enumerate(runs[0]["trace"]):
            errs = " / ".join(fmt(r["trace"][i][1]) for r in runs if len(r["trace"]) > i)
            out.append(f"| {problem} | {step} | {errs} |")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--report-every", type=int, default=2500)
    p.add_argument("--hidden", type=lambda s: tuple(int(w) for w in s.split(",")))
    p.add_argument("--points", type=int)
    p.add_argument("--boundary-points", type=int)
    p.add_argument("--adam-steps", type=int)
    p.add_argument("--qn-steps", type=int)
    p.add_argument("--redraw-every", type=int)
    p.add_argument("--method", choices=("bfgs", "ssbfgs", "ssbroyden"))
    p.add_argument("--fresh-hessian", action="store_true")
    p.add_argument("--exact", action="store_true", help="the problem's exact conditions")
    p.add_argument("--soft", action="store_true", help="no exact conditions (loss terms)")
    p.add_argument("--gauss-newton", choices=("levenberg_marquardt", "engd"))
    p.add_argument("--gauss-newton-steps", type=int)
    p.add_argument("--attention", choices=("rba", "vrba"), help="residual attention on pde")
    p.add_argument("--out", default="benchmarks/results/quasi_newton.jsonl")
    p.add_argument("--table", metavar="JSONL", help="print the table of a results file and exit")
    p.add_argument("--trace", metavar="JSONL", help="print the errors along the runs and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return
    if args.trace:
        print(trace_table(args.trace))
        return
    changes = {
        k: getattr(args, k)
        for k in (
            "hidden",
            "points",
            "boundary_points",
            "adam_steps",
            "qn_steps",
            "redraw_every",
            "method",
            "gauss_newton",
            "gauss_newton_steps",
        )
        if getattr(args, k) is not None
    }
    if args.exact:
        changes["exact"] = True
    if args.soft:
        changes["exact"] = False
    if args.fresh_hessian:
        changes["keep_hessian"] = False
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for problem in args.problems:
        for seed in args.seeds:
            record = run_one(problem, seed, changes, args.report_every, args.attention)
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
