"""What a trainer trains: its networks with their optimizers and schedules, the balancer
and the stateful components, split into the compiled step's state and written back.

A :class:`Trained` is one part of a :class:`~jno.train.trainer.Trainer`. It follows the
optimizer each network has now (calling ``net.optimizer(...)`` again starts a new phase
with a fresh optimizer state), splits every module into the
:class:`~jno.train.state.StepState` the compiled step carries, gives the key that says
when the step must be compiled again, and writes a carried state back into the modules
the user holds.

Example:
    >>> import optax
    >>> from flax import nnx
    >>> import jno
    >>> net = jno.nn(nnx.Linear(1, 1, rngs=nnx.Rngs(0)))
    >>> _ = net.optimizer(optax.adam(1e-2))
    >>> trained = Trained((net,), balancer=None, components=ComponentSlots({}))
    >>> graphdefs, params, rest = trained.split()
    >>> sorted(params[0]), trained.schedules()
    (['bias', 'kernel'], [None])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jno.nnx._dtype import default_float
from jno.optim import QuasiNewton
from jno.train.components import ComponentSlots
from jno.train.network import Network
from jno.train.optim import OptimizerSpec
from jno.train.state import StepState
from jno.train.validation import config_of, net_name

__all__ = ["Trained", "full_params", "group_params"]


def group_params(params: Sequence[Any], members: Sequence[int]) -> Any:
    """The parameters one optimizer updates: those of its only network, or the tuple of
    its networks' parameters.

    Example:
        >>> group_params(("a", "b", "c"), (1,)), group_params(("a", "b", "c"), (0, 2))
        ('b', ('a', 'c'))
    """
    return params[members[0]] if len(members) == 1 else tuple(params[i] for i in members)


def full_params(params: Sequence[Any], members: Sequence[int], group: Any) -> tuple[Any, ...]:
    """``params`` with the networks of ``members`` set from their group's value.

    Example:
        >>> full_params(("a", "b", "c"), (0, 2), ("x", "z"))
        ('x', 'b', 'z')
    """
    out = list(params)
    values = (group,) if len(members) == 1 else group
    for i, value in zip(members, values):
        out[i] = value
    return tuple(out)


class Trained:
    """The networks, optimizers, schedules, balancer and components of a trainer.

    Args:
        nets: The networks (``jno.nn(module)``), each with its optimizer.
        balancer: The balancer module, or None.
        components: The stateful loss components by slot.

    Attributes:
        joint: One optimizer over the parameters of every network (None: each network
            has its own).
        specs: The spec of each optimizer, as of the last :meth:`refresh`: one per
            network, or the joint one.
        opt_states: The state of each optimizer (None until first initialised).
    """

    def __init__(
        self,
        nets: Sequence[Network],
        balancer: nnx.Module | None,
        components: ComponentSlots,
    ):
        self.nets = tuple(nets)
        self.balancer = balancer
        self.components = components
        self.joint: OptimizerSpec | None = None
        self.specs: list[OptimizerSpec | None] = [None] * len(self.nets)
        self.opt_states: list[Any] = [None] * len(self.nets)

    def groups(self) -> tuple[tuple[int, ...], ...]:
        """The networks each optimizer updates: one each, or all under the joint one."""
        if self.joint is not None:
            return (tuple(range(len(self.nets))),)
        return tuple((i,) for i in range(len(self.nets)))

    def set_joint(self, tx: optax.GradientTransformation | None) -> OptimizerSpec | None:
        """Sets one optimizer over every network's parameters (None: each its own).

        Raises:
            ValueError: a dense quasi-Newton ``tx`` whose matrix over all the
                parameters exceeds its ``max_hessian_bytes``.
        """
        if tx is None:
            self.joint = None
            return None
        spec = OptimizerSpec(tx)
        if isinstance(tx, QuasiNewton):
            jax.eval_shape(tx.init, tuple(nnx.state(n.module, nnx.Param) for n in self.nets))
        self.joint = spec
        return spec

    def refresh(self) -> None:
        """Takes the current optimizers: the joint one, or each network's (a new one
        gets a fresh state).

        Raises:
            RuntimeError: a network has no optimizer (and there is no joint one).
            ValueError: two networks share one loss-adaptive schedule instance.
        """
        current = [self.joint] if self.joint is not None else []
        for net in self.nets if self.joint is None else ():
            if net.optimizer_spec is None:
                raise RuntimeError(
                    f"network {net_name(net, self.nets)} has no optimizer: call "
                    "net.optimizer(optax.adam(1e-3)) (optionally .scale(...)) before fit"
                )
            current.append(net.optimizer_spec)
        if len(current) != len(self.specs):
            self.specs, self.opt_states = [None] * len(current), [None] * len(current)
        for i, spec in enumerate(current):
            if spec is not self.specs[i]:
                self.specs[i] = spec
                self.opt_states[i] = None
        owned = [id(s) for s in self.schedules() if s is not None and s.stateful]
        if len(owned) != len(set(owned)):
            raise ValueError("each network needs its own loss-adaptive schedule instance")

    def schedules(self) -> list[Any]:
        """Each optimizer's learning-rate scale schedule (None where unscaled)."""
        return [None if spec is None else spec.schedule for spec in self.specs]

    def split(self) -> tuple[list[Any], tuple[Any, ...], tuple[Any, ...]]:
        """``(graphdefs, params, rest)`` of the networks: ``nnx.Param`` and the rest."""
        graphdefs, params, rest = [], [], []
        for net in self.nets:
            gd, p, r = nnx.split(net.module, nnx.Param, ...)
            graphdefs.append(gd)
            params.append(p)
            rest.append(r)
        return graphdefs, tuple(params), tuple(rest)

    def schedule_graphdefs(self) -> list[Any]:
        return [None if s is None else nnx.split(s)[0] for s in self.schedules()]

    def balancer_graphdef(self) -> Any:
        return None if self.balancer is None else nnx.split(self.balancer)[0]

    def compile_key(self) -> tuple:
        """Equal keys mean one compiled step serves both (static structure, optimizers)."""
        return (
            tuple(self.split()[0]),
            self.groups(),
            tuple(id(s) for s in self.specs),
            tuple(self.schedule_graphdefs()),
            self.balancer_graphdef(),
            self.components.graphdefs(),
        )

    def initial(
        self,
        step: int,
        key: jax.Array,
        num_terms: int,
        init_optimizer: Callable[[int, StepState], Any],
    ) -> StepState:
        """The step state of the modules as they are now; ``init_optimizer(i, state)``
        makes optimizer ``i``'s state where it has none yet."""
        _, params, rest = self.split()
        schedules = tuple(None if s is None else nnx.state(s) for s in self.schedules())
        carry = StepState(
            step=jnp.asarray(step, jnp.int32),
            params=params,
            rest=rest,
            opt=(),
            schedules=schedules,
            balancer=None if self.balancer is None else nnx.state(self.balancer),
            components=self.components.states(),
            key=key,
            term_grad_norms=jnp.full(num_terms, jnp.nan, default_float()),
            diverged=jnp.asarray(False),
            bad_step=jnp.asarray(-1, jnp.int32),
            bad_terms=jnp.zeros(num_terms + 2, bool),
        )
        for i in range(len(self.specs)):
            if self.opt_states[i] is None:
                self.opt_states[i] = init_optimizer(i, carry)
        # Weakly typed scalars (a user's ``jnp.array(0.5)``, optax's line-search info)
        # come back strongly typed from the first step: made strong here, every dispatch
        # of the step sees one signature and compiles once.
        return jax.tree.map(_strong, carry.replace(opt=tuple(self.opt_states)))

    def config(self) -> dict[str, Any]:
        """The optimizers (each network's, and the joint one when set), the balancer and
        the components, as logged with a run's hyper-parameters."""
        out = {
            "networks": {
                net_name(net, self.nets, quote=False): (
                    None if net.optimizer_spec is None else net.optimizer_spec.config()
                )
                for net in self.nets
            },
            "balancer": None if self.balancer is None else config_of(self.balancer),
            **{name: config_of(m) for name, m in self.components.modules.items()},
        }
        if self.joint is not None:
            out["joint_optimizer"] = self.joint.config()
        return out

    def store(self, carry: StepState) -> None:
        """Writes a carried state back into the modules the user holds."""
        for net, params, rest in zip(self.nets, carry.params, carry.rest):
            nnx.update(net.module, params, rest)
        for schedule, state in zip(self.schedules(), carry.schedules):
            if schedule is not None and state is not None:
                nnx.update(schedule, state)
        if self.balancer is not None:
            nnx.update(self.balancer, carry.balancer)
        self.components.store(carry.components)
        self.opt_states = list(carry.opt)


def _strong(leaf: Any) -> Any:
    """``leaf`` with its dtype made strong (the same values and dtype)."""
    if isinstance(leaf, jax.Array) and leaf.weak_type:
        return jnp.asarray(leaf, leaf.dtype)
    return leaf
