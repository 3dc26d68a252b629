"""The term algebra: values of terms, linear forms, placeholders, factories, errors."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jno
from jno import core
from jno.frontend._algebra import evaluate, linear_form
from jno.frontend.terms import Term, Tracker, Weight, balance, data, residual
from jno.nnx.balancers import DWA, RLW, LbPINNsLossBalancing, ReLoBRaLo, SoftAdapt
from jno.nnx.networks.mlp import MLP

X = np.linspace(0.0, 1.0, 7, dtype=np.float32)[:, None]


@pytest.fixture
def net():
    return jno.nn(MLP(1, [4], 1, rngs=nnx.Rngs(0)))


@pytest.fixture
def pde_bc(net):
    pde = net.residual(lambda u, x: u(x)[:, 0] - x[:, 0] ** 2, X, name="pde")
    bc = net.residual(lambda u, x: u(x), np.zeros((1, 1), np.float32), name="bc")
    return pde, bc


def test_residual_reductions_match_numpy(net):
    u = np.asarray(net(X))[:, 0]
    r = u - X[:, 0] ** 2
    for reduce, expected in (
        ("mse", np.mean(r**2)),
        ("mae", np.mean(np.abs(r))),
        ("mean", r.mean()),
    ):
        term = net.residual(lambda u, x: u(x)[:, 0] - x[:, 0] ** 2, X, reduce=reduce)
        assert float(term.evaluate([net.module], X)) == pytest.approx(float(expected), rel=1e-6)
    # (n, 1) and (n,) residuals mean the same thing.
    column = net.residual(lambda u, x: u(x) - x**2, X)
    assert float(column.evaluate([net.module], X)) == pytest.approx(float(np.mean(r**2)), rel=1e-6)


def test_broadcast_residual_is_a_clear_error(net):
    wrong = net.residual(lambda u, x: u(x) - x[:, 0] ** 2, X, name="wrong")  # (n, 1) - (n,)
    with pytest.raises(ValueError, match=r"'wrong' has values of shape \(7, 7\)"):
        wrong.evaluate([net.module], X)


def test_data_term_value_and_shape_checks(net):
    y = np.cos(X[:, 0])
    term = data(net, X, y, name="obs")
    expected = np.mean((np.asarray(net(X))[:, 0] - y) ** 2)
    assert float(term.evaluate([net.module], *term.sources)) == pytest.approx(float(expected))
    assert data(net, X, y).name is None and term.kind == "data"
    with pytest.raises(ValueError, match="y must be a finite array"):
        data(net, X, y[:5])
    with pytest.raises(
        ValueError, match=r"y has shape \(7, 2\) but the network maps x to \(7, 1\)"
    ):
        data(net, X, np.ones((7, 2)))
    with pytest.raises(TypeError, match="jno.nn"):
        data(net.module, X, y)


def test_linear_form_of_weighted_sums(pde_bc):
    pde, bc = pde_bc
    w_pde, w_bc = jno.fn.adaptive.softadapt([pde, bc])
    expr = w_pde * pde + 2 * bc - bc / 4 + (w_bc + 1) * pde - (-bc)
    coefs, const = linear_form(expr, {})
    assert const is None and [t.name for t, _ in coefs.values()] == ["pde", "bc"]
    env = {id(w_pde): jnp.float32(0.3), id(w_bc): jnp.float32(1.7)}
    values = [float(evaluate(c, env)) for _, c in coefs.values()]
    assert values == pytest.approx([0.3 + 1.7 + 1.0, 2 - 0.25 + 1])
    # The value of an expression is that of its linear form.
    env.update({id(pde): jnp.float32(5.0), id(bc): jnp.float32(-2.0)})
    assert float(evaluate(expr, env)) == pytest.approx(values[0] * 5 - values[1] * 2)


def test_loss_entries_must_be_linear_in_the_terms(pde_bc):
    pde, bc = pde_bc
    (w,) = jno.fn.adaptive.rlw([pde])
    with pytest.raises(ValueError, match="multiplies two terms"):
        core([pde * bc])
    with pytest.raises(ValueError, match="divides by a term"):
        core([pde / (bc + 1)])
    with pytest.raises(ValueError, match=r"part without a term \(w_pde\)"):
        core([pde + w])
    with pytest.raises(ValueError, match="part without a term"):
        core([2 + pde])
    with pytest.raises(ValueError, match="divides by zero"):
        core([pde / 0])
    with pytest.raises(ValueError, match="only trackers"):
        core([pde.tracker()])
    with pytest.raises(TypeError, match="terms, expressions and trackers"):
        core([pde, 1.0])
    # Non-linear expressions can still be tracked.
    crux = core([pde + bc, (pde * bc).tracker("product")], progress=False)
    assert crux.term_names == ("pde", "bc") and crux.tracked == ()


def test_placeholders_and_terms_have_no_value_outside_core(pde_bc):
    pde, _ = pde_bc
    (w,) = jno.fn.adaptive.dwa([pde])
    for use in (float, bool, int, np.asarray, jnp.asarray, lambda v: v > 0.5):
        with pytest.raises(TypeError, match="no value outside the training step"):
            use(w)
    with pytest.raises(TypeError, match="no value outside the training step"):
        float(pde)
    with pytest.raises(TypeError, match="only with real numbers"):
        pde * np.ones(3)
    with pytest.raises(TypeError, match="only with terms, weights and real numbers"):
        pde + "bc"
    with pytest.raises(TypeError, match="a tracker only logs"):
        pde + pde.tracker()
    with pytest.raises(ValueError, match="must be finite"):
        float("inf") * pde
    b = pde.tracker().expr
    assert [repr(e) for e in (pde - (b + 1), pde / (2 * b), -(pde + b) / 4)] == [
        "pde-(pde+1)",
        "pde/(2*pde)",
        "-(pde+pde)/4",
    ]
    # Numbers of any real type scale terms.
    assert repr(np.float32(2) * pde + np.int64(3) * w * pde) == "2*pde+3*w_pde*pde"


def test_tracker_names(pde_bc):
    pde, bc = pde_bc
    w_pde, w_bc = jno.fn.adaptive.relobralo([pde, bc])
    assert repr(w_pde.tracker()) == "Tracker('w_pde': w_pde)"
    assert repr(bc.tracker()) == "Tracker('bc': bc)"
    with pytest.raises(ValueError, match="name is required"):
        (w_pde * pde).tracker()
    with pytest.raises(ValueError, match="only letters, digits"):
        pde.tracker("my pde")
    with pytest.raises(ValueError, match="two trackers are named 'w_pde'"):
        core([pde, w_pde.tracker(), pde.tracker("w_pde")])
    with pytest.raises(TypeError, match="tracked"):
        Tracker(1.0)
    (w_sum,) = jno.fn.adaptive.softadapt([pde + bc])
    with pytest.raises(ValueError, match="has no default name"):
        core([w_sum * pde, w_sum.tracker()])


def test_terms_are_named_by_core(net):
    y = np.zeros(7, np.float32)
    first, second = data(net, X, y), data(net, X, y)
    explicit = net.residual(lambda u, x: u(x), X, name="data_1")
    unnamed = net.residual(lambda u, x: u(x), X)
    crux = core([first + second + explicit + unnamed], progress=False)
    assert crux.term_names == ("data", "data_2", "data_1", "residual")
    # One point set per distinct source object: X is shared by every term here.
    assert list(crux.points) == ["data", "data/y", "data_2/y"]
    with pytest.raises(ValueError, match="two different terms are named 'data_1'"):
        core([explicit + net.residual(lambda u, x: u(x), X, name="data_1")])
    with pytest.raises(ValueError, match=r"points names no term of this crux: \['nope'\]"):
        core([explicit], points={"nope": X})


def test_balancer_factories_build_one_module_and_one_placeholder_per_term(pde_bc):
    pde, bc = pde_bc
    cases = [
        (
            jno.fn.adaptive.relobralo,
            {"alpha": 0.9, "tau": 0.5, "expected_rho": 0.5, "seed": 3},
            ReLoBRaLo,
        ),
        (jno.fn.adaptive.softadapt, {"beta": 0.2}, SoftAdapt),
        (jno.fn.adaptive.dwa, {"temperature": 1.5}, DWA),
        (
            jno.fn.adaptive.lbpinns_loss_balancing,
            {"init_s": [0.1, -0.1], "lr_s": 0.05},
            LbPINNsLossBalancing,
        ),
        (jno.fn.adaptive.rlw, {"alpha": 2.0, "seed": 1}, RLW),
    ]
    for factory, kwargs, cls in cases:
        weights = factory([pde, bc], **kwargs, mode="minmax")
        assert isinstance(weights, tuple) and [w.index for w in weights] == [0, 1]
        module = weights[0].group.module
        assert type(module) is cls and weights[1].group.module is module
        config = module.config()
        expected = {k: list(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        assert {k: config[k] for k in kwargs} == expected
        assert config["num_losses"] == 2 and config["mode"] == "minmax"
        assert [w.term for w in weights] == [pde, bc]
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\], got 2"):
        jno.fn.adaptive.relobralo([pde, bc], alpha=2)
    with pytest.raises(ValueError, match="mode"):
        jno.fn.adaptive.softadapt([pde, bc], mode="max")
    with pytest.raises(TypeError, match="non-empty list of terms"):
        jno.fn.adaptive.dwa(pde)
    with pytest.raises(TypeError, match="non-empty list of terms"):
        jno.fn.adaptive.rlw([])
    with pytest.raises(ValueError, match="num_losses=3 but got 2 terms"):
        balance(SoftAdapt(3), [pde, bc])
    assert isinstance(jno.fn.adaptive.dlrs(lr0=1e-3, window=10), jno.nnx.DLRS)


def test_constructor_errors_name_the_argument(net):
    with pytest.raises(TypeError, match="fn must be callable"):
        net.residual(3.0, X)
    with pytest.raises(TypeError, match=r"fn must accept \(u, x\)"):
        net.residual(lambda x: x, X)
    other = jno.nn(MLP(1, [4], 1, rngs=nnx.Rngs(1)))
    with pytest.raises(TypeError, match=r"fn must accept \(2 networks, x\)"):
        residual(lambda u, x: u(x), X, nets=(net, other))
    with pytest.raises(
        ValueError, match=r"points must be a finite \(n, d\) array, got shape \(7,\)"
    ):
        net.residual(lambda u, x: u(x), X[:, 0])
    with pytest.raises(TypeError, match="points must be a PointSet"):
        net.residual(lambda u, x: u(x), object())
    with pytest.raises(TypeError, match="wrap a Flax module with jno.nn"):
        residual(lambda u, x: u(x), X, nets=net.module)
    with pytest.raises(ValueError, match="reduce must be one of"):
        net.residual(lambda u, x: u(x), X, reduce="sum")
    with pytest.raises(ValueError, match="name must be non-empty"):
        net.residual(lambda u, x: u(x), X, name="")
    term = residual(lambda a, b, x: a(x) - b(x), X, nets=[net, other], name="ab")
    assert isinstance(term, Term) and term.nets == (net, other)
    assert isinstance(jno.fn.adaptive.rlw([term])[0], Weight)
