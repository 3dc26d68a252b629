"""Optax transformations for PINN training that optax does not have.

``bfgs``, ``ssbfgs``, ``ssbroyden``: dense quasi-Newton methods with a strong-Wolfe line
search (``optax.lbfgs``'s interface), usable on their own or as
``net.optimizer(jno.optim.ssbroyden())`` in a trainer phase.
"""

from jno.optim._bfgs import (
    ScaleByBFGSState,
    bfgs,
    bfgs_update,
    scale_by_bfgs,
    self_scaled_update,
    ssbfgs,
    ssbroyden,
)

__all__ = [
    "ScaleByBFGSState",
    "bfgs",
    "bfgs_update",
    "scale_by_bfgs",
    "self_scaled_update",
    "ssbfgs",
    "ssbroyden",
]
