"""jno: Flax NNX training for physics-informed neural networks.

Learning-rate schedules (fixed and loss-adaptive), adaptive loss balancers and a
``Trainer`` that runs the whole step compiled on the device. All adaptive state
lives in :class:`flax.nnx.Variable` s and is updated inside the compiled step.

The layers, each using only those before it: :mod:`jno.nnx` (device-state blocks),
:mod:`jno.domain` and :mod:`jno.ops`, :mod:`jno.train` (the engine),
:mod:`jno.frontend` (terms, ``jno.core``, ``jno.fn``), :mod:`jno.problems` and
:mod:`jno.app` (the ``jno`` command). ``jno.terms`` and ``jno.fn`` are the front end's
modules :mod:`jno.frontend.terms` and :mod:`jno.frontend.fn`; ``jno.core`` is the
function that builds a :class:`Crux`.
"""

from jno import domain, nnx, ops, optim, problems, resampling, train
from jno.frontend import Crux, core, data, fn, nn, residual, terms
from jno.nnx.schedules import LearningRateSchedule
from jno.train import Ensemble, History, Trainer, TrainingDiverged, ensemble

__all__ = [
    "Crux",
    "Ensemble",
    "History",
    "LearningRateSchedule",
    "Trainer",
    "TrainingDiverged",
    "core",
    "data",
    "domain",
    "ensemble",
    "fn",
    "nn",
    "nnx",
    "ops",
    "optim",
    "problems",
    "resampling",
    "residual",
    "terms",
    "train",
]
__version__ = "0.1.0"
