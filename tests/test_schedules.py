"""Pure learning-rate schedules: formulas, optax equivalence, clamps, custom fns, errors."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jno
from jno import LearningRateSchedule as lrs
from jno.nnx.schedules import DLRS, ReduceOnPlateau, as_schedule

STEPS = np.unique(np.concatenate([np.arange(0, 60), [99, 100, 101, 499, 500, 501, 999, 1000]]))
LONG = np.unique(np.concatenate([np.arange(0, 6000, 37), [0, 1, 499, 500, 501, 4999, 5000, 5001]]))


# --------------------------------------------------------------------- numpy references
def np_exponential(t, lr0, rate, steps, lr_end=0.0, staircase=False):
    p = np.asarray(t, np.float64) / steps
    if staircase:
        p = np.floor(p)
    return np.maximum(lr_end, lr0 * rate**p)


def np_cosine(t, total, lr0, lr_end=0.0):
    frac = np.minimum(np.asarray(t, np.float64) / total, 1.0)
    return lr_end + (lr0 - lr_end) * (1 + np.cos(np.pi * frac)) / 2


def np_warmup_cosine(t, total, warmup, lr0, lr_end):
    t = np.asarray(t, np.float64)
    decay = np.where(total > warmup, np.minimum((t - warmup) / max(total - warmup, 1), 1.0), 1.0)
    cos = lr_end + (lr0 - lr_end) * (1 + np.cos(np.pi * decay)) / 2
    return np.where(t < warmup, lr0 * (t + 1) / max(warmup, 1), cos)


def np_piecewise(t, boundaries, values):
    t = np.asarray(t)
    idx = (t[:, None] >= np.asarray(boundaries)[None, :]).sum(axis=1)
    return np.asarray(values)[idx]


CASES = {
    "constant": (lambda: lrs.constant(1e-3), lambda t: np.full(len(t), 1e-3), STEPS),
    "shorthand": (lambda: lrs(2.5e-4), lambda t: np.full(len(t), 2.5e-4), STEPS),
    "exponential_seed": (
        lambda: lrs.exponential(1e-3, 0.9, 2000, 1e-5),
        lambda t: np_exponential(t, 1e-3, 0.9, 2000, 1e-5),
        LONG,
    ),
    "exponential_floor_binds": (
        lambda: lrs.exponential(lr0=1.0, decay_rate=0.5, decay_steps=10, lr_end=0.1),
        lambda t: np_exponential(t, 1.0, 0.5, 10, 0.1),
        STEPS,
    ),
    "exponential_staircase": (
        lambda: lrs.exponential(1e-2, 0.5, 7, staircase=True),
        lambda t: np_exponential(t, 1e-2, 0.5, 7, staircase=True),
        STEPS,
    ),
    "cosine": (
        lambda: lrs.cosine(total_steps=5000, lr0=1e-3, lr_end=1e-6),
        lambda t: np_cosine(t, 5000, 1e-3, 1e-6),
        LONG,
    ),
    "warmup_cosine": (
        lambda: lrs.warmup_cosine(total_steps=5000, warmup_steps=500, lr0=1e-3, lr_end=1e-6),
        lambda t: np_warmup_cosine(t, 5000, 500, 1e-3, 1e-6),
        LONG,
    ),
    "warmup_cosine_all_warmup": (
        lambda: lrs.warmup_cosine(50, 50, lr0=1.0, lr_end=0.25),
        lambda t: np_warmup_cosine(t, 50, 50, 1.0, 0.25),
        STEPS,
    ),
    "warmup_cosine_no_warmup": (
        lambda: lrs.warmup_cosine(100, 0, lr0=1.0, lr_end=0.0),
        lambda t: np_cosine(t, 100, 1.0, 0.0),
        STEPS,
    ),
    "piecewise_constant": (
        lambda: lrs.piecewise_constant(boundaries=[1000, 3000], values=[1e-3, 5e-4, 1e-4]),
        lambda t: np_piecewise(t, [1000, 3000], [1e-3, 5e-4, 1e-4]),
        np.array([0, 1, 999, 1000, 1001, 2999, 3000, 3001, 10**6]),
    ),
    "custom_seed_lambda": (
        lambda: lrs(lambda epoch, losses: 1e-4 * (0.9 ** (epoch / 500))),
        lambda t: 1e-4 * 0.9 ** (np.asarray(t) / 500),
        LONG,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_formula_eager_jit_and_vmap(name):
    make, ref, steps = CASES[name]
    sched = make()
    expected = ref(steps)
    tol = dict(rtol=1e-5, atol=1e-7 * np.max(expected))  # float32 evaluation
    every = max(len(steps) // 25, 1)
    eager = np.array([float(sched(int(t))) for t in steps[::every]])
    np.testing.assert_allclose(eager, expected[::every], **tol)
    jitted = jax.jit(lambda t: sched(t, None))
    one = np.array([float(jitted(jnp.int32(t))) for t in steps[-10:]])
    np.testing.assert_allclose(one, expected[-10:], **tol)
    batched = jax.jit(jax.vmap(sched))(jnp.asarray(steps, jnp.int32))
    assert batched.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(batched), expected, **tol)


def test_output_is_float32_scalar_and_calls_change_nothing():
    sched = lrs.cosine(100, 1e-3)
    out = sched(3, jnp.array([1.0, 2.0]))
    assert out.shape == () and out.dtype == jnp.float32
    assert jax.tree_util.tree_leaves(nnx.state(sched)) == []
    assert float(sched(3)) == float(out)
    assert lrs.cosine(10, 1.0).stateful is False


# --------------------------------------------------------------------- optax equivalence
def _ours_and_optax(ours, theirs, steps):
    t = jnp.asarray(steps, jnp.int32)
    return np.asarray(jax.jit(jax.vmap(ours))(t)), np.asarray(jax.jit(jax.vmap(theirs))(t))


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_matches_optax(staircase):
    a, b = _ours_and_optax(
        lrs.exponential(1e-3, 0.9, 200, lr_end=4e-4, staircase=staircase),
        optax.exponential_decay(1e-3, 200, 0.9, staircase=staircase, end_value=4e-4),
        np.arange(0, 2000, 7),
    )
    assert a.min() == pytest.approx(4e-4)  # the floor is reached within the range
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_cosine_matches_optax():
    a, b = _ours_and_optax(
        lrs.cosine(500, 1e-3, 1e-5),
        optax.cosine_decay_schedule(1e-3, 500, alpha=1e-5 / 1e-3),
        np.arange(0, 700),
    )
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10)


def test_piecewise_constant_matches_optax():
    values = [1e-3, 5e-4, 1e-4]
    theirs = optax.piecewise_constant_schedule(1e-3, {1000: 0.5, 3000: 0.2})
    a, b = _ours_and_optax(
        lrs.piecewise_constant([1000, 3000], values), theirs, np.arange(0, 4000, 11)
    )
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_warmup_cosine_vs_optax_is_one_step_ahead_during_warmup():
    # Ours starts the warm-up at lr0 / warmup_steps (step 0 already trains) and reaches
    # lr0 at step warmup_steps - 1; optax starts at init_value=0 and reaches the peak at
    # warmup_steps. So ours(t) == optax(t + 1) in the warm-up and ours(t) == optax(t) after.
    ours = lrs.warmup_cosine(1000, 100, lr0=1e-3, lr_end=1e-6)
    theirs = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000, end_value=1e-6)
    warm = np.arange(0, 100)
    a, b = _ours_and_optax(ours, lambda t: theirs(t + 1), warm)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    decay = np.arange(100, 1200, 3)
    a, b = _ours_and_optax(ours, theirs, decay)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10)


def test_as_optax_schedule_in_jitted_adam_update():
    sched = lrs.cosine(4, 1e-3)
    tx, ref = optax.adam(sched), optax.adam(optax.cosine_decay_schedule(1e-3, 4))
    params = {"w": jnp.array([1.0, -2.0, 3.0])}

    def grads(p):
        return {"w": 2.0 * p["w"]}

    @jax.jit
    def update(p, state):
        u, state = tx.update(grads(p), state, p)
        return optax.apply_updates(p, u), state

    p, s = params, tx.init(params)
    q, r = params, ref.init(params)
    for _ in range(4):
        p, s = update(p, s)
        u, r = ref.update(grads(q), r, q)
        q = optax.apply_updates(q, u)
        np.testing.assert_allclose(p["w"], q["w"], rtol=1e-6)
    # First Adam step moves each weight by -lr(0) * sign(g); later steps by less.
    p1, _ = update(params, tx.init(params))
    np.testing.assert_allclose(p1["w"], params["w"] - 1e-3 * np.sign(params["w"]), rtol=1e-6)
    assert not np.allclose(p["w"], params["w"] - 4e-3 * np.sign(params["w"]))


# --------------------------------------------------------------------- clamps
CLAMPED = {
    "constant": (lambda **k: lrs.constant(1e-3, **k), lambda t: np.full(len(t), 1e-3)),
    "exponential": (
        lambda **k: lrs.exponential(1e-3, 0.5, 10, **k),
        lambda t: np_exponential(t, 1e-3, 0.5, 10),
    ),
    "cosine": (lambda **k: lrs.cosine(50, 1e-3, **k), lambda t: np_cosine(t, 50, 1e-3)),
    "warmup_cosine": (
        lambda **k: lrs.warmup_cosine(50, 10, 1e-3, 0.0, **k),
        lambda t: np_warmup_cosine(t, 50, 10, 1e-3, 0.0),
    ),
    "piecewise_constant": (
        lambda **k: lrs.piecewise_constant([10, 20], [1e-3, 5e-4, 1e-4], **k),
        lambda t: np_piecewise(t, [10, 20], [1e-3, 5e-4, 1e-4]),
    ),
    "custom": (
        lambda **k: lrs(lambda step, losses: 1e-3 - 2e-5 * step, **k),
        lambda t: 1e-3 - 2e-5 * np.asarray(t, np.float64),
    ),
}


@pytest.mark.parametrize("name", sorted(CLAMPED))
@pytest.mark.parametrize("bounds", [(2e-4, None), (None, 6e-4), (2e-4, 6e-4)])
def test_min_max_clamp(name, bounds):
    make, ref = CLAMPED[name]
    lo, hi = bounds
    t = np.arange(0, 60)
    out = np.asarray(jax.jit(jax.vmap(make(min_lr=lo, max_lr=hi)))(jnp.asarray(t)))
    expected = np.clip(ref(t), lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
    if name != "constant" or hi is not None:  # the bound actually changes something
        assert not np.allclose(expected, ref(t))
    # atol: a few float32 ulps of the 1e-3 terms, where "custom" crosses zero.
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-9)


def test_equal_min_and_max_pin_the_rate():
    assert float(lrs.cosine(10, 1.0, min_lr=0.3, max_lr=0.3)(5)) == pytest.approx(0.3)


# --------------------------------------------------------------------- custom fns
def test_custom_fn_reads_losses_with_where_eager_and_jit():
    sched = lrs(lambda step, losses: jnp.where(losses[0] > 1e-2, 1e-3, 1e-5), min_lr=2e-5)
    high, low = jnp.array([0.5, 9.0]), jnp.array([1e-3, 9.0])
    assert float(sched(0, high)) == pytest.approx(1e-3)
    assert float(sched(0, low)) == pytest.approx(2e-5)  # clamped from 1e-5
    step = nnx.jit(lambda s, t, losses: s(t, losses))
    assert float(step(sched, 3, high)) == pytest.approx(1e-3)
    assert float(step(sched, 3, low)) == pytest.approx(2e-5)


def test_seed_python_if_lambda_works_eagerly():
    sched = lrs(lambda epoch, losses: 1e-3 if losses[0] > 1e-2 else 1e-5)
    assert float(sched(0, [0.5, 0.1])) == pytest.approx(1e-3)
    assert float(sched(0, jnp.array([1e-3, 0.1]))) == pytest.approx(1e-5)


def test_python_if_under_jit_raises_type_error_showing_jnp_where():
    sched = lrs(lambda epoch, losses: 1e-3 if losses[0] > 1e-2 else 1e-5)
    with pytest.raises(TypeError) as err:
        jax.jit(lambda losses: sched(0, losses))(jnp.array([0.5]))
    msg = str(err.value)
    assert "jnp.where" in msg and "lax.cond" in msg
    assert "jnp.where(losses[0] > 1e-2, 1e-3, 1e-5)" in msg
    assert isinstance(err.value.__cause__, jax.errors.ConcretizationTypeError)


def test_custom_fn_step_is_traced_under_jit():
    sched = lrs(lambda step, losses: 1.0 / (1.0 + step))
    out = jax.jit(jax.vmap(sched))(jnp.arange(4))
    np.testing.assert_allclose(out, [1.0, 0.5, 1 / 3, 0.25], rtol=1e-6)


def test_non_scalar_fn_output_raises():
    with pytest.raises(ValueError, match=r"scalar.*\(3,\)"):
        lrs(lambda step, losses: jnp.ones(3))(0)


# --------------------------------------------------------------------- as_schedule, config
def test_as_schedule_accepts_every_kind():
    cos = lrs.cosine(10, 1.0)
    dlrs = DLRS()
    assert as_schedule(cos) is cos
    assert as_schedule(dlrs) is dlrs
    assert float(as_schedule(3e-4)(7)) == pytest.approx(3e-4)
    assert float(as_schedule(1)(7)) == 1.0
    assert float(as_schedule(np.float32(0.5))(0)) == 0.5
    from_optax = as_schedule(optax.cosine_decay_schedule(1.0, 10))
    assert isinstance(from_optax, jno.LearningRateSchedule)
    np.testing.assert_allclose(
        jax.vmap(from_optax)(jnp.arange(12)), np_cosine(np.arange(12), 10, 1.0), rtol=1e-6
    )
    assert from_optax.config()["kind"] == "callable"
    two = as_schedule(lambda step, losses: losses[1] * step)
    assert float(two(3, jnp.array([1.0, 2.0]))) == 6.0
    star = as_schedule(lambda *args: 0.25)
    assert float(star(3, None)) == 0.25


@pytest.mark.parametrize("bad", ["1e-3", None, [1e-3], True])
def test_as_schedule_rejects_other_values(bad):
    with pytest.raises(TypeError, match=repr(bad).replace("[", r"\[").replace("]", r"\]")):
        as_schedule(bad)


def test_config_is_json_and_names_the_arguments():
    cfg = lrs.exponential(1e-3, 0.9, 2000, 1e-5, min_lr=1e-6).config()
    assert cfg == {
        "kind": "exponential", "lr0": 1e-3, "decay_rate": 0.9, "decay_steps": 2000,
        "lr_end": 1e-5, "staircase": False, "min_lr": 1e-6, "max_lr": None,
    }  # fmt: skip
    pw = lrs.piecewise_constant([1000, 3000], [1e-3, 5e-4, 1e-4]).config()
    assert pw["boundaries"] == [1000, 3000] and pw["values"] == [1e-3, 5e-4, 1e-4]
    assert lrs(1e-3).config()["kind"] == "constant"
    assert lrs.warmup_cosine(5000, 500).config()["warmup_steps"] == 500
    assert lrs.cosine(5000, 1e-3).config()["total_steps"] == 5000

    def my_schedule(step, losses):
        return 1e-3

    assert lrs(my_schedule).config() == {
        "kind": "custom", "fn": "test_config_is_json_and_names_the_arguments.<locals>.my_schedule",
        "min_lr": None, "max_lr": None,
    }  # fmt: skip
    for s in (lrs.constant(1e-3), lrs.cosine(5, 1.0), DLRS(), ReduceOnPlateau(1e-3)):
        assert json.loads(json.dumps(s.config())) == s.config()


def test_fn_adaptive_dlrs_and_factories_build_adaptive_schedules():
    d = jno.fn.adaptive.dlrs(lr0=1e-3, window=10, decremental_factor=0.5,
                             stagnation_factor=0.1, increment_factor=0.1,
                             min_lr=1e-6, max_lr=1e-2)  # fmt: skip
    assert isinstance(d, DLRS) and isinstance(d, lrs) and d.stateful
    assert d.config()["min_lr"] == 1e-6 and d.config()["max_lr"] == 1e-2
    assert isinstance(lrs.dlrs(window=3), DLRS)
    r = lrs.reduce_on_plateau(1e-3, factor=0.1, patience=5, max_lr=1e-2)
    assert isinstance(r, ReduceOnPlateau) and r.config()["patience"] == 5
    with pytest.raises(TypeError):
        jno.fn.adaptive()


# --------------------------------------------------------------------- validation
ERRORS = [
    (lambda: lrs.piecewise_constant([10, 20], [1.0, 2.0]), "values", "[1.0, 2.0]"),
    (lambda: lrs.piecewise_constant([10, 10], [1.0, 2.0, 3.0]), "boundaries", "[10, 10]"),
    (lambda: lrs.piecewise_constant([20, 10], [1.0, 2.0, 3.0]), "boundaries", "[20, 10]"),
    (lambda: lrs.piecewise_constant([10], [1.0, -2.0]), "values[1]", "-2.0"),
    (lambda: lrs.constant(1e-3, min_lr=1e-2, max_lr=1e-3), "min_lr", "0.01"),
    (lambda: lrs.constant(-1e-3), "lr", "-0.001"),
    (lambda: lrs.constant(float("nan")), "lr", "nan"),
    (lambda: lrs(float("inf")), "fn", "inf"),
    (lambda: lrs.exponential(-1.0, 0.9, 10), "lr0", "-1.0"),
    (lambda: lrs.exponential(1.0, 0.9, 10, lr_end=-1e-5), "lr_end", "-1e-05"),
    (lambda: lrs.exponential(1.0, 0.0, 10), "decay_rate", "0.0"),
    (lambda: lrs.exponential(1.0, -0.5, 10), "decay_rate", "-0.5"),
    (lambda: lrs.exponential(1.0, 0.9, 0), "decay_steps", "0"),
    (lambda: lrs.cosine(0, 1.0), "total_steps", "0"),
    (lambda: lrs.cosine(10, float("nan")), "lr0", "nan"),
    (lambda: lrs.warmup_cosine(100, 200), "warmup_steps", "200"),
    (lambda: lrs.warmup_cosine(-5, 0), "total_steps", "-5"),
    (lambda: lrs.warmup_cosine(10, 2, lr_end=-1.0), "lr_end", "-1.0"),
    (lambda: lrs.cosine(10, 1.0, min_lr=-1.0), "min_lr", "-1.0"),
    (lambda: lrs.cosine(10, 1.0, max_lr=float("inf")), "max_lr", "inf"),
]

# A zero or negative initial rate never trains: every factory refuses it, naming it.
ZERO_INITIAL_RATE = [
    (lambda: lrs(0.0), "fn", "0.0"),
    (lambda: lrs(0), "fn", "0"),
    (lambda: lrs(-1e-3), "fn", "-0.001"),
    (lambda: lrs.constant(0.0), "lr", "0.0"),
    (lambda: lrs.exponential(0.0, 0.9, 10), "lr0", "0.0"),
    (lambda: lrs.exponential(lr0=0, decay_rate=0.9, decay_steps=10), "lr0", "0"),
    (lambda: lrs.cosine(10, 0.0), "lr0", "0.0"),
    (lambda: lrs.cosine(10, -1e-3), "lr0", "-0.001"),
    (lambda: lrs.warmup_cosine(10, 2, lr0=0.0), "lr0", "0.0"),
    (lambda: lrs.warmup_cosine(10, 2, lr0=-1.0), "lr0", "-1.0"),
    (lambda: lrs.piecewise_constant([10], [0.0, 1e-3]), "values[0]", "0.0"),
    (lambda: lrs.piecewise_constant([10], [-1e-3, 1e-3]), "values[0]", "-0.001"),
    (lambda: lrs.cosine(10, 1e-3, max_lr=0.0), "max_lr", "0.0"),
    (lambda: as_schedule(0.0), "lr", "0.0"),
]


@pytest.mark.parametrize("make, arg, value", ZERO_INITIAL_RATE)
def test_zero_or_negative_initial_rate_raises_naming_it(make, arg, value):
    with pytest.raises(ValueError, match="> 0") as err:
        make()
    assert arg in str(err.value) and value in str(err.value)


def test_rates_reached_later_may_be_zero():
    assert float(lrs.piecewise_constant([10], [1e-3, 0.0])(10)) == 0.0
    assert float(lrs.cosine(10, 1e-3, lr_end=0.0, min_lr=0.0)(10)) == 0.0
    assert float(lrs.exponential(1.0, 0.5, 1, lr_end=0.0)(5)) == pytest.approx(1 / 32)
    assert float(lrs.warmup_cosine(10, 2, lr0=1.0, lr_end=0.0)(10)) == 0.0


@pytest.mark.parametrize("make, arg, value", ERRORS)
def test_bad_arguments_raise_value_error_naming_them(make, arg, value):
    with pytest.raises(ValueError) as err:
        make()
    assert arg in str(err.value) and value in str(err.value)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: lrs("fast"), "'fast'"),
        (lambda: lrs(None), "None"),
        (lambda: lrs(lambda step: 1e-3), "as_schedule"),
        (lambda: lrs.cosine(10.5, 1.0), "total_steps"),
        (lambda: lrs.exponential(1.0, "0.9", 10), "decay_rate"),
    ],
)
def test_wrong_types_raise_type_error(make, text):
    with pytest.raises(TypeError, match=text.replace("(", r"\(")):
        make()


def test_seed_calls_build():
    assert math.isclose(float(lrs.exponential(1e-3, 0.9, 2000, 1e-5)(2000)), 9e-4, rel_tol=1e-6)
    lrs.exponential(lr0=1e-3, decay_rate=0.9, decay_steps=1000, lr_end=1e-5)
    lrs.cosine(total_steps=5000, lr0=1e-3, lr_end=1e-6)
    lrs.warmup_cosine(total_steps=5000, warmup_steps=500, lr0=1e-3, lr_end=1e-6)
    lrs.piecewise_constant(boundaries=[1000, 3000], values=[1e-3, 5e-4, 1e-4])
    assert float(lrs(1e-3)(0)) == float(lrs.constant(1e-3)(0))
