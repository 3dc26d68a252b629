"""Helmholtz 2-D with Fourier features, LbPINNs and exponential decay.

``lap u + u = q`` on ``[-1, 1]^2`` with exact solution ``sin(pi x) sin(4 pi y)``: the
PDE residual is about ``(4 pi)^2`` times the boundary misfit. Random Fourier features
let the network represent the fast ``y`` oscillation, and LbPINNs (one learnt
log-variance per loss) weights the two terms; Adam decays as
``1e-3 * 0.9 ** (step / 1000)`` (Wang, Teng & Perdikaris 2021). The default 40 000
steps (about 3 minutes on 2 CPU cores) end near a relative L2 error of 8e-4, against
about 0.3 for a plain MLP with unit weights (``docs/results.md``). Prints the relative
L2 error and writes ``helmholtz2d.png`` and the TensorBoard run ``runs/helmholtz2d``.

Run: ``python examples/helmholtz2d.py [--steps N]``.
"""

import argparse

import optax
from flax import nnx

import jno
from jno.app.demo import plot_problem
from jno.problems import Helmholtz2D

parser = argparse.ArgumentParser(description="Helmholtz 2-D with Fourier features and LbPINNs.")
parser.add_argument("--steps", type=int, default=40_000, help="training steps")
steps = parser.parse_args().steps

box = Helmholtz2D.domain
module = jno.nnx.MLP(
    2,
    [100, 100, 100],
    1,
    rngs=nnx.Rngs(0),
    fourier_features=64,
    fourier_scale=1.0,
    input_lo=box.lo,  # inputs mapped to [-1, 1] before the Fourier features
    input_hi=box.hi,
)
net = jno.nn(module)
net.optimizer(optax.adam(1.0)).scale(jno.LearningRateSchedule.exponential(1e-3, 0.9, 1000))
trainer = Helmholtz2D(
    net,
    balancer=jno.nnx.LbPINNsLossBalancing(2, init_s=0.0, lr_s=1e-2),
    logdir="runs/helmholtz2d",
    log_every=max(1, steps // 100),
)  # 128 interior and 128 boundary points redrawn every step
history = trainer.fit(steps)
print(f"weights: pde {history['weight/pde'][-1]:.3g}, bc {history['weight/bc'][-1]:.3g}")
print(f"relative L2 error: {trainer.relative_l2():.3e}")
plot_problem(trainer, "helmholtz2d.png", title="Helmholtz 2-D, Fourier features + LbPINNs")
print("figure: helmholtz2d.png; tensorboard --logdir runs")
