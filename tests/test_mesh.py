"""One device and four (forced CPU) devices give the same training result."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np, optax
    from flax import nnx
    import jno
    from jno.domain import Interval
    from jno.nnx.balancers import ReLoBRaLo
    from jno.nnx.models import MLP
    from jno.nnx.schedules import DLRS

    class Poisson(jno.train.Trainer):
        def losses(self, net, batch):
            return {k: jnp.mean(v**2) for k, v in self.residuals(net, batch).items()}

        def residuals(self, net, batch):
            x = batch["interior"]
            r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
            return {"pde": r, "bc": net(batch["boundary"])}

    assert jax.device_count() == int(sys.argv[2]), jax.devices()
    net = jno.train.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(0)))
    net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=4))
    domain = Interval(0.0, 1.0)
    interior = domain.interior(64, resample=True)
    if sys.argv[3] == "rad":
        from jno.resampling import RAD

        interior = RAD(domain.interior(64), every=5, term="pde", seed=1)
    points = {"interior": interior, "boundary": domain.boundary(6)}
    trainer = Poisson(net, points=points, balancer=ReLoBRaLo(2, seed=0), log_every=10)
    assert trainer.mesh.shape["data"] == int(sys.argv[2])
    history = trainer.fit(20)
    leaves = [np.asarray(x) for x in jax.tree.leaves(nnx.state(net.module, nnx.Param))]
    extra = {}
    if sys.argv[3] == "rad":
        extra["points"] = np.asarray(trainer.points["interior"].points[...])
    np.savez(sys.argv[1], *leaves, total=history["loss/total"], w=history["weight/bc"], **extra)
    """
)


def run(tmp_path, devices, points="uniform"):
    out = tmp_path / f"run{devices}{points}.npz"
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(devices), points],
        check=True,
        env=env,
        timeout=300,
    )
    return dict(np.load(out))


def test_four_devices_equal_one_device(tmp_path):
    one = run(tmp_path, 1)
    four = run(tmp_path, 4)
    assert one.keys() == four.keys()
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # the run trained: weights moved away from their initial value of one
    assert not np.allclose(one["w"], 1.0)


def test_residual_adaptive_points_are_the_same_on_four_devices(tmp_path):
    # RAD redraws (every 5 steps) from a residual evaluated on sharded points.
    one = run(tmp_path, 1, "rad")
    four = run(tmp_path, 4, "rad")
    np.testing.assert_allclose(four["points"], one["points"], rtol=1e-5, atol=1e-6)
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
