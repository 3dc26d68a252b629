"""A trainer and an ensemble over two processes of JAX's distributed runtime, on CPU.

Each test starts subprocesses: two processes with one CPU device each (coordinator on
localhost, gloo collectives), against one process with two devices.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = str(Path(__file__).parent / "scripts" / "fit_processes.py")


def run(args, *, launch=None, devices=1, timeout=240, script=SCRIPT, crux=False):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["FIT_CRUX"] = "1" if crux else "0"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    prefix = [sys.executable]
    if launch:
        prefix += ["-m", "jno.app.launch", "-n", str(launch), "--cpu-devices", str(devices)]
    return subprocess.run(
        [*prefix, script, *map(str, args)], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("process-*.json"))]


def test_a_trainer_and_a_crux_on_two_processes_as_on_one_process_with_two_devices(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    done = run([200, two], launch=2, crux=True)
    assert done.returncode == 0, done.stderr[-3000:]
    alone = run([200, one], devices=2, crux=True)
    assert alone.returncode == 0, alone.stderr[-3000:]
    (reference,) = records(one)
    both = records(two)
    assert [r["count"] for r in both] == [2, 2] and reference["count"] == 1
    assert np.abs(np.subtract(reference["params"], reference["crux_params"])).max() > 0.01
    for r in both:
        assert r["step"] == 200
        for key in ("params", "crux_params"):
            np.testing.assert_allclose(r[key], reference[key], rtol=1e-5, atol=1e-6)
    # Nothing of jno's goes to stdout (gloo's own connection notice aside).
    assert all(line.startswith("[Gloo]") for line in done.stdout.splitlines())
    # The figure asked for on both processes is written by process 0 alone, and there
    # is one TensorBoard event file, as from one process.
    assert sorted(p.name for p in two.glob("*.png")) == ["points-0.png"]
    assert len(list((two / "events").rglob("events.out.tfevents.*"))) == 1


def test_sigterm_to_one_process_stops_both_at_one_step_and_resumes_alone(tmp_path):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    out.mkdir()
    stopped = run([100_000, out, ckpt, 60], launch=2)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    first, second = records(out)
    assert first["step"] == second["step"] and 60 <= first["step"] < 100_000
    assert first["params"] == second["params"]
    step = first["step"]
    assert str(step) in os.listdir(ckpt)
    assert "another process of this run received SIGTERM" in stopped.stderr
    # One process resumes the two processes' checkpoint, at its step.
    resumed = run([10, out, ckpt])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (alone,) = records(out)[:1]
    assert alone["count"] == 1 and alone["step"] == step + 10


def test_a_run_into_a_locked_directory_is_refused_on_every_process(tmp_path):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    out.mkdir(), ckpt.mkdir()
    # The lock of a live run: this test's own process.
    (ckpt / ".jno-lock").write_text(f"{os.getpid()}\n{socket.gethostname()}\n")
    refused = run([20, out, ckpt], launch=2)
    assert refused.returncode != 0
    assert f"is in use by process {os.getpid()}" in refused.stderr
    assert "process 0 of this run was refused its lock" in refused.stderr
    assert [r["step"] for r in records(out)] == [0, 0]  # neither trained


@pytest.mark.parametrize("argv", [[], ["-n", "0", "x.py"]])
def test_the_launcher_refuses_bad_arguments(argv):
    from jno.app.launch import launch

    with pytest.raises(ValueError, match="processes must be a positive int, got 0|argv must"):
        launch(argv[3:] if argv else [], 0 if argv else 1)


ENSEMBLE = str(Path(__file__).parent / "scripts" / "ensemble_processes.py")


def test_an_ensemble_over_two_processes_matches_one_process_member_for_member(tmp_path):
    two, one, ckpt = tmp_path / "two", tmp_path / "one", tmp_path / "ckpt"
    two.mkdir(), one.mkdir()
    # 8 members split 4 and 4 over the processes, checkpointed at step 50 and 100.
    done = run([100, 8, two, ckpt], launch=2, script=ENSEMBLE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(line.startswith("[Gloo]") for line in done.stdout.splitlines())
    assert sorted(os.listdir(ckpt)) == [f"seed_{k}" for k in range(8)]
    assert all({"50", "100"} <= set(os.listdir(ckpt / f"seed_{k}")) for k in range(8))
    alone = run([100, 8, one], devices=2, script=ENSEMBLE)
    assert alone.returncode == 0, alone.stderr[-3000:]
    (reference,) = records(one)
    params = np.asarray(reference["params"])
    assert params.shape == (8, 321) and np.abs(params[0] - params[1]).max() > 0.1
    for r in records(two):
        assert r["count"] == 2 and r["step"] == 100
        np.testing.assert_allclose(r["params"], params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["loss"], reference["loss"], rtol=1e-5)
    # One process resumes the two processes' ensemble checkpoint: 100 + 20 steps.
    resumed = run([20, 8, one, ckpt], script=ENSEMBLE)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (after,) = records(one)
    assert after["count"] == 1 and after["step"] == 120
