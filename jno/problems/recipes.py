"""Packaged training recipes: the configurations that reach a problem's best error.

Two recipes, each a frozen dataclass with ``trainer(problem, seed=...)`` and
``run(trainer, until=...)``; ``replace(...)`` changes any field:

- :class:`QuasiNewtonRecipe` is the practice of the quasi-Newton studies (Urbán,
  Stefanou & Pons, J. Comput. Phys. 2024; Kiyani et al. 2025): a small tanh MLP in
  float64, an Adam warm-up on a fixed draw of points, then a dense quasi-Newton method
  (:func:`jno.optim.ssbroyden` by default) whose residual points are redrawn by RAD
  (:class:`jno.resampling.RAD`) every ``redraw_every`` iterations. The loss weights stay
  at one throughout: no balancer. Between two redraws the objective is fixed, so every
  line search and every curvature pair belongs to one objective. At a redraw the
  inverse Hessian is kept by default: the new points change the loss little, and the
  old matrix is a far better start than the identity (``keep_hessian=False`` restarts
  each block from steepest descent, at the cost of rebuilding the curvature).
- :class:`FirstOrderRecipe` is the first-order state of the art (Wang et al.,
  "PirateNets", JMLR 2024; "Gradient alignment in physics-informed neural networks: a
  second-order optimization perspective", 2025): a :class:`~jno.nnx.PirateNet` with
  random weight factorization and the exact periodic embedding, its output layer fitted
  to the initial condition, :func:`jno.optim.soap` with warm-up and cosine decay, fresh
  points every step, causal weights and gradient-norm weights. It trains in the default
  dtype (float32 unless x64 is on).

Each problem of :mod:`jno.problems` carries its recipes as ``Problem.recipes``:
``"quasi-newton"`` and ``"soap"``.

Example:
    >>> from jno.problems import Burgers1D
    >>> recipe = Burgers1D.recipes["quasi-newton"]
    >>> recipe.method, recipe.hidden, recipe.total_steps
    ('ssbroyden', (30, 30, 30), 45000)
    >>> recipe.replace(qn_steps=10_000).total_steps
    15000
    >>> Burgers1D.recipes["soap"].replace(optimizer="adam").label
    'PirateNet 1 x 3 x 64 + RWF, Adam'
"""

from jno.problems._first_order_recipe import FirstOrderRecipe
from jno.problems._quasi_newton_recipe import QuasiNewtonRecipe

__all__ = ["FirstOrderRecipe", "QuasiNewtonRecipe"]
