"""Packaged PDE benchmarks: ``Trainer`` subclasses with exact or reference solutions.

Each problem knows its domain, its residuals (``"pde"``, ``"bc"``, ``"ic"``), its
solution and a fixed evaluation grid; ``Problem.default(...)`` builds a ready trainer
and ``relative_l2()`` measures the error.

Example:
    >>> from jno.problems import Helmholtz2D
    >>> trainer = Helmholtz2D.default(seed=0, progress=False)
    >>> trainer.parameters()
    {'a1': 1.0, 'a2': 4.0, 'k': 1.0}
"""

from jno.problems.allen_cahn import AllenCahn1D, allen_cahn_reference, initial_kink
from jno.problems.base import Problem
from jno.problems.burgers import Burgers1D, cole_hopf
from jno.problems.burgers_inverse import BurgersInverse1D
from jno.problems.helmholtz import Helmholtz2D
from jno.problems.klein_gordon import KleinGordon1D
from jno.problems.kovasznay import Kovasznay2D
from jno.problems.laplace_lshape import LaplaceLShape2D, corner_solution
from jno.problems.poisson import Poisson2D
from jno.problems.poisson_cavity import PoissonCavity3D
from jno.problems.poisson_holes import PoissonHoles2D

__all__ = [
    "AllenCahn1D",
    "Burgers1D",
    "BurgersInverse1D",
    "Helmholtz2D",
    "KleinGordon1D",
    "Kovasznay2D",
    "LaplaceLShape2D",
    "Poisson2D",
    "PoissonCavity3D",
    "PoissonHoles2D",
    "Problem",
    "allen_cahn_reference",
    "cole_hopf",
    "corner_solution",
    "initial_kink",
]
