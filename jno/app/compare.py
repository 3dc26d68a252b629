"""``jno compare``: several balancers on one problem, over several seeds.

:func:`run_compare` trains each balancer's seeds as one ensemble (:func:`jno.ensemble`,
every seed in one compiled program) with the same schedule and network, measuring the
relative L2 error at regular steps along the way, then writes ``compare.md`` (markdown
tables: relative L2 mean ± std, median and each seed's value, the ensemble's wall
time; for each pair of balancers the probability that one ends below the other on a
fresh seed, with a bootstrap interval) and ``compare.png`` (mean loss and error curves
with min-max bands, final errors).

Example:
    >>> rows = summarize([
    ...     {"balancer": "fixed", "seed": 0, "relative_l2": 0.2, "wall_time": 1.0},
    ...     {"balancer": "fixed", "seed": 1, "relative_l2": 0.4, "wall_time": 3.0},
    ... ])
    >>> rows[0]["mean"], round(rows[0]["std"], 4), rows[0]["wall_time"]
    (0.30000000000000004, 0.1414, 2.0)
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jno.app.experiment import BALANCERS, build_trainer
from jno.app.train import add_common_options, positive_int, schedule_options
from jno.nnx._checks import check_int
from jno.train._plotting import pyplot, save_figure
from jno.train.ensemble import ensemble

__all__ = [
    "add_compare_parser",
    "beats",
    "format_table",
    "pairwise",
    "plot_compare",
    "run_compare",
    "summarize",
]


def _worst_field(error: Any) -> float:
    """A run's error: the relative L2 error, or the largest over a system's fields."""
    return max(error.values()) if isinstance(error, dict) else error


def _eval_steps(steps: int, evals: int) -> list[int]:
    """The steps after which the error is measured: ``evals`` even chunks, ending at ``steps``."""
    chunk = math.ceil(steps / min(evals, steps))
    return [*range(chunk, steps, chunk), steps]


def _unweighted_loss(history: Any) -> np.ndarray:
    # loss/total is the weighted sum, which does not compare across balancers.
    terms = [t for t in history if t.startswith("loss/") and t != "loss/total"]
    return np.sum([history[t] for t in terms], axis=0)


def run_compare(
    problem: str,
    balancers: Sequence[str],
    *,
    seeds: int = 3,
    steps: int = 10_000,
    out: str | Path = "jno_compare",
    evals: int = 20,
    logdir: str | Path | None = None,
    log_every: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Trains every balancer with seeds ``0 .. seeds - 1``; writes the table and figure.

    Args:
        problem: a name of :data:`jno.app.experiment.PROBLEMS`.
        balancers: names of :data:`jno.app.experiment.BALANCERS`.
        seeds: number of seeds per balancer.
        steps: training steps of every run.
        out: folder for ``compare.md`` and ``compare.png``.
        evals: how many times along each run the relative L2 error is measured.
        logdir: when given, each run writes TensorBoard to ``logdir/BALANCER/seed_K``.
        log_every: steps between logged values (default ``steps / 100``).
        **options: :func:`~jno.app.experiment.build_trainer` keywords (schedule, lr, ...).

    Returns:
        ``runs`` (one dict per run: ``balancer``, ``seed``, ``relative_l2``,
        ``wall_time``, ``eval_steps``, ``errors``, ``history``), ``rows``
        (:func:`summarize`), ``table`` (the markdown), ``markdown`` and ``figure``
        (paths).

    Example:
        >>> import tempfile
        >>> r = run_compare("poisson2d", ["dwa"], seeds=1, steps=4, evals=2,
        ...                 out=tempfile.mkdtemp(), hidden=[4], batch_size=8)
        >>> [(run["balancer"], run["seed"], run["eval_steps"]) for run in r["runs"]]
        [('dwa', 0, [0, 2, 4])]
        >>> r["markdown"].name, r["figure"].name
        ('compare.md', 'compare.png')
    """
    unknown = [b for b in balancers if b not in BALANCERS]
    if not balancers or unknown:
        raise ValueError(f"balancers must be names among {', '.join(BALANCERS)}; got {balancers}")
    seeds = check_int("seeds", seeds, minimum=1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_every = max(1, steps // 100) if log_every is None else log_every
    runs = []
    for name in balancers:

        def make(seed: int, name: str = name) -> Any:
            return build_trainer(
                problem, balancer=name, seed=seed, steps=steps, log_every=log_every,
                progress=False, **options,
            )  # fmt: skip

        members = ensemble(
            make, seeds=range(seeds), logdir=None if logdir is None else Path(logdir) / name
        )
        errors, wall = [[_worst_field(m.relative_l2()) for m in members.members]], 0.0
        for target in _eval_steps(steps, evals):
            start = time.perf_counter()
            members.fit(until=target)
            wall += time.perf_counter() - start
            errors.append([_worst_field(m.relative_l2()) for m in members.members])
        for k, member in enumerate(members.members):
            runs.append(
                {
                    "balancer": name,
                    "seed": k,
                    "relative_l2": errors[-1][k],
                    "wall_time": wall,
                    "eval_steps": [0, *_eval_steps(steps, evals)],
                    "errors": [row[k] for row in errors],
                    "history": member.history,
                }
            )
    rows = summarize(runs)
    title = f"{problem}, {steps} steps, seeds 0-{seeds - 1}, schedule {options.get('schedule')}"
    table = format_table(rows, title)
    markdown = out / "compare.md"
    markdown.write_text(table)
    figure = plot_compare(runs, out / "compare.png", title=title)
    return {"runs": runs, "rows": rows, "table": table, "markdown": markdown, "figure": figure}


def summarize(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per balancer, in first-seen order: mean, std, median, per-seed values and
    the wall time of its ensemble (every seed trained together).

    ``std`` is the sample standard deviation over the seeds (``ddof=1``; 0 for one seed).
    """
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = rows.setdefault(run["balancer"], {"balancer": run["balancer"], "values": []})
        row["values"].append(float(run["relative_l2"]))
        row.setdefault("times", []).append(float(run["wall_time"]))
    for row in rows.values():
        values = np.asarray(row["values"])
        row["mean"] = float(np.mean(values))
        row["std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        row["median"] = float(np.median(values))
        row["wall_time"] = float(np.mean(row.pop("times")))
    return list(rows.values())


def beats(a: Sequence[float], b: Sequence[float]) -> float:
    """The probability that a fresh run with errors distributed as ``a`` ends below one
    distributed as ``b``: the fraction of pairs ``(a_i, b_j)`` with ``a_i < b_j``, ties
    counting one half (the Mann-Whitney statistic over ``n m``).

    Example:
        >>> beats([1.0, 3.0], [2.0, 4.0])  # pairs (1,2) (1,4) (3,4) won, (3,2) lost
        0.75
    """
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None, :]
    return float(np.mean((a < b) + 0.5 * (a == b)))


def pairwise(
    rows: Sequence[Mapping[str, Any]], *, draws: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """For each pair of rows, :func:`beats` of the first over the second, with a 90%
    bootstrap interval: the seeds of both configurations resampled with replacement
    ``draws`` times (a fixed generator, so the table is reproducible).

    Example:
        >>> rows = [{"balancer": "a", "values": [1.0, 2.0, 3.0]},
        ...         {"balancer": "b", "values": [4.0, 5.0, 6.0]}]
        >>> [(p["first"], p["second"], p["p"], p["low"]) for p in pairwise(rows)]
        [('a', 'b', 1.0, 1.0)]
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, first in enumerate(rows):
        for second in rows[i + 1 :]:
            a, b = np.asarray(first["values"]), np.asarray(second["values"])
            boot = [beats(rng.choice(a, a.size), rng.choice(b, b.size)) for _ in range(draws)]
            low, high = np.quantile(boot, [0.05, 0.95])
            out.append(
                {
                    "first": first["balancer"],
                    "second": second["balancer"],
                    "p": beats(a, b),
                    "low": float(low),
                    "high": float(high),
                }
            )
    return out


def format_table(rows: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """The markdown tables of :func:`summarize`'s rows (errors with 4 significant
    digits) and, for two or more rows, of :func:`pairwise`.

    Example:
        >>> print(format_table([{"balancer": "rlw", "mean": 0.1, "std": 0.0, "median": 0.1,
        ...                      "values": [0.1], "wall_time": 2.0}]))
        | balancer | relative L2 (mean ± std) | median | per seed | wall time, all seeds (s) |
        |---|---|---|---|---|
        | rlw | 1.000e-01 ± 0.000e+00 | 1.000e-01 | 1.000e-01 | 2.0 |
        <BLANKLINE>
    """
    lines = [f"{title}\n"] if title else []
    lines += [
        "| balancer | relative L2 (mean ± std) | median | per seed | wall time, all seeds (s) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        values = ", ".join(f"{v:.3e}" for v in row["values"])
        lines.append(
            f"| {row['balancer']} | {row['mean']:.3e} ± {row['std']:.3e} | {row['median']:.3e} "
            f"| {values} | {row['wall_time']:.1f} |"
        )
    if len(rows) > 1:
        lines += [
            "",
            "| A | B | P(A ends below B on a fresh seed) | 90% bootstrap interval |",
            "|---|---|---|---|",
        ]
        for pair in pairwise(rows):
            lines.append(
                f"| {pair['first']} | {pair['second']} | {pair['p']:.2f} "
                f"| {pair['low']:.2f} - {pair['high']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def plot_compare(runs: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and error curves (mean over seeds, min-max band) and final errors per balancer.

    Each run needs ``balancer``, ``history`` (with ``loss/<term>`` series),
    ``eval_steps``, ``errors`` and ``relative_l2``, as :func:`run_compare` makes them.

    Example:
        >>> import tempfile
        >>> from jno.train import History
        >>> h = History()
        >>> h.append(10, {"loss/pde": 1.0, "loss/bc": 0.5})
        >>> h.append(20, {"loss/pde": 0.5, "loss/bc": 0.2})
        >>> run = {"balancer": "fixed", "history": h, "eval_steps": [0, 20],
        ...        "errors": [1.0, 0.3], "relative_l2": 0.3}
        >>> plot_compare([run], f"{tempfile.mkdtemp()}/c.png").name
        'c.png'
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    names = list(dict.fromkeys(run["balancer"] for run in runs))
    for i, name in enumerate(names):
        group = [run for run in runs if run["balancer"] == name]
        color = f"C{i}"
        curves = [
            (group[0]["history"].steps, np.stack([_unweighted_loss(r["history"]) for r in group])),
            (np.asarray(group[0]["eval_steps"]), np.stack([r["errors"] for r in group])),
        ]
        for ax, (steps, values) in zip(axes[:2], curves):
            ax.semilogy(steps, np.mean(values, axis=0), color=color, label=name)
            ax.fill_between(steps, values.min(0), values.max(0), color=color, alpha=0.2)
        finals = [r["relative_l2"] for r in group]
        axes[2].scatter([i] * len(finals), finals, color=color, alpha=0.7)
        axes[2].plot([i - 0.25, i + 0.25], [np.mean(finals)] * 2, color=color, lw=2)
    axes[0].set(title="sum of unweighted losses", xlabel="step")
    axes[1].set(title="relative L2 error", xlabel="step")
    axes[2].set(title="final relative L2 (dots: seeds, bar: mean)", yscale="log")
    axes[2].set_xticks(range(len(names)), names)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _balancer_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BALANCERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated names among {','.join(BALANCERS)}, got {text!r}"
        )
    return names


def _run(args: argparse.Namespace) -> int:
    result = run_compare(
        args.problem,
        args.balancers,
        seeds=args.seeds,
        steps=args.steps,
        out=args.out,
        evals=args.evals,
        logdir=args.logdir,
        log_every=args.log_every,
        **schedule_options(args),
    )
    print(result["table"], end="")
    print(f"table: {result['markdown']}, figure: {result['figure']}")
    if args.logdir is not None:
        print(f"tensorboard --logdir {args.logdir}")
    return 0


def add_compare_parser(subparsers: Any) -> None:
    """Registers ``jno compare``."""
    p = subparsers.add_parser(
        "compare",
        help="compare loss balancers on a packaged problem over several seeds",
        description=(
            "Train a packaged PDE problem once per (balancer, seed), seeds 0 .. SEEDS-1, "
            "with the same schedule and network, each balancer's seeds as one ensemble "
            "(one compiled program), measuring the relative L2 error along the way. "
            "Writes OUT/compare.md, markdown tables of the final relative L2 (mean ± "
            "sample std, median and each seed's value, the wall time of the ensemble, "
            "compilation included) and, for each pair of balancers, the probability that "
            "the first ends below the second on a fresh seed (pairs of seeds, with a 90%% "
            "bootstrap interval over the seeds), and OUT/compare.png (mean loss and error "
            "curves with min-max bands, final errors), and prints the tables."
        ),
    )
    add_common_options(p, steps=10_000)
    p.add_argument(
        "--balancers",
        type=_balancer_list,
        default=list(BALANCERS),
        help="comma-separated balancers to compare, among: "
        f"{', '.join(BALANCERS)} (default: all of them)",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=3, help="seeds per balancer (default: %(default)s)"
    )
    p.add_argument(
        "--evals",
        type=positive_int,
        default=20,
        help="relative L2 measurements along each run (default: %(default)s)",
    )
    p.add_argument(
        "--logdir",
        type=Path,
        default=None,
        help="write a TensorBoard run per (balancer, seed) to LOGDIR/BALANCER/seed_K "
        "(default: none)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("jno_compare"),
        help="folder for compare.md and compare.png (default: %(default)s)",
    )
    p.set_defaults(func=_run)
