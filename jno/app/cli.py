"""The ``jno`` command.

Subcommands:

- ``jno demo``: train Burgers 1-D with the packaged quasi-Newton recipe (or, with
  ``--recipe relobralo``, Helmholtz 2-D with ReLoBRaLo and a warm-up cosine schedule);
  write a TensorBoard run, the history plot and a solution / error figure; print the
  relative L2 error and the ``tensorboard --logdir`` line.
- ``jno train PROBLEM``: one packaged problem with a balancer and a schedule chosen by
  name, or with its packaged recipe (``--recipe quasi-newton``) (:mod:`jno.app.train`).
- ``jno compare PROBLEM``: several balancers over several seeds; a markdown table and a
  figure (:mod:`jno.app.compare`).
- ``jno schedules``: draw every built-in learning-rate schedule and the loss-adaptive
  ones (DLRS, reduce-on-plateau) reacting to a synthetic loss curve, all evaluated
  compiled (``jax.jit``, ``jax.lax.scan``), into one PNG.

Each subcommand is registered by an ``_add_<name>`` function that adds its parser and
sets ``func`` to the function that runs it.

Example:
    >>> from jno.app.cli import build_parser
    >>> build_parser().parse_args(["schedules", "--steps", "500"]).steps
    500
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from jno.app.compare import add_compare_parser
from jno.app.demo import DEMO_STEPS
from jno.app.train import add_train_parser, positive_int
from jno.train._plotting import pyplot, save_figure

__all__ = ["build_parser", "main"]


# ---------------------------------------------------------------------------- demo
def synthetic_loss(steps: int, seed: int = 0):
    """A decaying, noisy loss with a plateau in the middle third, shape (steps,).

    Example:
        >>> loss = synthetic_loss(300)
        >>> loss.shape, bool(loss[0] > loss[-1])
        ((300,), True)
    """
    import jax
    import jax.numpy as jnp

    from jno.nnx._dtype import default_float

    dtype = default_float()
    t = jnp.arange(steps, dtype=dtype)
    a, b = steps / 3.0, 2.0 * steps / 3.0
    # Progress stalls on [a, b): time spent there does not lower the loss.
    progress = jnp.where(t < a, t, jnp.where(t < b, a, t - (b - a)))
    clean = 1e-3 + jnp.exp(-6.0 * progress / steps)
    noise = 0.08 * jax.random.normal(jax.random.key(seed), (steps,))
    return (clean * jnp.exp(noise)).astype(dtype)


def _fixed_schedules(steps: int) -> dict:
    from jno.nnx.schedules import LearningRateSchedule as lrs

    q = max(steps // 4, 1)
    return {
        "constant(1e-3)": lrs.constant(1e-3),
        "exponential(1e-3, 0.9, steps/10, 1e-5)": lrs.exponential(
            1e-3, 0.9, max(steps // 10, 1), 1e-5
        ),
        "exponential staircase (0.5 every steps/6)": lrs.exponential(
            1e-3, 0.5, max(steps // 6, 1), staircase=True
        ),
        "cosine(steps, 1e-3, 1e-6)": lrs.cosine(steps, 1e-3, 1e-6),
        "warmup_cosine(steps, steps/10)": lrs.warmup_cosine(steps, max(steps // 10, 1)),
        "piecewise_constant": lrs.piecewise_constant([q, 2 * q, 3 * q], [1e-3, 5e-4, 1e-4, 5e-5]),
    }


def _adaptive_schedules(steps: int) -> dict:
    from jno.nnx.schedules import DLRS, ReduceOnPlateau

    return {
        "DLRS(window=20)": DLRS(lr0=1e-3, window=20, min_lr=1e-6, max_lr=1e-2),
        "ReduceOnPlateau(patience=steps/20)": ReduceOnPlateau(
            1e-3,
            factor=0.5,
            patience=max(steps // 20, 1),
            cooldown=max(steps // 40, 0),
            threshold=1e-2,
            min_lr=1e-6,
        ),
    }


def run_adaptive(schedule, losses):
    """Feed ``losses[t]`` to a stateful ``schedule`` for every step inside one ``lax.scan``.

    Returns the rates (shape ``(steps,)``); the schedule's state is updated to the end.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.nnx.schedules import ReduceOnPlateau
        >>> s = ReduceOnPlateau(1.0, factor=0.5, patience=1)
        >>> run_adaptive(s, jnp.array([2.0, 1.0, 1.0, 1.0])).tolist()
        [1.0, 1.0, 0.5, 0.25]
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, state = nnx.split(schedule)

    def body(state, inputs):
        step, loss = inputs
        sched = nnx.merge(graphdef, state)
        lr = sched(step, loss[None])
        return nnx.state(sched), lr

    steps = jnp.arange(losses.shape[0])
    state, rates = jax.jit(lambda s, xs: jax.lax.scan(body, s, xs))(state, (steps, losses))
    nnx.update(schedule, state)
    return rates


def _demo_curves(steps: int, seed):
    """Every curve of the demo, computed in one compiled function."""
    import jax
    import jax.numpy as jnp

    t = jnp.arange(steps)
    fixed = {name: jax.vmap(s)(t) for name, s in _fixed_schedules(steps).items()}
    loss = synthetic_loss(steps, seed)
    adaptive = {name: run_adaptive(s, loss) for name, s in _adaptive_schedules(steps).items()}
    return fixed, loss, adaptive


def plot_schedules(out: Path, steps: int = 3000, seed: int = 0) -> Path:
    """Draw the schedule demo into the PNG ``out`` and return its path.

    Example:
        >>> import tempfile, pathlib
        >>> path = plot_schedules(pathlib.Path(tempfile.mkdtemp()) / "s.png", steps=100)
        >>> path.suffix, path.stat().st_size > 0
        ('.png', True)
    """
    import jax
    import numpy as np

    plt = pyplot()
    fixed, loss, adaptive = jax.jit(_demo_curves, static_argnums=0)(steps, seed)
    t = np.arange(steps)

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    for name, rates in fixed.items():
        axes[0].plot(t, rates, label=name)
    axes[0].set(title="Built-in schedules", xlabel="step", ylabel="learning rate", yscale="log")
    axes[1].plot(t, loss, color="0.4", lw=0.8)
    axes[1].set(title="Synthetic loss (noisy decay, plateau)", xlabel="step", yscale="log")
    for name, rates in adaptive.items():
        axes[2].plot(t, rates, label=name)
    axes[2].set(title="Loss-adaptive schedules on that loss", xlabel="step", yscale="log")
    for ax in axes[1:]:
        ax.axvspan(steps / 3.0, 2.0 * steps / 3.0, color="0.9", zorder=0, label="plateau")
    for ax in (axes[0], axes[2]):
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, out, parents=True)


def _run_schedules(args: argparse.Namespace) -> int:
    path = plot_schedules(args.out, steps=args.steps, seed=args.seed)
    print(path)
    return 0


def _add_schedules(subparsers) -> None:
    p = subparsers.add_parser(
        "schedules",
        help="plot every learning-rate schedule into one PNG",
        description=(
            "Evaluate every built-in learning-rate schedule (constant, exponential, "
            "exponential staircase, cosine, warmup_cosine, piecewise_constant) and the "
            "loss-adaptive DLRS and reduce-on-plateau on a synthetic noisy loss with a "
            "plateau, all compiled with jax.jit / lax.scan, and draw them into one PNG. "
            "Prints the path written."
        ),
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("jno_demo/schedules.png"),
        help="PNG file to write; parent folders are created (default: %(default)s)",
    )
    p.add_argument(
        "--steps", type=positive_int, default=3000, help="steps to draw (default: %(default)s)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the synthetic loss noise (default: %(default)s)",
    )
    p.set_defaults(func=_run_schedules)


def _run_demo(args: argparse.Namespace) -> int:
    progress = False if args.quiet else None
    if args.recipe == "quasi-newton":
        from jno.app.recipes import run_recipe

        out = run_recipe(
            "burgers1d",
            seed=args.seed,
            out=args.out,
            logdir=args.logdir,
            progress=progress,
            qn_steps=args.qn_steps,
        )
        print(f"relative L2 error: {out['relative_l2']:.3e}")
        print(f"figures: {out['figure']}, {out['history_plot']}")
        print(f"tensorboard --logdir {Path(args.logdir).parent}")
        return 0
    from jno.app.demo import run_demo

    out = run_demo(args.out, args.logdir, steps=args.steps, seed=args.seed, progress=progress)
    print(f"relative L2 error: {out['relative_l2']:.3e}")
    print(f"figures: {out['figure']}, {out['history']}")
    print(f"tensorboard --logdir {Path(args.logdir).parent}")
    return 0


def _add_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train Burgers 1-D to a relative L2 error near 5e-8 with the quasi-Newton recipe",
        description=(
            "Train the viscous Burgers equation u_t + u u_x = (0.01 / pi) u_xx on "
            "[-1, 1] x [0, 1] (u(x, 0) = -sin(pi x), reference: the Cole-Hopf solution) "
            "with the packaged quasi-Newton recipe: float64, a 3 x 30 tanh MLP, 5 000 Adam "
            "steps on 8 000 fixed points, then self-scaled Broyden iterations with a "
            "strong-Wolfe line search, the points redrawn by RAD every 5 000 iterations. "
            "Writes a TensorBoard run, OUT/history.png and OUT/solution.png, and prints "
            "the relative L2 error on the problem's grid and the tensorboard --logdir "
            "line. --recipe relobralo trains the earlier demo instead: Helmholtz 2-D "
            "with a 3 x 50 MLP, Adam under a warm-up cosine schedule and ReLoBRaLo "
            "(--steps; about 3e-2 after 150 000 steps)."
        ),
    )
    p.add_argument(
        "--recipe",
        choices=("quasi-newton", "relobralo"),
        default="quasi-newton",
        help="what to train (default: %(default)s)",
    )
    p.add_argument(
        "--qn-steps",
        type=positive_int,
        default=None,
        help="quasi-Newton iterations of the quasi-newton demo (default: the recipe's)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("jno_demo"),
        help="folder for the figures (default: %(default)s)",
    )
    p.add_argument(
        "--logdir",
        type=Path,
        default=Path("runs/demo"),
        help="TensorBoard run directory (default: %(default)s)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=DEMO_STEPS,
        help="training steps of the relobralo demo (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the network, the points and the balancer (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_run_demo)


def _add_launch(subparsers) -> None:
    from jno.app import launch

    p = subparsers.add_parser(
        "launch",
        help="run a script over several processes on this machine",
        description=launch.__doc__.split("\n\n")[0],
    )
    launch.build_parser(p)
    p.set_defaults(func=launch.run_parsed)


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The ``jno`` argument parser with every subcommand registered.

    Example:
        >>> args = build_parser().parse_args(["schedules", "--out", "x.png"])
        >>> str(args.out), args.steps
        ('x.png', 3000)
    """
    parser = argparse.ArgumentParser(
        prog="jno",
        description="jno: Flax NNX training for physics-informed neural networks.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_demo(subparsers)
    add_train_parser(subparsers)
    add_compare_parser(subparsers)
    _add_schedules(subparsers)
    _add_launch(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jno`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Example:
        >>> main([])  # no command: print the help, exit code 2  # doctest: +ELLIPSIS
        usage: jno [-h] COMMAND ...
        ...
        2
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # The trainer has saved its checkpoint and said where (stderr): no traceback.
        return 128 + signal.SIGINT
