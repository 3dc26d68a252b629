"""jno: Flax NNX training for physics-informed neural networks.

Learning-rate schedules (fixed and loss-adaptive), adaptive loss balancers and a
``Trainer`` that runs the whole step compiled on the device. All adaptive state
lives in :class:`flax.nnx.Variable` s and is updated inside the compiled step.
"""

from jno import domain, fn, nnx, ops, train
from jno.nnx.schedules import LearningRateSchedule
from jno.train import History, Trainer, TrainingDiverged, nn

__all__ = [
    "History",
    "LearningRateSchedule",
    "Trainer",
    "TrainingDiverged",
    "domain",
    "fn",
    "nn",
    "nnx",
    "ops",
    "train",
]
__version__ = "0.1.0"
