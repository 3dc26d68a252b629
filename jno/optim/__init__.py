"""Optax transformations for PINN training that optax does not have.

``bfgs``: dense BFGS with a strong-Wolfe line search (``optax.lbfgs``'s interface),
usable on its own or as ``net.optimizer(jno.optim.bfgs())`` in a trainer phase.
"""

from jno.optim._bfgs import ScaleByBFGSState, bfgs, bfgs_update, scale_by_bfgs

__all__ = ["ScaleByBFGSState", "bfgs", "bfgs_update", "scale_by_bfgs"]
