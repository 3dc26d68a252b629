"""``jno train``: the command, and the options it shares with ``jno compare``.

``jno train PROBLEM`` builds a packaged problem's trainer with the balancer and schedule
named on the command line (:func:`jno.app.experiment.build_trainer`), trains it, writes a
TensorBoard run, the history plot and the solution / error figure, and prints the
relative L2 error.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser().add_subparsers()
    >>> add_train_parser(sub)
    >>> args = sub.choices["train"].parse_args(["burgers1d", "--hidden", "20,20"])
    >>> args.balancer, args.schedule, args.hidden, args.steps
    ('relobralo', 'exponential', [20, 20], 40000)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jno.app.arguments import positive_int, problem_argument, widths
from jno.app.experiment import BALANCERS, MODES, PROBLEMS, SCHEDULES, run_train
from jno.app.user_problems import problem_label

__all__ = [
    "add_common_options",
    "add_recipe_options",
    "add_train_parser",
    "positive_int",
    "schedule_options",
]


def add_common_options(p: argparse.ArgumentParser, steps: int) -> None:
    """The options ``jno train`` and ``jno compare`` share: problem, schedule, network.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_common_options(p, steps=500)
        >>> args = p.parse_args(["Helmholtz2D", "--schedule", "cosine", "--lr-end", "1e-5"])
        >>> args.problem, args.steps, args.schedule, args.lr_end
        ('helmholtz2d', 500, 'cosine', 1e-05)
    """
    p.add_argument(
        "problem",
        type=problem_argument,
        help=f"the packaged problem to train, one of {', '.join(PROBLEMS)} (any case: "
        "AllenCahn1D is allencahn1d), or your own Problem class as path/to/file.py:Class",
    )
    p.add_argument(
        "--steps", type=positive_int, default=steps, help="training steps (default: %(default)s)"
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="raw",
        help="how the balancer normalises the losses it sees; fixed ignores it "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="exponential",
        help="learning-rate schedule scaling Adam (default: %(default)s)",
    )
    p.add_argument(
        "--lr", type=float, default=1e-3, help="initial (peak) learning rate (default: %(default)s)"
    )
    p.add_argument(
        "--lr-end",
        type=float,
        default=None,
        help="final rate of cosine / warmup_cosine and the floor of exponential and dlrs "
        "(default: 1e-6; exponential: no floor)",
    )
    p.add_argument(
        "--warmup-steps",
        type=positive_int,
        default=None,
        help="warm-up steps of warmup_cosine (default: 5%% of --steps) and of --recipe soap "
        "(default: the recipe's)",
    )
    p.add_argument(
        "--decay-rate",
        type=float,
        default=0.9,
        help="factor per --decay-steps of exponential (default: %(default)s)",
    )
    p.add_argument(
        "--decay-steps",
        type=positive_int,
        default=1000,
        help="steps per --decay-rate factor of exponential (default: %(default)s)",
    )
    p.add_argument(
        "--hidden",
        type=widths,
        default=None,
        help="hidden widths of the network, e.g. 50,50,50 (default: the problem's, 50,50,50)",
    )
    p.add_argument(
        "--network",
        choices=("mlp", "modified", "pirate"),
        default=None,
        help="mlp, modified: the gated two-encoder MLP of Wang, Teng & Perdikaris, or "
        "pirate: the PirateNet of Wang et al. 2024 (with --recipe soap only) (default: mlp; "
        "with --recipe soap: the recipe's, pirate)",
    )
    p.add_argument(
        "--causal-chunks",
        type=positive_int,
        default=None,
        help="time-dependent problems: causal weights over this many time chunks on the "
        "PDE residual (default: none)",
    )
    p.add_argument(
        "--points",
        choices=("uniform", "fixed", "rad", "r3"),
        default="uniform",
        help="the PDE points: redrawn uniformly every step, drawn once, or moved by the "
        "residual (RAD, R3) every --sampler-every steps (default: uniform)",
    )
    p.add_argument(
        "--sampler-every",
        type=positive_int,
        default=500,
        help="steps between redraws of --points rad / r3 (default: 500)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="points per set and step, redrawn every step (default: the problem's, 128; "
        "Burgers: 1024 interior)",
    )
    p.add_argument(
        "--log-every",
        type=positive_int,
        default=None,
        help="steps between logged values (default: --steps / 100)",
    )


def schedule_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~jno.app.experiment.build_trainer` keywords of the shared options.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_common_options(p, steps=500)
        >>> options = schedule_options(p.parse_args(["poisson2d", "--hidden", "16,16"]))
        >>> options["schedule"], options["lr"], options["hidden"]
        ('exponential', 0.001, [16, 16])
    """
    return {
        "mode": args.mode,
        "schedule": args.schedule,
        "lr": args.lr,
        "lr_end": args.lr_end,
        "warmup_steps": args.warmup_steps,
        "decay_rate": args.decay_rate,
        "decay_steps": args.decay_steps,
        "hidden": args.hidden,
        "batch_size": args.batch_size,
        "network": args.network or "mlp",
        "causal_chunks": args.causal_chunks,
        "points": args.points,
        "sampler_every": args.sampler_every,
    }


def _run(args: argparse.Namespace) -> int:
    if args.recipe is not None:
        return _run_recipe(args)
    for option in ("optimizer", "recipe_steps"):
        if getattr(args, option) is not None:
            raise SystemExit(f"--{option.replace('_', '-')} is an option of --recipe soap")
    if args.network == "pirate":
        raise SystemExit("--network pirate is an option of --recipe soap")
    logdir = args.logdir or Path("runs") / (
        f"{problem_label(args.problem)}-{args.balancer}-{args.schedule}-seed{args.seed}"
    )
    result = run_train(
        args.problem,
        steps=args.steps,
        out=args.out,
        logdir=logdir,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        progress=False if args.quiet else None,
        balancer=args.balancer,
        seed=args.seed,
        **schedule_options(args),
    )
    _report(result, logdir)
    return 0


def _run_recipe(args: argparse.Namespace) -> int:
    from jno.app.recipes import run_recipe

    label = problem_label(args.problem)
    logdir = args.logdir or Path("runs") / f"{label}-{args.recipe}-seed{args.seed}"
    result = run_recipe(
        args.problem,
        recipe=args.recipe,
        seed=args.seed,
        out=args.out,
        logdir=logdir,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        progress=False if args.quiet else None,
        minutes=getattr(args, "minutes", None),
        **recipe_changes(args),
    )
    _report(result, logdir)
    return 0


def recipe_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe's fields set on the command line (None: the recipe's own).

    Example:
        >>> ns = argparse.Namespace(recipe="soap", hidden=[32, 32, 32], batch_size=1024,
        ...     network=None, optimizer="adam", recipe_steps=None)
        >>> sorted(recipe_changes(ns).items())  # doctest: +NORMALIZE_WHITESPACE
        [('depth', 3), ('network', None), ('optimizer', 'adam'), ('points', 1024),
         ('steps', None), ('warmup_steps', None), ('width', 32)]
    """
    changes: dict[str, Any] = {"points": args.batch_size}
    if args.recipe == "quasi-newton":
        for option in ("network", "optimizer", "recipe_steps"):
            if getattr(args, option, None) is not None:
                raise SystemExit(f"--{option.replace('_', '-')} is an option of --recipe soap")
        changes.update(method=args.qn_method, qn_steps=args.qn_steps, adam_steps=args.adam_steps)
        changes["hidden"] = None if args.hidden is None else tuple(args.hidden)
        return changes
    for option in ("qn_method", "qn_steps", "adam_steps"):
        if getattr(args, option, None) is not None:
            raise SystemExit(f"--{option.replace('_', '-')} is an option of --recipe quasi-newton")
    changes.update(network=args.network, optimizer=args.optimizer, steps=args.recipe_steps)
    changes["warmup_steps"] = getattr(args, "warmup_steps", None)
    if args.hidden is not None:
        if len(set(args.hidden)) != 1:
            raise SystemExit(f"--hidden must repeat one width for --recipe soap, got {args.hidden}")
        changes.update(width=args.hidden[0], depth=len(args.hidden))
    return changes


def _report(result: dict[str, Any], logdir: Path) -> None:
    if result["resumed_from"] is not None:
        print(f"resumed from step {result['resumed_from']}")
    errors = result["relative_l2"]
    if errors is None:  # a problem without a reference: its final losses
        history = result["history"]
        losses = {k[5:]: history[k][-1] for k in history if k.startswith("loss/")}
        print(
            "no reference solution; final losses: "
            + ", ".join(f"{name} {value:.3e}" for name, value in losses.items())
        )
    elif isinstance(errors, dict):  # a system: one line per field
        for name, error in errors.items():
            print(f"relative L2 error {name}: {error:.3e}")
    else:
        print(f"relative L2 error: {errors:.3e}")
    figures = [p for p in (result["figure"], result["history_plot"]) if p is not None]
    print("figures: " + ", ".join(map(str, figures)))
    print(f"tensorboard --logdir {Path(logdir).parent}")


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    """``--recipe`` and the budget of its phases (``jno train`` and ``jno demo``).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_recipe_options(p)
        >>> args = p.parse_args(["--recipe", "quasi-newton", "--qn-method", "ssbfgs"])
        >>> args.recipe, args.qn_method, args.qn_steps
        ('quasi-newton', 'ssbfgs', None)
    """
    p.add_argument(
        "--recipe",
        choices=("quasi-newton", "soap"),
        default=None,
        help="train with the problem's packaged recipe instead (the balancer and schedule "
        "options are not used): quasi-newton is float64, an Adam warm-up, then a dense "
        "quasi-Newton method on residual points redrawn by RAD between blocks of "
        "iterations; soap is a PirateNet with weight factorization, SOAP, causal and "
        "gradient-norm weights on points drawn every step. --hidden and --batch-size (the "
        "residual points) change either (default: none)",
    )
    p.add_argument(
        "--optimizer",
        choices=("soap", "adam"),
        default=None,
        help="the soap recipe's optimizer (default: the recipe's, soap)",
    )
    p.add_argument(
        "--recipe-steps",
        type=positive_int,
        default=None,
        help="the soap recipe's training steps (default: the recipe's)",
    )
    p.add_argument(
        "--qn-method",
        choices=("bfgs", "ssbfgs", "ssbroyden"),
        default=None,
        help="the recipe's quasi-Newton update (default: the recipe's, ssbroyden)",
    )
    p.add_argument(
        "--qn-steps",
        type=positive_int,
        default=None,
        help="the recipe's quasi-Newton iterations (default: the recipe's)",
    )
    p.add_argument(
        "--adam-steps",
        type=positive_int,
        default=None,
        help="the recipe's Adam warm-up steps (default: the recipe's)",
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="size the quasi-newton recipe's step counts to about this many minutes on "
        "this machine, measured on the trainer before it trains (default: the recipe's)",
    )


def add_train_parser(subparsers: Any) -> None:
    """Registers ``jno train``."""
    p = subparsers.add_parser(
        "train",
        help="train a packaged problem with a balancer and a schedule",
        description=(
            "Train a packaged PDE problem (jno.problems) with its default tanh MLP, Adam "
            "scaled by a learning-rate schedule and a loss balancer. Writes a TensorBoard "
            "run, OUT/history.png (losses, weights, learning rate) and OUT/solution.png "
            "(reference, prediction, error), and prints the relative L2 error on the "
            "problem's grid and the tensorboard --logdir line. With --checkpoint-dir, a "
            "second run resumes from the last checkpoint and stops at --steps in total."
        ),
    )
    add_common_options(p, steps=40_000)
    p.add_argument(
        "--balancer",
        choices=BALANCERS,
        default="relobralo",
        help="loss balancer; fixed gives every loss weight 1 (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the network, the points and the balancer (default: %(default)s)",
    )
    p.add_argument(
        "--logdir",
        type=Path,
        default=None,
        help="TensorBoard run directory (default: runs/PROBLEM-BALANCER-SCHEDULE-seedSEED)",
    )
    p.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="orbax checkpoint folder; resumes from it when it holds one (default: none)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="steps between checkpoints (default: only at the end)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("jno_train"),
        help="folder for history.png and solution.png (default: %(default)s)",
    )
    add_recipe_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_run)
