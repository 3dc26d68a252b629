"""Loss-adaptive schedules (DLRS, ReduceOnPlateau): scripted sequences against references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import LearningRateSchedule as lrs
from jno.app.cli import main
from jno.nnx.schedules import DLRS, ReduceOnPlateau
from jno.nnx.state import ScheduleState

NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------- references
def ref_dlrs(seq, lr0, window, decremental_factor, stagnation_factor, increment_factor,
             min_lr, max_lr, eps=1e-12):  # fmt: skip
    """DLRS in plain Python floats; returns the rates and the branch taken at each call."""
    hist, lr, rates, branches = [], min(max(lr0, min_lr), max_lr), [], []
    for loss in seq:
        if not math.isfinite(loss):
            branches.append("skip")
        elif not hist:
            hist = [loss]
            branches.append("first")
        else:
            hist = (hist + [loss])[-window:]
            slope = (hist[-1] - hist[0]) / max(sum(hist) / len(hist), eps)
            base = 10.0 ** math.floor(math.log10(lr * (1 + 1e-6)))
            if slope > 1:
                step, name = decremental_factor, "dec"
            elif slope > 0:
                step, name = stagnation_factor, "stag"
            else:
                step, name = -increment_factor, "inc"
            new = lr - step * base
            name += "+clip" if not min_lr <= new <= max_lr else ""
            lr = min(max(new, min_lr), max_lr)
            branches.append(name)
        rates.append(lr)
    return rates, branches


def ref_plateau(seq, lr0, factor, patience, cooldown, threshold, min_lr):
    best, plateau, cool, lr, rates = math.inf, 0, 0, lr0, []
    for loss in seq:
        if math.isfinite(loss):
            improved = loss < best * (1 - threshold)
            best = loss if improved else best
            if cool > 0:
                cool, plateau = cool - 1, 0
            else:
                plateau = 0 if improved else plateau + 1
                if not improved and plateau >= patience:
                    lr, plateau, cool = max(lr * factor, min_lr), 0, cooldown
        rates.append(lr)
    return rates


# Window 4: grows for 4 calls, then slides; covers every branch, both clamps, NaN/Inf, and a
# rate that lands on a power of ten (1.1e-3 - 0.1 * 1e-3 = 1e-3, whose base must be 1e-3).
DLRS_ARGS = dict(lr0=1e-3, window=4, decremental_factor=0.5, stagnation_factor=0.1,
                 increment_factor=0.1, min_lr=8e-4, max_lr=1.5e-3)  # fmt: skip
DLRS_SEQ = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.75, 0.8, NAN, 0.9, 1.0, 1.1, 1.2, 5.0, INF,
            20.0, 100.0, 1.0]  # fmt: skip
DLRS_HAND = [1e-3, 1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3, 1.5e-3, 1.5e-3, 1.4e-3, 1.3e-3, 1.3e-3,
             1.2e-3, 1.1e-3, 1.0e-3, 0.9e-3, 8.5e-4, 8.5e-4, 8.0e-4, 8.0e-4, 8.1e-4]  # fmt: skip

# patience 2, cooldown 1, threshold 10%, min_lr clamps the third reduction.
ROP_ARGS = dict(lr0=1.0, factor=0.5, patience=2, cooldown=1, threshold=0.1, min_lr=0.2)
ROP_SEQ = [10.0, 9.5, 9.2, 9.1, 8.9, NAN, 8.5, 8.4, 8.3, 8.2, INF, 8.1, 8.0, 7.9, 7.8, 1.0, 0.9]
ROP_HAND = [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]

CASES = {
    "dlrs": (lambda: DLRS(**DLRS_ARGS), DLRS_SEQ, DLRS_HAND),
    "plateau": (lambda: ReduceOnPlateau(**ROP_ARGS), ROP_SEQ, ROP_HAND),
}


def as_terms(seq):
    """Split each total loss over two terms, so the schedules must sum them."""
    return jnp.asarray([[0.25 * x, 0.75 * x] for x in seq], jnp.float32)


def test_references_match_the_hand_sequences():
    rates, branches = ref_dlrs(DLRS_SEQ, **DLRS_ARGS)
    np.testing.assert_allclose(rates, DLRS_HAND, rtol=1e-12)
    assert {"first", "inc", "inc+clip", "stag", "dec", "dec+clip", "skip"} == set(branches)
    np.testing.assert_allclose(ref_plateau(ROP_SEQ, **ROP_ARGS), ROP_HAND, rtol=1e-12)


# --------------------------------------------------------------------- runners
def run_eager(sched, terms):
    return [float(sched(t, terms[t])) for t in range(terms.shape[0])]


def run_nnx_jit(sched, terms):
    step = nnx.jit(lambda s, t, losses: s(t, losses))
    return [float(step(sched, t, terms[t])) for t in range(terms.shape[0])]


def run_nnx_scan(sched, terms):
    @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))
    def body(s, t, losses):
        return s, s(t, losses)

    _, rates = body(sched, jnp.arange(terms.shape[0]), terms)
    return np.asarray(rates).tolist()


def run_fori_loop(sched, terms):
    graphdef, state = nnx.split(sched)

    def body(t, carry):
        state, rates = carry
        s = nnx.merge(graphdef, state)
        lr = s(t, terms[t])
        return nnx.state(s), rates.at[t].set(lr)

    init = (state, jnp.zeros(terms.shape[0], jnp.float32))
    state, rates = jax.jit(lambda c: jax.lax.fori_loop(0, terms.shape[0], body, c))(init)
    nnx.update(sched, state)
    return np.asarray(rates).tolist()


RUNNERS = {"eager": run_eager, "nnx_jit": run_nnx_jit, "nnx_scan": run_nnx_scan,
           "fori_loop": run_fori_loop}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_scripted_sequence(kind, runner):
    make, seq, hand = CASES[kind]
    sched = make()
    rates = RUNNERS[runner](sched, as_terms(seq))
    np.testing.assert_allclose(rates, hand, rtol=1e-5)
    assert float(sched.lr[...]) == pytest.approx(hand[-1], rel=1e-5)


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("how", ["split_merge", "state_update"])
def test_state_round_trip_continues_the_sequence(kind, how):
    make, seq, hand = CASES[kind]
    terms, cut = as_terms(seq), 9
    first = make()
    head = run_eager(first, terms[:cut])
    if how == "split_merge":
        graphdef, state = nnx.split(first)
        second = nnx.merge(graphdef, jax.tree_util.tree_map(np.asarray, state))
    else:
        second = make()
        nnx.update(second, nnx.state(first, ScheduleState))
    tail = run_eager(second, terms[cut:])
    np.testing.assert_allclose(head + tail, hand, rtol=1e-5)
    fresh_tail = run_eager(make(), terms[cut:])  # without the state the tail differs
    assert not np.allclose(fresh_tail, hand[cut:], rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_non_finite_loss_leaves_state_unchanged(kind):
    make, seq, _ = CASES[kind]
    sched = make()
    run_eager(sched, as_terms(seq[:5]))
    before = jax.tree_util.tree_map(np.asarray, nnx.state(sched))
    for bad in ([NAN, 1.0], [1.0, INF], [-INF, 0.0]):
        lr = sched(5, jnp.asarray(bad))
        assert float(lr) == float(before["lr"][...])
        after = nnx.state(sched)
        jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)


def test_non_finite_first_call_is_not_recorded():
    sched = DLRS(lr0=1e-3, window=3)
    assert float(sched(0, [NAN])) == pytest.approx(1e-3)
    assert int(sched.count[...]) == 0
    assert float(sched(1, [1.0])) == pytest.approx(1e-3)  # still the first recorded loss
    assert float(sched(2, [0.5])) == pytest.approx(1.1e-3)


def test_state_lives_in_schedule_state_variables():
    d, r = DLRS(window=5), ReduceOnPlateau(1e-3)
    assert set(nnx.state(d, ScheduleState).keys()) == {"losses", "count", "lr"}
    assert nnx.state(d, ScheduleState)["losses"][...].shape == (5,)
    assert set(nnx.state(r, ScheduleState).keys()) == {
        "best", "plateau_count", "cooldown_count", "lr"
    }  # fmt: skip
    assert jax.tree_util.tree_leaves(nnx.state(d, nnx.Param)) == []
    assert d.stateful and r.stateful and isinstance(d, lrs) and isinstance(r, lrs)


def test_dlrs_window_slides_and_first_call_clamps():
    sched = DLRS(lr0=5.0, window=3, max_lr=1.0)
    assert float(sched(0, [4.0])) == 1.0
    for x in (3.0, 2.0, 1.0):
        sched(0, [x])
    np.testing.assert_array_equal(np.asarray(sched.losses[...]), [3.0, 2.0, 1.0])
    assert int(sched.count[...]) == 4


def test_reset_returns_to_the_initial_state():
    for make, seq, hand in CASES.values():
        sched = make()
        run_eager(sched, as_terms(seq))
        sched.reset()
        np.testing.assert_allclose(run_eager(sched, as_terms(seq)), hand, rtol=1e-5)


def test_plateau_matches_optax_contrib_reduce_on_plateau():
    rng = np.random.default_rng(0)
    seq = np.concatenate([np.linspace(5, 1, 20), 1 + 0.05 * rng.random(60)]).tolist()
    args = dict(lr0=0.1, factor=0.5, patience=4, cooldown=3, threshold=1e-2, min_lr=0.01)
    ours = run_eager(ReduceOnPlateau(**args), jnp.asarray(seq)[:, None])
    tx = optax.contrib.reduce_on_plateau(factor=0.5, patience=4, rtol=1e-2, cooldown=3,
                                         min_scale=0.1)  # fmt: skip
    update = jax.jit(lambda state, x: tx.update(jnp.zeros(()), state, value=x)[1])
    state, theirs = tx.init(jnp.zeros(())), []
    for x in seq:
        state = update(state, jnp.float32(x))
        theirs.append(0.1 * float(state.scale))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(ours, ref_plateau(seq, **args), rtol=1e-6)
    assert min(ours) == pytest.approx(0.01) and len(set(ours)) >= 4


def test_plateau_zero_patience_reduces_on_every_non_improving_call():
    rates = run_eager(ReduceOnPlateau(1.0, patience=0), jnp.asarray([[3.0], [2.0], [2.5], [2.5]]))
    assert rates == [1.0, 1.0, 0.5, 0.25]


@pytest.mark.parametrize("sched", [DLRS(), ReduceOnPlateau(1e-3)], ids=["dlrs", "plateau"])
def test_missing_losses_raise(sched):
    with pytest.raises(ValueError, match="losses=None"):
        sched(0)


ERRORS = [
    (lambda: DLRS(window=1), "window", "1"),
    (lambda: DLRS(lr0=-1e-3), "lr0", "-0.001"),
    (lambda: DLRS(lr0=NAN), "lr0", "nan"),
    (lambda: DLRS(min_lr=1e-2, max_lr=1e-3), "min_lr", "0.01"),
    (lambda: DLRS(decremental_factor=-0.5), "decremental_factor", "-0.5"),
    (lambda: DLRS(stagnation_factor=INF), "stagnation_factor", "inf"),
    (lambda: DLRS(increment_factor=-1.0), "increment_factor", "-1.0"),
    (lambda: DLRS(eps=-1.0), "eps", "-1.0"),
    (lambda: ReduceOnPlateau(1e-3, factor=1.0), "factor", "1.0"),
    (lambda: ReduceOnPlateau(1e-3, factor=0.0), "factor", "0.0"),
    (lambda: ReduceOnPlateau(1e-3, patience=-1), "patience", "-1"),
    (lambda: ReduceOnPlateau(1e-3, cooldown=-2), "cooldown", "-2"),
    (lambda: ReduceOnPlateau(1e-3, threshold=1.0), "threshold", "1.0"),
    (lambda: ReduceOnPlateau(-1.0), "lr0", "-1.0"),
    (lambda: ReduceOnPlateau(1e-3, min_lr=1.0, max_lr=0.5), "max_lr", "0.5"),
    (lambda: lrs.reduce_on_plateau(1e-3, min_lr=-1e-3), "min_lr", "-0.001"),
    (lambda: lrs.dlrs(window=0), "window", "0"),
    # a zero initial rate would stay at 0 (DLRS steps by the rate's decade)
    (lambda: DLRS(lr0=0.0), "lr0", "0.0"),
    (lambda: DLRS(lr0=0), "lr0", "0"),
    (lambda: lrs.dlrs(lr0=0.0), "lr0", "0.0"),
    (lambda: jno.fn.adaptive.dlrs(lr0=0.0), "lr0", "0.0"),
    (lambda: DLRS(max_lr=0.0), "max_lr", "0.0"),
    (lambda: ReduceOnPlateau(0.0), "lr0", "0.0"),
    (lambda: lrs.reduce_on_plateau(0.0), "lr0", "0.0"),
    (lambda: lrs.reduce_on_plateau(-1e-3), "lr0", "-0.001"),
    (lambda: jno.fn.adaptive.reduce_on_plateau(0.0), "lr0", "0.0"),
]


@pytest.mark.parametrize("make, arg, value", ERRORS)
def test_bad_arguments_raise_value_error_naming_them(make, arg, value):
    with pytest.raises(ValueError) as err:
        make()
    assert arg in str(err.value) and value in str(err.value)


def test_configs():
    assert DLRS(lr0=1e-2, window=7).config() == {
        "kind": "dlrs", "lr0": 1e-2, "window": 7, "decremental_factor": 0.5,
        "stagnation_factor": 0.1, "increment_factor": 0.1, "min_lr": 1e-10, "max_lr": 1.0,
        "eps": 1e-12,
    }  # fmt: skip
    assert ReduceOnPlateau(1e-3, cooldown=3).config() == {
        "kind": "reduce_on_plateau", "lr0": 1e-3, "factor": 0.5, "patience": 100,
        "cooldown": 3, "threshold": 1e-4, "min_lr": 0.0, "max_lr": None,
    }  # fmt: skip


# --------------------------------------------------------------------- cli
def test_cli_schedules_writes_png(tmp_path, capsys):
    out = tmp_path / "nested" / "plot.png"
    assert main(["schedules", "--out", str(out), "--steps", "80"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["schedules", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "--out" in help_text and "jno_demo/schedules.png" in help_text and "--steps" in help_text
    with pytest.raises(SystemExit) as exit_:
        main(["schedules", "--steps", "0"])
    assert exit_.value.code == 2
    capsys.readouterr()
    assert main([]) == 2
    listing = capsys.readouterr().out
    assert "demo" in listing and "schedules" in listing


def test_cli_demo_trains_and_writes_outputs(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from jno.app.demo import build_demo

    out, logdir = tmp_path / "demo", tmp_path / "runs" / "demo"
    argv = ["demo", "--recipe", "relobralo", "--out", str(out), "--logdir", str(logdir)]
    argv += ["--steps", "200", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    relative = float(printed.split("relative L2 error:")[1].split()[0])
    untrained = build_demo(steps=200, progress=False).relative_l2()
    assert math.isfinite(relative) and relative > 0 and abs(relative - untrained) > 1e-3
    assert f"tensorboard --logdir {logdir.parent}" in printed
    for name in ("history.png", "solution.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(logdir))
    events.Reload()
    scalars = {tag: events.Scalars(tag) for tag in ("weight/pde", "weight/bc", "lr")}
    assert [e.step for e in scalars["lr"]] == list(range(2, 201, 2))  # log_every = steps / 100
    # ReLoBRaLo's weights always sum to the number of losses.
    total = [a.value + b.value for a, b in zip(scalars["weight/pde"], scalars["weight/bc"])]
    np.testing.assert_allclose(total, 2.0, rtol=1e-5)
    # Warm-up cosine: 10 warm-up steps to the peak 3e-3, then down to 1e-5 at step 200.
    rates = np.array([e.value for e in scalars["lr"]])
    assert rates.max() == pytest.approx(3e-3, rel=1e-3) and 1e-5 <= rates[-1] < 1.1e-5
