"""A trainer and an ensemble over two processes of JAX's distributed runtime, on CPU.

Each test starts subprocesses: two processes with one CPU device each (coordinator on
localhost, gloo collectives), against one process with two devices.
"""

import json
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = str(Path(__file__).parent / "scripts" / "fit_processes.py")
DEVICE_COUNT = "--xla_force_host_platform_device_count"


def run(args, *, launch=None, devices=1, timeout=240, script=SCRIPT, crux=False, locked=None):
    env = dict(os.environ)
    env["FIT_CRUX"] = "1" if crux else "0"
    env["FIT_LOCKED"] = str(locked or "")
    # The suite's other XLA flags (its fast compilation) hold in the subprocesses too.
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_COUNT)]
    env["XLA_FLAGS"] = " ".join([*flags, f"{DEVICE_COUNT}={devices}"])
    env["JAX_PLATFORMS"] = "cpu"
    prefix = [sys.executable]
    if launch:
        prefix += ["-m", "jno.app.launch", "-n", str(launch), "--cpu-devices", str(devices)]
    return subprocess.run(
        [*prefix, script, *map(str, args)], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


# gloo writes its connection notice piece by piece, so on a shared stdout the notices of
# two processes can interleave within a line.
GLOO_PIECES = re.compile(
    r"\[Gloo\] Rank | is connected to | peer ranks\. |Expected number of connected peer ranks is : "
)


def only_gloo_notices(stdout: str) -> bool:
    """Whether ``stdout`` holds nothing but gloo's notices (each: a rank, two counts, and
    a line end around its fixed pieces)."""
    rest = GLOO_PIECES.sub("", stdout)
    notices = stdout.count("[Gloo] Rank ")
    return set(rest) <= set("0123456789\n") and rest.count("\n") == notices


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("process-*.json"))]


def test_a_trainer_and_a_crux_on_two_processes_as_on_one_process_with_two_devices(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    done = run([40, two], launch=2, crux=True)
    assert done.returncode == 0, done.stderr[-3000:]
    alone = run([40, one], devices=2, crux=True)
    assert alone.returncode == 0, alone.stderr[-3000:]
    (reference,) = records(one)
    both = records(two)
    assert [r["count"] for r in both] == [2, 2] and reference["count"] == 1
    assert np.abs(np.subtract(reference["params"], reference["crux_params"])).max() > 0.01
    # Both trainings moved their parameters, and the balancer's weights changed.
    for key in ("params", "crux_params"):
        moved = np.subtract(reference[key], reference[key.replace("params", "initial_params")])
        assert np.abs(moved).max() > 0.03, key
    assert np.ptp(reference["crux_weights"]) > 1
    for r in both:
        assert r["step"] == 40
        for key in ("params", "crux_params", "crux_weights"):
            np.testing.assert_allclose(r[key], reference[key], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["loss"], reference["loss"], rtol=1e-5)
    # Nothing of jno's goes to stdout (gloo's own connection notice aside).
    assert only_gloo_notices(done.stdout), done.stdout
    # The figure asked for on both processes is written by process 0 alone, and there
    # is one TensorBoard event file, as from one process.
    assert sorted(p.name for p in two.glob("*.png")) == ["points-0.png"]
    assert len(list((two / "events").rglob("events.out.tfevents.*"))) == 1


def test_sigterm_to_one_process_stops_both_at_one_step_and_resumes_alone(tmp_path, monkeypatch):
    """Two processes first try a checkpoint directory whose lock a live process (this
    one) holds, and are refused on both; then they train until one of them gets SIGTERM."""
    out, ckpt, locked = tmp_path / "out", tmp_path / "ckpt", tmp_path / "locked"
    out.mkdir(), locked.mkdir()
    (locked / ".jno-lock").write_text(f"{os.getpid()}\n{socket.gethostname()}\n")
    stopped = run([100_000, out, ckpt, 60], launch=2, locked=locked)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    first, second = records(out)
    # The locked directory: refused on every process, neither trained into it.
    assert f"is in use by process {os.getpid()}" in first["refused"]
    assert "process 0 of this run was refused its lock" in second["refused"]
    assert first["refused_step"] == second["refused_step"] == 0
    assert os.listdir(locked) == [".jno-lock"]
    # SIGTERM to process 1: both stop at one step, with one checkpoint of it.
    assert first["step"] == second["step"] and 60 <= first["step"] < 100_000
    assert first["params"] == second["params"]
    step = first["step"]
    assert str(step) in os.listdir(ckpt)
    assert "another process of this run received SIGTERM" in stopped.stderr
    # One process, this one, resumes the two processes' checkpoint, at its step.
    monkeypatch.setattr(sys, "argv", [SCRIPT, "10", str(out), str(ckpt)])
    runpy.run_path(SCRIPT, run_name="__main__")
    (alone,) = records(out)[:1]
    assert alone["count"] == 1 and alone["step"] == step + 10


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
    assert only_gloo_notices(done.stdout), done.stdout
    assert sorted(os.listdir(ckpt)) == [f"seed_{k}" for k in range(8)]
    assert all({"50", "100"} <= set(os.listdir(ckpt / f"seed_{k}")) for k in range(8))
    # One process trains the same ensemble on two devices, then resumes the two
    # processes' ensemble checkpoint: 100 + 20 steps.
    alone = run([100, 8, one, "-", ckpt, 20], devices=2, script=ENSEMBLE)
    assert alone.returncode == 0, alone.stderr[-3000:]
    (reference,) = records(one)
    params = np.asarray(reference["params"])
    assert params.shape == (8, 321) and np.abs(params[0] - params[1]).max() > 0.1
    loss = np.asarray(reference["loss"])  # (member, logged step): every member trained
    assert loss.shape == (8, 4) and np.all(loss[:, -1] < 0.6 * loss[:, 0])
    for r in records(two):
        assert r["count"] == 2 and r["step"] == 100
        np.testing.assert_allclose(r["params"], params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["loss"], reference["loss"], rtol=1e-5)
    after = json.loads((one / "resumed-0.json").read_text())
    assert after["count"] == 1 and after["step"] == 120
