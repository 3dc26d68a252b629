"""A balancer inside a plain Flax NNX training loop: no ``jno.Trainer``.

Poisson 2-D, ``-lap u = 2 pi^2 sin(pi x) sin(pi y)`` on the unit square with ``u = 0``
on the boundary. The model holds the network and a ReLoBRaLo balancer; the balancer's
state is ``jno.nnx.BalancerState``, not ``nnx.Param``, so ``nnx.Optimizer(...,
wrt=nnx.Param)`` and ``nnx.value_and_grad`` leave it alone while its in-place updates
made inside the jitted step are kept. A jno warm-up cosine schedule serves as the
optax schedule, the points are drawn inside the step, and a tensorboardX writer logs
the losses, the weights and the rate. Prints the relative L2 error (about 2e-2 after
the default 10 000 steps) and writes ``embedded_balancer.png`` and the TensorBoard run
``runs/embedded_balancer``.

Run: ``python examples/embedded_balancer.py [--steps N]``.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tensorboardX import SummaryWriter

import jno
from jno.app.demo import plot_solution


def exact(x):
    return jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1])


class Model(nnx.Module):
    def __init__(self, rngs):
        self.net = jno.nnx.MLP(2, [50, 50, 50], 1, rngs=rngs, input_lo=0.0, input_hi=1.0)
        self.balancer = jno.nnx.ReLoBRaLo(2, alpha=0.99, tau=0.1, expected_rho=0.999)


def sample(key):
    """128 interior points and 128 boundary points (a random side, a random position)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    interior = jax.random.uniform(k1, (128, 2))
    s = jax.random.uniform(k2, (128,))
    side = jax.random.randint(k3, (128,), 0, 2).astype(jnp.float32)
    vertical = jax.random.bernoulli(k4, 0.5, (128,))
    boundary = jnp.where(vertical[:, None], jnp.stack([side, s], 1), jnp.stack([s, side], 1))
    return interior, boundary


def losses(net, interior, boundary):
    residual = jno.ops.laplacian(net, interior) + 2 * jnp.pi**2 * exact(interior)
    return jnp.stack([jnp.mean(residual**2), jnp.mean(net(boundary) ** 2)])


@nnx.jit
def train_step(model, optimizer, key):
    interior, boundary = sample(key)

    def loss_fn(model):
        values = losses(model.net, interior, boundary)  # (2,): pde, bc
        weights = model.balancer(values)  # stop-gradiented, updates the balancer's state
        return jnp.sum(weights * values), (values, weights)

    (total, (values, weights)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return total, values, weights


parser = argparse.ArgumentParser(description="ReLoBRaLo embedded in a plain Flax NNX loop.")
parser.add_argument("--steps", type=int, default=10_000, help="training steps")
steps = parser.parse_args().steps

schedule = jno.LearningRateSchedule.warmup_cosine(
    steps, warmup_steps=max(1, steps // 20), lr0=3e-3, lr_end=1e-5
)
model = Model(nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adam(schedule), wrt=nnx.Param)
writer = SummaryWriter("runs/embedded_balancer")
keys = jax.random.split(jax.random.key(0), steps)
log_every = max(1, steps // 100)
for step in range(steps):
    total, values, weights = train_step(model, optimizer, keys[step])
    if (step + 1) % log_every == 0 or step + 1 == steps:
        scalars = {
            "loss/total": total,
            "loss/pde": values[0],
            "loss/bc": values[1],
            "weight/pde": weights[0],
            "weight/bc": weights[1],
            "lr": schedule(step),
        }
        for tag, value in scalars.items():
            writer.add_scalar(tag, float(value), step + 1)
writer.close()

grid = jno.domain.Box([0.0, 0.0], [1.0, 1.0]).grid(101)
predicted = np.asarray(model.net(grid)[:, 0], np.float64)
reference = np.asarray(exact(grid), np.float64)
error = np.linalg.norm(predicted - reference) / np.linalg.norm(reference)
print(f"balancer calls: {int(model.balancer.calls[...])}, weights: {np.asarray(weights)}")
print(f"relative L2 error: {error:.3e}")
plot_solution(
    "embedded_balancer.png",
    grid,
    predicted,
    reference,
    (101, 101),
    title=f"Poisson 2-D, ReLoBRaLo in an NNX loop, relative L2 error {error:.3e}",
)
print("figure: embedded_balancer.png; tensorboard --logdir runs")
