"""``jno train`` and ``jno compare``: outputs, resume, the table's numbers, --help."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

import jno.app.compare
from jno.app.cli import build_parser, main
from jno.app.compare import format_table, pairwise, summarize
from jno.app.experiment import BALANCERS, PROBLEMS, SCHEDULES, build_trainer, make_schedule

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = ["--hidden", "8", "--batch-size", "16", "--log-every", "5"]


def _printed_error(text: str) -> float:
    return float(text.split("relative L2 error:")[1].split()[0])


def _events(folder) -> list:
    return [p for p in folder.rglob("events.out.tfevents*")]


def test_train_writes_outputs_and_resumes(tmp_path, capsys):
    ckpt, out, logdir = tmp_path / "ckpt", tmp_path / "figs", tmp_path / "runs" / "p"
    argv = ["train", "poisson2d", "--balancer", "dwa", "--mode", "l2", *SMALL]
    argv += ["--out", str(out), "--logdir", str(logdir), "--checkpoint-dir", str(ckpt)]
    assert main([*argv, "--steps", "10", "--quiet"]) == 0
    first = capsys.readouterr().out
    assert "resumed" not in first and f"tensorboard --logdir {logdir.parent}" in first
    for name in ("history.png", "solution.png"):
        assert (out / name).read_bytes()[:8] == PNG
        (out / name).unlink()
    assert _events(logdir)

    # A second run with the same folder continues from step 10 up to 20 in all.
    assert main([*argv, "--steps", "20", "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "resumed from step 10" in second
    assert all((out / name).read_bytes()[:8] == PNG for name in ("history.png", "solution.png"))

    # The printed error is that of the network saved at step 20.
    trainer = build_trainer(
        "poisson2d", balancer="dwa", mode="l2", hidden=[8], batch_size=16,
        checkpoint_dir=str(ckpt), progress=False,
    )  # fmt: skip
    assert trainer.restore() == 20
    assert trainer.balancer.config()["mode"] == "l2" and int(trainer.balancer.calls[...]) == 20
    np.testing.assert_allclose(_printed_error(second), trainer.relative_l2(), rtol=6e-4)
    assert _printed_error(second) != _printed_error(first)


def test_compare_table_matches_the_runs(tmp_path, capsys, monkeypatch):
    results = []

    def spy(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    real = jno.app.compare.run_compare
    monkeypatch.setattr(jno.app.compare, "run_compare", spy)
    out = tmp_path / "cmp"
    argv = ["compare", "poisson2d", "--balancers", "fixed,relobralo", "--seeds", "2"]
    argv += ["--steps", "12", "--evals", "2", "--schedule", "constant", "--lr", "1e-2"]
    assert main([*argv, *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = (out / "compare.md").read_text()
    assert table in printed and (out / "compare.png").read_bytes()[:8] == PNG

    rows, pairs = {}, []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] in BALANCERS:
            mean, std = (float(v) for v in cells[1].split("±"))
            values = [float(v) for v in cells[3].split(",")]
            rows[cells[0]] = (mean, std, float(cells[2]), values, float(cells[4]))
        if len(cells) == 4 and cells[0] in BALANCERS:
            pairs.append((cells[0], cells[1], float(cells[2])))
    assert list(rows) == ["fixed", "relobralo"]
    (result,) = results
    for name, (mean, std, median, values, wall) in rows.items():
        runs = [r for r in result["runs"] if r["balancer"] == name]
        errors = np.array([r["relative_l2"] for r in runs])
        assert [r["seed"] for r in runs] == [0, 1]
        np.testing.assert_allclose(values, errors, rtol=6e-4)
        np.testing.assert_allclose(mean, errors.mean(), rtol=6e-4)
        np.testing.assert_allclose(median, np.median(errors), rtol=6e-4)
        np.testing.assert_allclose(std, errors.std(ddof=1), rtol=6e-4)
        np.testing.assert_allclose(wall, np.mean([r["wall_time"] for r in runs]), atol=0.051)
        for run in runs:  # the error curve: untrained, after 6 steps, after 12
            assert run["eval_steps"] == [0, 6, 12] and run["errors"][-1] == run["relative_l2"]
            assert run["history"].steps[-1] == 12
    # P(fixed ends below relobralo): the fraction of the 4 pairs of seeds it wins.
    fixed, relo = (
        [r["relative_l2"] for r in result["runs"] if r["balancer"] == n]
        for n in ("fixed", "relobralo")
    )
    won = np.mean([(a < b) + 0.5 * (a == b) for a in fixed for b in relo])
    assert pairs == [("fixed", "relobralo", pytest.approx(won, abs=0.005))]
    # Same seed, same initial network whatever the balancer; the seeds differ.
    by = {(r["balancer"], r["seed"]): r["errors"][0] for r in result["runs"]}
    assert by["fixed", 0] == by["relobralo", 0] != by["fixed", 1] == by["relobralo", 1]
    assert rows["fixed"][2] != rows["relobralo"][2]


def test_summarize_and_format_table_by_hand():
    runs = [
        {"balancer": "rlw", "seed": 0, "relative_l2": 0.1, "wall_time": 1.0},
        {"balancer": "dwa", "seed": 0, "relative_l2": 0.5, "wall_time": 4.0},
        {"balancer": "rlw", "seed": 1, "relative_l2": 0.3, "wall_time": 2.0},
        {"balancer": "rlw", "seed": 2, "relative_l2": 0.2, "wall_time": 3.0},
    ]
    rows = summarize(runs)
    assert [r["balancer"] for r in rows] == ["rlw", "dwa"]
    assert rows[0]["values"] == [0.1, 0.3, 0.2] and rows[0]["wall_time"] == 2.0
    assert rows[0]["mean"] == pytest.approx(0.2) and rows[0]["std"] == pytest.approx(0.1)
    assert rows[1]["std"] == 0.0  # one seed
    assert rows[0]["median"] == pytest.approx(0.2)
    lines = format_table(rows, "title").splitlines()
    assert lines[0] == "title" and lines[4:6] == [
        "| rlw | 2.000e-01 ± 1.000e-01 | 2.000e-01 | 1.000e-01, 3.000e-01, 2.000e-01 | 2.0 |",
        "| dwa | 5.000e-01 ± 0.000e+00 | 5.000e-01 | 5.000e-01 | 4.0 |",
    ]
    # rlw's three seeds all end below dwa's one: P = 1, whatever the resampling.
    assert lines[-1] == "| rlw | dwa | 1.00 | 1.00 - 1.00 |"
    mixed = pairwise([{"balancer": "a", "values": [0.1, 0.4]}, {"balancer": "b", "values": [0.3]}])
    mixed = mixed[0]
    assert mixed["p"] == 0.5 and mixed["low"] == 0.0 and mixed["high"] == 1.0


def test_make_schedule_values():
    t = np.array([0, 500, 1000, 3000])
    exponential = make_schedule("exponential", 5000, 1e-3)
    np.testing.assert_allclose([float(exponential(s)) for s in t], 1e-3 * 0.9 ** (t / 1000))
    floored = make_schedule("exponential", 5000, 1e-3, decay_rate=0.1, lr_end=5e-5)
    assert float(floored(3000)) == pytest.approx(5e-5)
    warm = make_schedule("warmup_cosine", 2000, 2e-3)  # warm-up: 5% = 100 steps
    assert float(warm(0)) == pytest.approx(2e-3 / 100) and float(warm(99)) == pytest.approx(2e-3)
    mid = 1e-6 + (2e-3 - 1e-6) * (1 + np.cos(np.pi * 0.5)) / 2  # halfway through the cosine
    assert float(warm(1050)) == pytest.approx(mid, rel=1e-5)
    cosine = make_schedule("cosine", 100, 1e-3, lr_end=1e-4)
    assert float(cosine(100)) == pytest.approx(1e-4) and float(cosine(0)) == pytest.approx(1e-3)
    assert float(make_schedule("constant", 10, 3e-4)(7)) == pytest.approx(3e-4)
    dlrs = make_schedule("dlrs", 10, 1e-3).config()
    assert (dlrs["kind"], dlrs["lr0"], dlrs["min_lr"], dlrs["max_lr"]) == ("dlrs", 1e-3, 1e-6, 1e-2)
    with pytest.raises(ValueError, match="schedule must be one of .*'linear'"):
        make_schedule("linear", 10)


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_train_a_recipe_prints_the_error_and_resumes_its_quasi_newton_phase(tmp_path, capsys):
    import jax

    ckpt, out = tmp_path / "ckpt", tmp_path / "figs"
    argv = ["train", "poisson2d", "--recipe", "quasi-newton", "--hidden", "4"]
    argv += ["--batch-size", "16", "--adam-steps", "10", "--out", str(out), "--quiet"]
    argv += ["--logdir", str(tmp_path / "runs" / "r"), "--checkpoint-dir", str(ckpt)]
    with jax.enable_x64(True):
        assert main([*argv, "--qn-steps", "5"]) == 0
        first = capsys.readouterr()
        assert main([*argv, "--qn-steps", "20", "--qn-method", "ssbfgs"]) == 0
        second = capsys.readouterr()
    assert first.err == "" and "resumed" not in first.out
    assert "resumed from step 15" in second.out
    assert 0 < _printed_error(second.out) < _printed_error(first.out)
    assert all((out / name).read_bytes()[:8] == PNG for name in ("history.png", "solution.png"))


def test_train_a_system_prints_the_error_of_each_field(tmp_path, capsys):
    import jax

    out = tmp_path / "figs"
    argv = ["train", "Kovasznay2D", "--recipe", "quasi-newton", "--hidden", "6"]
    argv += ["--batch-size", "32", "--adam-steps", "10", "--qn-steps", "10"]
    argv += ["--out", str(out), "--quiet", "--logdir", str(tmp_path / "runs" / "k")]
    with jax.enable_x64(True):
        assert main(argv) == 0
    printed = capsys.readouterr().out
    errors = re.findall(r"relative L2 error (\w): ([0-9.e+-]+)", printed)
    assert [name for name, _ in errors] == ["u", "v", "p"]
    assert all(0 < float(value) < 10 for _, value in errors)
    assert (out / "solution.png").read_bytes()[:8] == PNG


USER_FILE = """
import jax.numpy as jnp
from jno import ops
from jno.domain import Interval
from jno.problems import Problem


class Decay(Problem):  # u' = -u, u(0) = 1
    domain = Interval(0.0, 1.0)
    point_sets = ("interior",)
    causal_term = "ode"  # the residual the recipe's RAD points follow

    def reference(self, x):
        return jnp.exp(-x[:, 0])

    def residuals(self, u, batch):
        x = batch["interior"]
        u0 = u(jnp.zeros((1, 1))).reshape(1)
        return {"ode": ops.partial(u, x, 0) + u(x)[:, 0], "ic": u0 - 1.0}


class Unknown(Decay):  # the same without a reference
    reference = Problem.reference
"""


def test_train_a_problem_class_of_the_users_file(tmp_path, capsys):
    import jax

    file = tmp_path / "my_pde.py"
    file.write_text(USER_FILE)
    argv = ["--recipe", "quasi-newton", "--hidden", "8", "--batch-size", "32", "--quiet"]
    argv += ["--out", str(tmp_path / "o"), "--logdir", str(tmp_path / "runs" / "r")]
    # Without a reference, the run has only its losses to print: a short one shows them.
    decay = ["train", f"{file}:Decay", *argv, "--adam-steps", "100", "--qn-steps", "30"]
    unknown = ["train", f"{file}:Unknown", *argv, "--adam-steps", "10", "--qn-steps", "5"]
    with jax.enable_x64(True):
        assert main(decay) == 0
        first = capsys.readouterr().out
        assert main(unknown) == 0
        second = capsys.readouterr().out
    assert 0 < _printed_error(first) < 1e-2  # a trained exponential
    assert "no reference solution; final losses: total " in second and ", ode " in second
    # The first-order recipe trains it too (a PirateNet; no time, so no initial fit).
    soap = ["--recipe", "soap", "--hidden", "8,8,8", "--batch-size", "32", "--quiet"]
    soap += ["--recipe-steps", "300", "--warmup-steps", "5", "--out", str(tmp_path / "s")]
    soap += ["--logdir", str(tmp_path / "runs" / "s")]
    assert main(["train", f"{file}:Decay", *soap]) == 0
    assert 0 < _printed_error(capsys.readouterr().out) < 0.9  # untrained: 1.3
    for spec, message in (
        (f"{tmp_path}/missing.py:Decay", "missing.py' does not exist"),
        (f"{file}:Nope", "has no class 'Nope'; its Problem classes: \\['Decay', 'Unknown'\\]"),
    ):
        with pytest.raises(SystemExit):
            main(["train", spec, "--quiet"])
        assert re.search(message, capsys.readouterr().err)


def test_train_a_recipe_sized_to_minutes(tmp_path, capsys):
    import jax

    argv = ["train", "poisson2d", "--recipe", "quasi-newton", "--hidden", "4", "--batch-size"]
    argv += ["16", "--minutes", "0.01", "--out", str(tmp_path / "o"), "--quiet"]
    argv += ["--logdir", str(tmp_path / "runs" / "r")]
    with jax.enable_x64(True):
        assert main(argv) == 0
    captured = capsys.readouterr()
    sized = re.search(r"sized to 0.01 min: Adam (\d+) steps .* ssbroyden (\d+) ", captured.err)
    adam, qn = int(sized.group(1)), int(sized.group(2))
    assert adam > 0 and abs(qn - 2 * adam) <= 1  # Poisson's recipe: 5 000 Adam, 10 000 quasi-Newton
    assert _printed_error(captured.out) > 0
    with jax.enable_x64(True), pytest.raises(SystemExit, match="--minutes is an option of"):
        main(["train", "allencahn1d", "--recipe", "soap", "--minutes", "1", "--quiet"])


def test_train_the_soap_recipe_and_refuse_options_of_the_other(tmp_path, capsys, monkeypatch):
    from jno.problems.recipes import FirstOrderRecipe

    runs = []  # the recipe's training is tested on its own: here, what the CLI built
    monkeypatch.setattr(
        FirstOrderRecipe, "run", lambda self, trainer: runs.append(self) or trainer.history
    )
    argv = ["train", "allencahn1d", "--recipe", "soap", "--hidden", "8,8,8", "--quiet"]
    argv += ["--batch-size", "32", "--recipe-steps", "6", "--warmup-steps", "2"]
    argv += ["--optimizer", "adam", "--out", str(tmp_path / "figs")]
    assert main([*argv, "--logdir", str(tmp_path / "runs" / "r")]) == 0
    (recipe,) = runs
    assert (recipe.width, recipe.depth, recipe.points, recipe.steps) == (8, 3, 32, 6)
    assert (recipe.warmup_steps, recipe.optimizer, recipe.network) == (2, "adam", "pirate")
    out = capsys.readouterr().out
    assert 0.1 < _printed_error(out) < 10
    for wrong, message in (
        (
            ["--recipe", "soap", "--qn-steps", "5"],
            "--qn-steps is an option of --recipe quasi-newton",
        ),
        (
            ["--recipe", "quasi-newton", "--optimizer", "adam"],
            "--optimizer is an option of --recipe soap",
        ),
        (["--network", "pirate"], "--network pirate is an option of --recipe soap"),
        (["--recipe", "soap", "--hidden", "8,4,8"], "--hidden must repeat one width"),
    ):
        with pytest.raises(SystemExit, match=message):
            main(["train", "poisson2d", *wrong])


@pytest.mark.parametrize("command", ["demo", "train", "compare", "schedules"])
def test_help_lists_every_option(command, capsys):
    sub = _subparsers(build_parser())[command]
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in sub._actions:
        assert action.help, f"{command}: {action.dest} has no help"
        for option in action.option_strings:
            assert re.search(rf"{option}\b", text), f"{command} --help lacks {option}"
        for choice in action.choices or ():
            assert choice in text, f"{command} --help lacks the choice {choice}"
    if command in ("train", "compare"):
        assert all(name in text for name in (*PROBLEMS, *SCHEDULES, *BALANCERS))


def test_bad_arguments_exit_with_usage(capsys):
    for argv in (
        ["train", "heat3d"],
        ["train", "poisson2d", "--balancer", "bogus"],
        ["train", "poisson2d", "--hidden", "8,x"],
        ["compare", "poisson2d", "--balancers", "fixed,bogus"],
        ["compare", "poisson2d", "--seeds", "0"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
    assert "fixed,bogus" in capsys.readouterr().err
    listing = main([]) == 2 and capsys.readouterr().out
    assert all(name in listing for name in ("demo", "train", "compare", "schedules"))
