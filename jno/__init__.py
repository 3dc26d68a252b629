"""jno: Flax NNX training for physics-informed neural networks.

Learning-rate schedules (fixed and loss-adaptive), adaptive loss balancers and a
``Trainer`` that runs the whole step compiled on the device. All adaptive state
lives in :class:`flax.nnx.Variable` s and is updated inside the compiled step.
"""

from jno import domain, fn, nnx, ops, problems, terms, train
from jno.core import Crux, core
from jno.nnx.schedules import LearningRateSchedule
from jno.terms import data, residual
from jno.train import History, Trainer, TrainingDiverged, nn

__all__ = [
    "Crux",
    "History",
    "LearningRateSchedule",
    "Trainer",
    "TrainingDiverged",
    "core",
    "data",
    "domain",
    "fn",
    "nn",
    "nnx",
    "ops",
    "problems",
    "residual",
    "terms",
    "train",
]
__version__ = "0.1.0"
