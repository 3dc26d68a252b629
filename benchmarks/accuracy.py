"""Accuracy study: relative L2 error of fixed weights and every balancer on the packaged problems.

Each run builds ``Problem.default(seed=..., balancer=...)`` (for Helmholtz2D the setup of
Wang, Teng & Perdikaris 2021: MLP 3 x 50 tanh with standardised inputs, 128 points per
set redrawn every step, Adam 1e-3 decayed by 0.9 every 1000 steps), trains it for
``--steps`` steps and appends one JSON line to ``--out`` as soon as it finishes, so an
interrupted study keeps its numbers. Runs are sequential (each uses every core).

Options beyond the default setup (``--hidden``, ``--fourier-features``, ``--lr``,
``--lbfgs-steps``, ...) build stronger configurations; they are recorded in each line
under ``config`` and labelled by ``--tag``.

Examples (from the repository root)::

    .venv/bin/python benchmarks/accuracy.py --problems Helmholtz2D --steps 40000 \
        --out benchmarks/results/accuracy.jsonl
    .venv/bin/python benchmarks/accuracy.py --table benchmarks/results/accuracy.jsonl
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

if "--x64" in sys.argv:  # before any array is made
    jax.config.update("jax_enable_x64", True)

import optax  # noqa: E402
from flax import nnx  # noqa: E402

import jno  # noqa: E402
from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt  # noqa: E402
from jno.nnx.balancers.causal import CausalWeights  # noqa: E402
from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing  # noqa: E402
from jno.nnx.balancers.ntk import NTKBalancer  # noqa: E402
from jno.nnx.networks.mlp import MLP  # noqa: E402
from jno.nnx.schedules import LearningRateSchedule  # noqa: E402
from jno.problems import Burgers1D, Helmholtz2D, KleinGordon1D, Poisson2D  # noqa: E402
from jno.resampling import R3, RAD  # noqa: E402

PROBLEMS = {
    "Poisson2D": Poisson2D,
    "Helmholtz2D": Helmholtz2D,
    "Burgers1D": Burgers1D,
    "KleinGordon1D": KleinGordon1D,
}
BALANCERS = {
    "fixed": None,
    "relobralo": ReLoBRaLo,
    "softadapt": SoftAdapt,
    "dwa": DWA,
    "lbpinns": LbPINNsLossBalancing,
    "rlw": RLW,
    "grad_norm_balancer": GradNormBalancer,
    "lr_annealing": LRAnnealing,
    "gradnorm": GradNorm,
    "ntk": NTKBalancer,
}
NUM_LOSSES = {"Poisson2D": 2, "Helmholtz2D": 2, "Burgers1D": 3, "KleinGordon1D": 3}


def build(problem: str, balancer: str, seed: int, args: argparse.Namespace):
    """The trainer of one run: ``default()`` unless the options ask for more."""
    cls = PROBLEMS[problem]
    bal = BALANCERS[balancer]
    bal = None if bal is None else bal(NUM_LOSSES[problem])
    kwargs = dict(seed=seed, balancer=bal, log_every=args.log_every, progress=False)
    if args.causal_chunks is not None:
        kwargs["causal"] = CausalWeights(args.causal_chunks)
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.points == "fixed":
        kwargs["resample"] = False
    elif args.points in ("rad", "r3"):
        kwargs["resample"] = args.others == "uniform"
        every, factor = args.sampler_every, args.pool_factor
        if args.points == "rad":
            kwargs["adaptive_points"] = lambda b: RAD(b, every=every, pool_factor=factor, seed=seed)
        else:
            kwargs["adaptive_points"] = lambda b: R3(b, every=every, seed=seed)
    if args.fourier_features is None:
        return cls.default(
            hidden=args.hidden,
            lr=args.lr,
            decay_rate=args.decay_rate,
            decay_steps=args.decay_steps,
            network=args.network,
            **kwargs,
        )
    # default() has no Fourier option: the same network and optimizer, with features.
    if args.network != "mlp":
        raise SystemExit("--fourier-features goes with --network mlp")
    hidden = list(cls.default_hidden if args.hidden is None else args.hidden)
    module = MLP(
        cls.domain.dim,
        hidden,
        1,
        rngs=nnx.Rngs(seed),
        input_lo=cls.domain.lo,
        input_hi=cls.domain.hi,
        fourier_features=args.fourier_features,
        fourier_scale=args.fourier_scale,
    )
    net = jno.nn(module)
    schedule = LearningRateSchedule.exponential(args.lr, args.decay_rate, args.decay_steps)
    net.optimizer(optax.adam(1.0)).scale(schedule)
    return cls(net, **kwargs)


def lbfgs_phase(trainer, problem: str, seed: int, args: argparse.Namespace):
    """L-BFGS on one fixed draw of points, continuing from the Adam-trained network.

    The loss weights are frozen at the last weights of the Adam phase (ones for fixed
    weights): a balancer that moves the weights between iterations would break the
    curvature pairs and line search of L-BFGS.
    """
    cls = PROBLEMS[problem]
    weights = {k: float(trainer.history[f"weight/{k}"][-1]) for k in trainer.term_names}

    class Frozen(cls):
        def losses(self, net, batch):
            return {k: weights[k] * v for k, v in super().losses(net, batch).items()}

    net = trainer.nets[0]
    net.optimizer(optax.lbfgs())
    extra = {}
    if args.lbfgs_points == "rad":
        every = args.sampler_every
        extra["adaptive_points"] = lambda b: RAD(
            b, every=every, pool_factor=args.pool_factor, seed=seed + 1000
        )
    fixed = Frozen(
        net,
        batch_size=args.lbfgs_batch,
        resample=False,
        seed=seed + 1000,
        log_every=args.log_every,
        progress=False,
        **extra,
    )
    if args.lbfgs_points == "rad":
        # Blocks of L-BFGS iterations between redraws, each with a fresh memory: the
        # curvature pairs of one set of points do not describe the next objective.
        done = 0
        while done < args.lbfgs_steps:
            block = min(args.sampler_every, args.lbfgs_steps - done)
            net.optimizer(optax.lbfgs())
            fixed.fit(block)
            done += block
    else:
        fixed.fit(args.lbfgs_steps)
    return fixed, weights


def run_one(problem: str, balancer: str, seed: int, args: argparse.Namespace) -> dict:
    """Trains one configuration and returns its record."""
    start = time.perf_counter()
    trainer = build(problem, balancer, seed, args)
    history = trainer.fit(args.steps)
    adam_l2 = trainer.relative_l2()
    final = {k: float(history[f"loss/{k}"][-1]) for k in trainer.term_names}
    record = {
        "problem": problem,
        "balancer": balancer,
        "seed": seed,
        "steps": args.steps,
        "tag": args.tag,
        "relative_l2": adam_l2,
    }
    if args.lbfgs_steps and args.points in ("rad", "r3"):
        # The adaptive points keep moving between blocks of L-BFGS iterations: the same
        # trainer goes on with L-BFGS (fixed weights only).
        if balancer != "fixed":
            raise SystemExit("--points rad/r3 with --lbfgs-steps needs --balancers fixed")
        trainer.nets[0].optimizer(optax.lbfgs())
        trainer.fit(args.lbfgs_steps)
        record["relative_l2_adam"] = adam_l2
        record["lbfgs_steps"] = args.lbfgs_steps
        record["relative_l2"] = trainer.relative_l2()
        final = {k: float(trainer.history[f"loss/{k}"][-1]) for k in trainer.term_names}
    elif args.lbfgs_steps:
        fixed, weights = lbfgs_phase(trainer, problem, seed, args)
        record["relative_l2_adam"] = adam_l2
        record["lbfgs_steps"] = args.lbfgs_steps
        record["lbfgs_weights"] = weights
        record["relative_l2"] = fixed.relative_l2()
        # The L-BFGS losses are weighted; record the unweighted ones.
        final = {k: float(fixed.history[f"loss/{k}"][-1]) / weights[k] for k in trainer.term_names}
    record["wall_s"] = round(time.perf_counter() - start, 1)
    record["final_losses"] = final
    record["config"] = {
        "hidden": args.hidden,
        "lr": args.lr,
        "decay_rate": args.decay_rate,
        "decay_steps": args.decay_steps,
        "batch_size": args.batch_size,
        "fourier_features": args.fourier_features,
        "fourier_scale": args.fourier_scale if args.fourier_features else None,
        "lbfgs_batch": args.lbfgs_batch if args.lbfgs_steps else None,
        "network": args.network,
        "causal_chunks": args.causal_chunks,
        "dtype": "float64" if args.x64 else "float32",
        "points": args.points,
        "sampler_every": args.sampler_every if args.points in ("rad", "r3") else None,
        "others": args.others if args.points in ("rad", "r3") else None,
        "lbfgs_points": args.lbfgs_points if args.lbfgs_steps else None,
    }
    return record


def fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3e}"


def table(path: str) -> str:
    """Markdown tables (one per problem) of the records in a JSON lines file."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        out.append(f"### {problem}\n")
        out.append("| configuration | steps | rel. L2 mean ± std | per seed: rel. L2 (wall) |")
        out.append("|---|---|---|---|")
        groups: dict[tuple, list] = {}
        for r in rows:
            if r["problem"] == problem:
                label = r["balancer"] + (f" [{r['tag']}]" if r.get("tag") else "")
                if r.get("config", {}).get("dtype") == "float64":
                    label += " float64"
                if r.get("config", {}).get("points", "uniform") != "uniform":
                    label += f" points={r['config']['points']}"
                if r.get("config", {}).get("lbfgs_points") == "rad":
                    label += " L-BFGS points=rad"
                if r.get("lbfgs_steps"):
                    label += f" + L-BFGS {r['lbfgs_steps']}"
                groups.setdefault((label, r["steps"]), []).append(r)
        for (label, steps), rs in groups.items():
            errs = [r["relative_l2"] for r in rs]
            std = fmt(statistics.stdev(errs)) if len(errs) > 1 else "-"
            seeds = "; ".join(
                f"s{r['seed']} {fmt(r['relative_l2'])} ({r['wall_s']:.0f} s)" for r in rs
            )
            mean = fmt(statistics.mean(errs))
            out.append(f"| {label} | {steps} | {mean} ± {std} | {seeds} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=["Helmholtz2D"], choices=list(PROBLEMS))
    p.add_argument("--balancers", nargs="+", default=list(BALANCERS), choices=list(BALANCERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=40000)
    p.add_argument("--out", default="benchmarks/results/accuracy.jsonl")
    p.add_argument("--table", metavar="JSONL", help="print the tables of a results file")
    p.add_argument("--tag", default="", help="label of a non-default configuration")
    p.add_argument("--hidden", nargs="+", type=int, default=None)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--decay-rate", type=float, default=0.9)
    p.add_argument("--decay-steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--network", choices=["mlp", "modified"], default="mlp")
    p.add_argument(
        "--causal-chunks", type=int, default=None, help="causal weights over this many chunks"
    )
    p.add_argument("--fourier-features", type=int, default=None)
    p.add_argument("--fourier-scale", type=float, default=1.0)
    p.add_argument("--lbfgs-steps", type=int, default=0, help="L-BFGS steps after Adam")
    p.add_argument("--lbfgs-batch", type=int, default=1024, help="fixed points per set")
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--x64", action="store_true", help="float64 (jax_enable_x64)")
    p.add_argument(
        "--points",
        choices=["uniform", "fixed", "rad", "r3"],
        default="uniform",
        help="the PDE points: redrawn uniformly every step, one fixed draw, or adaptive",
    )
    p.add_argument("--sampler-every", type=int, default=500, help="steps between redraws")
    p.add_argument("--pool-factor", type=int, default=4, help="RAD candidates per point")
    p.add_argument(
        "--lbfgs-points",
        choices=["fixed", "rad"],
        default="fixed",
        help="the L-BFGS phase's PDE points: one fixed draw, or RAD redrawn every "
        "--sampler-every iterations (L-BFGS restarted after each redraw)",
    )
    p.add_argument(
        "--others",
        choices=["uniform", "fixed"],
        default="uniform",
        help="with --points rad/r3: the other sets (boundary, ...) redrawn or fixed",
    )
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for problem in args.problems:
        for balancer in args.balancers:
            for seed in args.seeds:
                record = run_one(problem, balancer, seed, args)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(
                    f"{problem} {balancer} seed={seed} steps={args.steps} "
                    f"L2={fmt(record['relative_l2'])} wall={record['wall_s']}s",
                    flush=True,
                )


if __name__ == "__main__":
    sys.exit(main())
