"""The application: the ``jno`` command and the experiments behind it.

:mod:`jno.app.cli` is the command (``jno demo``, ``jno train``, ``jno compare``,
``jno schedules``); :mod:`jno.app.train` and :mod:`jno.app.compare` add the ``train``
and ``compare`` subcommands; :mod:`jno.app.experiment` builds a packaged problem's
trainer from names (problem, balancer, schedule) and :mod:`jno.app.demo` runs the
demo and draws solution figures; ``python -m jno.app`` runs the command. This is the
only layer that prints to stdout; it may use every other part of ``jno``, and nothing
in ``jno`` imports it.

Example:
    >>> from jno import app
    >>> app.build_parser().parse_args(["train", "poisson2d"]).problem
    'poisson2d'
"""

from jno.app.cli import build_parser, main
from jno.app.compare import format_table, run_compare, summarize
from jno.app.demo import DEMO_STEPS, build_demo, plot_problem, plot_solution, run_demo
from jno.app.experiment import (
    BALANCERS,
    MODES,
    PROBLEMS,
    SCHEDULES,
    build_trainer,
    make_balancer,
    make_schedule,
    run_train,
)

__all__ = [
    "BALANCERS",
    "DEMO_STEPS",
    "MODES",
    "PROBLEMS",
    "SCHEDULES",
    "build_demo",
    "build_parser",
    "build_trainer",
    "format_table",
    "main",
    "make_balancer",
    "make_schedule",
    "plot_problem",
    "plot_solution",
    "run_compare",
    "run_demo",
    "run_train",
    "summarize",
]
