"""Every script of examples/ runs with a tiny budget and writes what it promises."""

from __future__ import annotations

import pathlib
import runpy
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMES = ["poisson2d", "helmholtz2d", "burgers1d", "klein_gordon1d", "custom_pde"]
NAMES += ["embedded_balancer"]


def test_every_example_is_tested():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    # In this process (jax is imported and warm): as `python examples/<name>.py --steps 6`.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--steps", "6"])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    error = float(out.split("relative L2 error:")[1].split()[0])
    assert 0.0 < error < 100.0  # six steps: an error, not a result
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((tmp_path / "runs" / name).glob("events.out.tfevents*"))
    assert events and events[0].stat().st_size > 0
