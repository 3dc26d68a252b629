"""``jno train PROBLEM --recipe NAME`` and ``jno demo``: a packaged recipe run.

:func:`run_recipe` turns on float64 for the process (``jax_enable_x64``) when the recipe
needs it (``quasi-newton``), builds the problem's recipe (:mod:`jno.problems.recipes`)
with the changes given on the command line, trains it with progress on stderr, writes a
TensorBoard run, the history plot and the solution / error figure, and returns the
relative L2 error.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import jax

from jno.app.experiment import problem_class, report_run

__all__ = ["RECIPES", "run_recipe"]

#: The recipes ``--recipe`` accepts.
RECIPES = ("quasi-newton", "soap")


def run_recipe(
    problem: str,
    *,
    recipe: str = "quasi-newton",
    seed: int = 0,
    out: str | Path = "jno_train",
    logdir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
    minutes: float | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """Trains ``problem`` (a key of :data:`jno.app.experiment.PROBLEMS`) with its recipe.

    Args:
        problem: the packaged problem, e.g. ``"burgers1d"``, or a user's class as
            ``"path/to/file.py:Class"``.
        recipe: the recipe's name in ``Problem.recipes``.
        seed: seed of the network, the points and the sampler.
        out: folder for ``history.png`` and ``solution.png``.
        logdir: TensorBoard run directory, or None.
        checkpoint_dir, checkpoint_every: checkpoints; a run resumes from them.
        progress: progress on stderr (None: when stderr is a terminal).
        minutes: size the quasi-newton recipe's step counts to about this time
            (:meth:`~jno.problems.recipes.QuasiNewtonRecipe.sized_to`); not with a
            run that resumes, whose step counts are those it was started with.
        **changes: fields of the recipe to change (``qn_steps``, ``method``, ...;
            ``steps``, ``optimizer``, ``network``, ...); None values are ignored.

    Returns:
        ``relative_l2``, ``history`` (the History), ``history_plot`` and ``figure``
        (paths), ``logdir``, ``resumed_from``, ``wall_time`` (seconds), ``recipe`` and
        ``trainer``.

    Example:
        >>> from jno.app.experiment import PROBLEMS
        >>> sorted(PROBLEMS["burgers1d"].recipes) == list(RECIPES)
        True
    """
    cls = problem_class(problem)
    if recipe not in cls.recipes:
        raise ValueError(f"recipe must be one of {sorted(cls.recipes)}, got {recipe!r}")
    base = cls.recipes[recipe]
    changes = {k: v for k, v in changes.items() if v is not None}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(base)})
    if unknown:
        raise ValueError(f"the {recipe} recipe has no settings {unknown}")
    chosen = base.replace(**changes)
    if chosen.float64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    total = chosen.total_steps
    trainer = chosen.trainer(
        cls,
        seed=seed,
        logdir=None if logdir is None else str(logdir),
        checkpoint_dir=None if checkpoint_dir is None else str(Path(checkpoint_dir).resolve()),
        checkpoint_every=checkpoint_every,
        log_every=max(1, total // 200),
        progress=progress,
    )
    resumed = trainer.latest_checkpoint_step()
    if minutes is not None:
        if not hasattr(chosen, "sized_to"):
            raise SystemExit(f"--minutes is an option of --recipe quasi-newton, not {recipe}")
        if resumed is not None:
            raise SystemExit(
                f"--minutes cannot size a run that resumes from step {resumed}: its step "
                "counts are those it started with"
            )
        budget = chosen.sized_to(60.0 * minutes, trainer)
        chosen = budget.recipe
        trainer.log_every = max(1, chosen.total_steps // 200)
        print(
            f"sized to {minutes:g} min: Adam {chosen.adam_steps} steps "
            f"({1e3 * budget.adam_step_seconds:.2f} ms each), {chosen.method} "
            f"{chosen.qn_steps} ({1e3 * budget.qn_step_seconds:.2f} ms each)",
            file=sys.stderr,
        )
    start = time.perf_counter()
    history = chosen.run(trainer)
    wall = time.perf_counter() - start
    title = f"{cls.__name__}, {chosen.label}"
    result = report_run(trainer, history, Path(out), title, logdir, resumed, wall)
    return {**result, "recipe": chosen}
