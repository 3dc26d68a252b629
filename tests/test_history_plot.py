"""The history figure: which panels it draws and what it marks on the loss panel."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jno
from jno.train.history import History


def recipe_like_history(weights_vary: bool = False) -> History:
    """Adam until step 40 (with lr), then a quasi-Newton phase (no lr); a RAD set
    redrawn before steps 30, 50 and 70; weights fixed at 1 unless ``weights_vary``."""
    h = History()
    pool = [np.nan, np.nan, 0.06, 0.06, 0.07, 0.07, 0.18, 0.18]
    for k, step in enumerate(range(10, 90, 10)):
        row = {
            "loss/total": 1.0 / step,
            "loss/pde": 0.5 / step,
            "weight/pde": 1.0 + (0.1 * k if weights_vary else 0.0),
            "lr": 1e-3 if step <= 40 else np.nan,
            "tracker/points_interior_pool_residual": pool[k],
            "tracker/points_interior_replaced": 0.0 if step < 30 else 1.0,
            "tracker/w_bc": 2.0,
        }
        h.append(step, row)
    h.mark(40, "SSBroyden")
    return h


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def vertical_lines(ax, style: str) -> list[float]:
    found = []
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), float)
        if line.get_linestyle() == style and x.size == 2 and x[0] == x[1]:
            found.append(float(x[0]))
    return found


def test_no_balancer_no_weight_panel_and_trackers_in_panels_of_their_own(tmp_path):
    fig = recipe_like_history().plot(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0
    assert titles(fig) == [
        "loss",
        "learning rate",
        "points_interior: pool_residual",
        "points_interior: replaced",
        "w_bc",
    ]
    loss = fig.axes[0]
    assert vertical_lines(loss, "--") == [40.0]  # the phase mark
    assert [t.get_text() for t in loss.texts] == ["SSBroyden"]
    assert vertical_lines(loss, ":") == [30.0, 50.0, 70.0]  # the redraws
    # Every tracker has its own axis: the counts of replaced points do not squash
    # the pool residual.
    assert fig.axes[2].get_ylim()[1] < 0.2 and fig.axes[3].get_ylim()[1] > 0.9
    # The learning rate is drawn over the Adam phase only.
    (lr,) = fig.axes[1].lines
    assert np.isfinite(np.asarray(lr.get_ydata(), float)).sum() == 4


def test_a_balancer_gets_its_weight_panel_and_no_rate_no_rate_panel():
    h = recipe_like_history(weights_vary=True)
    assert titles(h.plot())[:3] == ["loss", "weight", "learning rate"]
    plain = History()
    for step in (1, 2):
        plain.append(step, {"loss/total": 1.0 / step, "lr": np.nan, "weight/a": 3.0})
    assert titles(plain.plot()) == ["loss"]


def test_an_empty_history_plots_its_empty_loss_panel_without_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = History().plot(tmp_path / "empty.png")
    assert titles(fig) == ["loss"] and fig.axes[0].get_legend() is None
    assert (tmp_path / "empty.png").stat().st_size > 0


class Fit(jno.Trainer):
    def losses(self, net, batch):
        return {"data": jnp.mean((net(batch["x"])[:, 0] - batch["x"][:, 0]) ** 2)}


def test_marks_are_kept_by_checkpoints(tmp_path):
    def make():
        net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
        net.optimizer(optax.sgd(0.1))
        points = {"x": jnp.linspace(-1, 1, 8)[:, None]}
        return Fit(net, points=points, progress=False, log_every=5, checkpoint_dir=tmp_path)

    first = make()
    first.fit(10)
    first.history.mark(10, "phase two")
    first.fit(10)
    second = make()
    assert second.restore() == 20
    assert second.history.marks == ((10, "phase two"),)
    assert second.history.steps.tolist() == [5, 10, 15, 20]
