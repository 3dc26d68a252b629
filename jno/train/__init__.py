"""The training engine: networks, optimizers, the compiled Trainer, history."""

from jno.train.errors import TrainingDiverged
from jno.train.history import History
from jno.train.network import Network, nn
from jno.train.optim import OptimizerSpec
from jno.train.trainer import Trainer, default_mesh

__all__ = [
    "History",
    "Network",
    "OptimizerSpec",
    "Trainer",
    "TrainingDiverged",
    "default_mesh",
    "nn",
]
