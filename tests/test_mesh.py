"""One device and four (forced CPU) devices give the same training result, for a
trainer and for an ensemble whose members are split over the devices."""

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
    from jno.nnx.networks.mlp import MLP
    from jno.nnx.schedules import DLRS

    class Poisson(jno.train.Trainer):
        def losses(self, net, batch):
            return {k: jnp.mean(v**2) for k, v in self.residuals(net, batch).items()}

        def residuals(self, net, batch):
            out = {}
            for name in ("interior", "uniform"):
                x = batch.get(name)
                if x is not None:
                    r = jno.ops.laplacian(net, x) + jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
                    out["pde" if name == "interior" else "pde_uniform"] = r
            out["bc"] = net(batch["boundary"])
            return out

    def main(path, devices):
        assert jax.device_count() == devices, jax.devices()
        from jno.resampling import RAD

        out = {}
        # One trainer with both kinds of redraws: RAD (every 5 steps, from a residual
        # evaluated on sharded points) and uniform draws every step.
        net = jno.train.nn(MLP(1, [16, 16], 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.adam(1)).scale(DLRS(lr0=1e-2, window=4))
        domain = Interval(0.0, 1.0)
        points = {
            "interior": RAD(domain.interior(64), every=5, term="pde", seed=1),
            "uniform": domain.interior(64, resample=True),
            "boundary": domain.boundary(6),
        }
        trainer = Poisson(net, points=points, balancer=ReLoBRaLo(3, seed=0), log_every=10)
        assert trainer.mesh.shape["data"] == devices
        history = trainer.fit(20)
        leaves = jax.tree.leaves(nnx.state(net.module, nnx.Param))
        out.update({f"trainer/param{i}": np.asarray(x) for i, x in enumerate(leaves)})
        out["trainer/total"] = history["loss/total"]
        out["trainer/w"] = history["weight/bc"]
        out["trainer/rad_points"] = np.asarray(trainer.points["interior"].points[...])
        # An ensemble of four members: the member axis is split over the devices.
        def member(seed):
            net = jno.train.nn(MLP(1, [8], 1, rngs=nnx.Rngs(seed)))
            net.optimizer(optax.adam(1e-2))
            domain = Interval(0.0, 1.0)
            interior = domain.interior(32, resample=True)
            points = {"interior": interior, "boundary": domain.boundary(2)}
            return Poisson(net, points=points, balancer=ReLoBRaLo(2, seed=seed), seed=seed,
                           log_every=5, progress=False)

        ens = jno.ensemble(member, seeds=range(4))
        history = ens.fit(10)
        assert ens._loop.sharding.mesh.devices.size == devices
        out["ensemble/total"] = history["loss/total"]
        for k, m in enumerate(ens.members):
            leaves = jax.tree.leaves(nnx.state(m.nets[0].module, nnx.Param))
            out.update({f"ensemble/{k}/param{i}": np.asarray(x) for i, x in enumerate(leaves)})
        np.savez(path, **out)

    if __name__ == "__main__":
        main(sys.argv[1], int(sys.argv[2]))
    """
)


def run(tmp_path, devices):
    out = tmp_path / f"run{devices}.npz"
    if devices == 1:  # this process has one CPU device: no subprocess needed
        namespace = {"__name__": "mesh_script"}
        exec(compile(SCRIPT, "<mesh script>", "exec"), namespace)
        namespace["main"](str(out), 1)
        return dict(np.load(out))
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    )
    env["JAX_PLATFORMS"] = "cpu"
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(devices)], check=True, env=env, timeout=300
    )
    return dict(np.load(out))


def test_four_devices_equal_one_device(tmp_path):
    one = run(tmp_path, 1)
    four = run(tmp_path, 4)
    assert one.keys() == four.keys()
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
    # the runs trained: weights moved away from their initial value of one
    assert not np.allclose(one["trainer/w"], 1.0)
