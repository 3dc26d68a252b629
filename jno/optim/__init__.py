"""Optax transformations for PINN training that optax does not have.

``bfgs``, ``ssbfgs``, ``ssbroyden``: dense quasi-Newton methods with a strong-Wolfe line
search (``optax.lbfgs``'s interface), usable on their own or as
``net.optimizer(jno.optim.ssbroyden())`` in a trainer phase. ``scale_by_bfgs`` is the
inverse Hessian alone, to chain with another line search; ``strong_wolfe`` the line
search alone.

``levenberg_marquardt`` and ``engd``: Gauss-Newton methods on a residual vector
(``update(..., residual_fn=)``), with dense, sample-space and matrix-free solvers.
"""

from jno.optim._bfgs import METHODS, bfgs_update, self_scaled_update
from jno.optim._least_squares import (
    SOLVERS,
    LeastSquares,
    LeastSquaresState,
    engd,
    levenberg_marquardt,
)
from jno.optim._linesearch import LinesearchResult, strong_wolfe
from jno.optim._quasi_newton import (
    DEFAULT_MAX_HESSIAN_BYTES,
    QuasiNewton,
    QuasiNewtonState,
    ScaleByBFGSState,
    bfgs,
    scale_by_bfgs,
    ssbfgs,
    ssbroyden,
)
from jno.optim._soap import SOAPState, soap

__all__ = [
    "DEFAULT_MAX_HESSIAN_BYTES",
    "METHODS",
    "SOLVERS",
    "LeastSquares",
    "LeastSquaresState",
    "LinesearchResult",
    "QuasiNewton",
    "QuasiNewtonState",
    "SOAPState",
    "ScaleByBFGSState",
    "bfgs",
    "bfgs_update",
    "engd",
    "levenberg_marquardt",
    "scale_by_bfgs",
    "self_scaled_update",
    "soap",
    "ssbfgs",
    "ssbroyden",
    "strong_wolfe",
]
