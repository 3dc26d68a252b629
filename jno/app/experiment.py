"""Experiments by name: a packaged problem, a balancer and a schedule.

:func:`build_trainer` turns names (``"helmholtz2d"``, ``"relobralo"``,
``"warmup_cosine"``) into a ready :class:`~jno.problems.Problem` trainer;
:func:`run_train` trains it (resuming from its checkpoint folder), writes the history
plot and the solution / error figure, and returns the relative L2 error. ``jno train``
(:mod:`jno.app.train`) and ``jno compare`` (:mod:`jno.app.compare`) are built on them.

Example:
    >>> t = build_trainer("poisson2d", balancer="softadapt", schedule="cosine", steps=100,
    ...                   hidden=[8], progress=False)
    >>> schedule = t.nets[0].optimizer_spec.schedule
    >>> type(t).__name__, type(t.balancer).__name__, schedule.config()["kind"]
    ('Poisson2D', 'SoftAdapt', 'cosine')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optax
from flax import nnx

from jno.app.user_problems import is_problem_file, load_problem
from jno.frontend.network import nn
from jno.nnx._checks import check_choice, check_int
from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt
from jno.nnx.balancers.causal import CausalWeights
from jno.nnx.balancers.gradient import GradNorm, GradNormBalancer, LRAnnealing
from jno.nnx.balancers.ntk import NTKBalancer
from jno.nnx.networks.mlp import MLP
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.nnx.schedules import DLRS
from jno.nnx.schedules import LearningRateSchedule as lrs
from jno.problems import (
    AllenCahn1D,
    Burgers1D,
    Helmholtz2D,
    KleinGordon1D,
    Kovasznay2D,
    LaplaceLShape2D,
    Poisson2D,
    PoissonCavity3D,
    PoissonHoles2D,
    Problem,
)
from jno.resampling import R3, RAD

__all__ = [
    "BALANCERS",
    "MODES",
    "PROBLEMS",
    "SCHEDULES",
    "build_trainer",
    "make_balancer",
    "make_schedule",
    "problem_class",
    "report_run",
    "run_train",
]

#: The packaged problems by command-line name.
PROBLEMS: dict[str, type[Problem]] = {
    "poisson2d": Poisson2D,
    "helmholtz2d": Helmholtz2D,
    "burgers1d": Burgers1D,
    "kleingordon1d": KleinGordon1D,
    "allencahn1d": AllenCahn1D,
    "kovasznay2d": Kovasznay2D,
    "poissonholes2d": PoissonHoles2D,
    "laplacelshape2d": LaplaceLShape2D,
    "poissoncavity3d": PoissonCavity3D,
}
#: Balancer names; ``"fixed"`` is unit weights.
BALANCERS = (
    "fixed",
    "relobralo",
    "softadapt",
    "dwa",
    "lbpinns",
    "rlw",
    "grad_norm",
    "lr_annealing",
    "gradnorm",
    "ntk",
)
SCHEDULES = ("constant", "exponential", "cosine", "warmup_cosine", "dlrs")
MODES = ("raw", "minmax", "l2")


def problem_class(name: str) -> type[Problem]:
    """The :class:`~jno.problems.Problem` subclass called ``name`` (any case), or the
    class of a user's file named ``path/to/file.py:Class``.

    Example:
        >>> problem_class("kleingordon1d").__name__
        'KleinGordon1D'
    """
    if is_problem_file(name):
        return load_problem(name)
    return PROBLEMS[check_choice("problem", name.lower(), tuple(PROBLEMS))]


def make_balancer(name: str, num_losses: int, mode: str = "raw", seed: int = 42) -> Any:
    """The balancer called ``name`` (None for ``"fixed"``: unit weights).

    ``seed`` seeds the random balancers (ReLoBRaLo's lookback, RLW's Dirichlet draws).
    ``grad_norm``, ``lr_annealing``, ``gradnorm`` and ``ntk`` are the gradient- and
    NTK-based balancers with their default ``update_every``.

    Example:
        >>> make_balancer("dwa", 3, mode="l2").config()["mode"], make_balancer("fixed", 2)
        ('l2', None)
    """
    check_choice("balancer", name, BALANCERS)
    check_choice("mode", mode, MODES)
    if name == "fixed":
        return None
    if name == "relobralo":
        return ReLoBRaLo(num_losses, seed=seed, mode=mode)
    if name == "rlw":
        return RLW(num_losses, seed=seed, mode=mode)
    cls = {
        "softadapt": SoftAdapt,
        "dwa": DWA,
        "lbpinns": LbPINNsLossBalancing,
        "grad_norm": GradNormBalancer,
        "lr_annealing": LRAnnealing,
        "gradnorm": GradNorm,
        "ntk": NTKBalancer,
    }[name]
    return cls(num_losses, mode=mode)


def make_schedule(
    name: str,
    steps: int,
    lr: float = 1e-3,
    *,
    lr_end: float | None = None,
    warmup_steps: int | None = None,
    decay_rate: float = 0.9,
    decay_steps: int = 1000,
) -> Any:
    """The learning-rate schedule called ``name`` for a run of ``steps`` steps.

    - ``constant``: ``lr``.
    - ``exponential``: ``max(lr_end, lr * decay_rate ** (t / decay_steps))``; by default
      0.9 per 1000 steps with no floor, as in Wang, Teng & Perdikaris (2021).
    - ``cosine``: from ``lr`` to ``lr_end`` (default 1e-6) at ``steps``.
    - ``warmup_cosine``: linear warm-up over ``warmup_steps`` (default 5% of ``steps``),
      then cosine to ``lr_end`` (default 1e-6).
    - ``dlrs``: DLRS from ``lr`` with a window of 10 steps, kept in
      ``[lr_end, 10 * lr]`` (``lr_end`` defaults to 1e-6).

    Example:
        >>> s = make_schedule("warmup_cosine", 1000, 1e-3)
        >>> s.config()["warmup_steps"], round(float(s(999)), 8)
        (50, 1e-06)
        >>> round(float(make_schedule("exponential", 1, 1e-3)(1000)), 7)
        0.0009
    """
    check_choice("schedule", name, SCHEDULES)
    if name == "constant":
        return lrs.constant(lr)
    if name == "exponential":
        return lrs.exponential(lr, decay_rate, decay_steps, 0.0 if lr_end is None else lr_end)
    end = 1e-6 if lr_end is None else lr_end
    if name == "cosine":
        return lrs.cosine(steps, lr, end)
    if name == "warmup_cosine":
        warmup = max(1, steps // 20) if warmup_steps is None else warmup_steps
        return lrs.warmup_cosine(steps, warmup, lr, end)
    return DLRS(lr0=lr, window=10, min_lr=end, max_lr=10 * lr)


def build_trainer(
    problem: str,
    *,
    balancer: str = "fixed",
    mode: str = "raw",
    schedule: str = "exponential",
    steps: int = 40_000,
    lr: float = 1e-3,
    lr_end: float | None = None,
    warmup_steps: int | None = None,
    decay_rate: float = 0.9,
    decay_steps: int = 1000,
    seed: int = 0,
    hidden: Sequence[int] | None = None,
    batch_size: int | None = None,
    network: str = "mlp",
    causal_chunks: int | None = None,
    points: str = "uniform",
    sampler_every: int = 500,
    **trainer_kwargs: Any,
) -> Problem:
    """A packaged problem's trainer, with the balancer and schedule given by name.

    The network is the problem's default (a tanh MLP, ``hidden`` widths, inputs
    standardised to ``[-1, 1]``, initialised from ``seed``), trained by Adam scaled by
    :func:`make_schedule`. ``seed`` also seeds the point sampling and the random
    balancers. ``network="modified"`` uses :class:`~jno.nnx.networks.modified_mlp.ModifiedMLP`;
    ``causal_chunks`` adds :class:`~jno.nnx.balancers.causal.CausalWeights` over that many time
    chunks (time-dependent problems). ``points``: the PDE points redrawn uniformly
    every step (``"uniform"``), drawn once (``"fixed"``), or residual-adaptive
    (``"rad"``, ``"r3"``, :mod:`jno.resampling`, every ``sampler_every`` steps).
    ``trainer_kwargs`` go to the trainer (``logdir``, ``log_every``, ...).

    Example:
        >>> t = build_trainer("burgers1d", balancer="relobralo", batch_size=32,
        ...                   hidden=[8], progress=False)
        >>> t.balancer.num_losses, t.points["initial"].n
        (3, 32)
    """
    cls = problem_class(problem)
    box = cls.domain
    widths = list(cls.default_hidden if hidden is None else hidden)
    networks = {"mlp": MLP, "modified": ModifiedMLP}
    network_class = networks[check_choice("network", network, tuple(networks))]
    lo, hi = box.bounds
    outputs = len(cls.fields)
    module = network_class(box.dim, widths, outputs, rngs=nnx.Rngs(seed), input_lo=lo, input_hi=hi)
    net = nn(module, fields=cls.fields if outputs > 1 else None)
    rate = make_schedule(
        schedule,
        steps,
        lr,
        lr_end=lr_end,
        warmup_steps=warmup_steps,
        decay_rate=decay_rate,
        decay_steps=decay_steps,
    )
    net.optimizer(optax.adam(1.0)).scale(rate)
    # Every packaged problem has one loss per point set (pde/bc, or pde/bc/ic).
    weights = make_balancer(balancer, len(cls.point_sets), mode, seed)
    if causal_chunks is not None:
        if box.time_axis is None:
            raise ValueError(f"causal_chunks needs a time-dependent problem, got {problem!r}")
        trainer_kwargs["causal"] = CausalWeights(causal_chunks)
    kinds = ("uniform", "fixed", "rad", "r3")
    points = check_choice("points", points, kinds)
    every = check_int("sampler_every", sampler_every, minimum=1)
    if points == "fixed":
        trainer_kwargs["resample"] = False
    elif points == "rad":
        trainer_kwargs["adaptive_points"] = lambda base: RAD(base, every=every, seed=seed)
    elif points == "r3":
        trainer_kwargs["adaptive_points"] = lambda base: R3(base, every=every, seed=seed)
    return cls(net, batch_size=batch_size, balancer=weights, seed=seed, **trainer_kwargs)


def run_train(
    problem: str,
    *,
    steps: int,
    out: str | Path = "jno_train",
    logdir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    log_every: int | None = None,
    progress: bool | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Trains ``problem`` up to ``steps`` steps in all; writes the figures to ``out``.

    With a ``checkpoint_dir`` that holds a checkpoint, training resumes from it and
    stops at ``steps`` in total. ``options`` go to :func:`build_trainer`.

    Returns:
        ``relative_l2``, ``history`` (the :class:`~jno.train.History`),
        ``history_plot`` and ``figure`` (paths), ``logdir``, ``resumed_from`` (step or
        None), ``wall_time`` (seconds of training) and ``trainer``.

    Example:
        >>> import tempfile
        >>> r = run_train("poisson2d", steps=10, out=tempfile.mkdtemp(), hidden=[8],
        ...               progress=False)
        >>> r["history"].steps[-1], r["figure"].name, r["relative_l2"] > 0
        (np.int64(10), 'solution.png', True)
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(
        problem,
        steps=steps,
        logdir=None if logdir is None else str(logdir),
        checkpoint_dir=None if checkpoint_dir is None else str(Path(checkpoint_dir).resolve()),
        checkpoint_every=checkpoint_every,
        log_every=max(1, steps // 100) if log_every is None else log_every,
        progress=progress,
        **options,
    )
    resumed = trainer.restore()
    start = time.perf_counter()
    history = trainer.fit(max(steps - trainer.step, 0))
    wall = time.perf_counter() - start
    return report_run(trainer, history, out, type(trainer).__name__, logdir, resumed, wall)


def report_run(
    trainer: Problem,
    history: Any,
    out: Path,
    title: str,
    logdir: str | Path | None,
    resumed: int | None,
    wall: float,
) -> dict[str, Any]:
    """Writes ``out/history.png`` and ``out/solution.png`` of a finished run and returns
    the result dictionary of :func:`run_train` (``jno train`` with or without a recipe)."""
    out.mkdir(parents=True, exist_ok=True)
    history.plot(out / "history.png")

    from jno.app.demo import plot_problem

    drawable = trainer.has_reference() and trainer.domain.dim == 2
    figure = plot_problem(trainer, out / "solution.png", title=title) if drawable else None
    return {
        "relative_l2": trainer.relative_l2() if trainer.has_reference() else None,
        "history": history,
        "history_plot": out / "history.png",
        "figure": figure,
        "logdir": None if logdir is None else Path(logdir),
        "resumed_from": resumed,
        "wall_time": wall,
        "trainer": trainer,
    }
