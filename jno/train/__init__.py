"""The training engine: networks, optimizers, the compiled Trainer, history."""

from jno.train.components import ComponentSlots
from jno.train.ensemble import (
    Ensemble,
    EnsembleHistory,
    MemberDiverged,
    MemberStats,
    ensemble,
)
from jno.train.errors import TrainingDiverged
from jno.train.history import History
from jno.train.mesh import data_sharding, default_mesh
from jno.train.network import Network, nn
from jno.train.optim import OptimizerSpec
from jno.train.processes import initialize_processes, is_primary
from jno.train.state import StepState
from jno.train.trainer import Trainer

__all__ = [
    "ComponentSlots",
    "Ensemble",
    "EnsembleHistory",
    "History",
    "MemberDiverged",
    "MemberStats",
    "Network",
    "OptimizerSpec",
    "StepState",
    "Trainer",
    "TrainingDiverged",
    "data_sharding",
    "default_mesh",
    "ensemble",
    "initialize_processes",
    "is_primary",
    "nn",
]
