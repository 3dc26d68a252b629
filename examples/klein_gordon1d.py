"""Klein-Gordon 1-D with LbPINNs and a warm-up cosine schedule.

``u_tt - u_xx + u^3 = f`` on ``[0, 1] x [0, 1]`` with exact solution
``x cos(5 pi t) + (x t)^3``; losses ``pde``, ``bc`` and ``ic`` (value and velocity at
``t = 0``). LbPINNs learns one log-variance per loss, so a loss that shrinks gains
weight. Prints the relative L2 error (about 2e-2 after the default 20 000 steps,
40 s on 2 CPU cores; unit weights reach about 0.3) and writes ``klein_gordon1d.png``
and the TensorBoard run ``runs/klein_gordon1d``.

Run: ``python examples/klein_gordon1d.py [--steps N]``.
"""

import argparse

import optax

import jno
from jno.app.demo import plot_problem
from jno.problems import KleinGordon1D

parser = argparse.ArgumentParser(description="Klein-Gordon 1-D with LbPINNs and warm-up cosine.")
parser.add_argument("--steps", type=int, default=20_000, help="training steps")
steps = parser.parse_args().steps

trainer = KleinGordon1D.default(
    seed=0,
    balancer=jno.nnx.LbPINNsLossBalancing(3, lr_s=1e-2),
    logdir="runs/klein_gordon1d",
    log_every=max(1, steps // 100),
)
schedule = jno.LearningRateSchedule.warmup_cosine(
    steps, warmup_steps=max(1, steps // 20), lr0=3e-3, lr_end=1e-5
)
trainer.nets[0].optimizer(optax.adam(1.0)).scale(schedule)

history = trainer.fit(steps)
weights = {name: history[f"weight/{name}"][-1] for name in trainer.term_names}
print("weights:", {name: f"{w:.3g}" for name, w in weights.items()})
print(f"relative L2 error: {trainer.relative_l2():.3e}")
plot_problem(trainer, "klein_gordon1d.png", title="Klein-Gordon 1-D, LbPINNs")
print("figure: klein_gordon1d.png; tensorboard --logdir runs")
