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
from flax import nnx

from jno.nnx._dtype import default_float
from jno.train.components import ComponentSlots
from jno.train.network import Network
from jno.train.optim import OptimizerSpec
from jno.train.state import StepState
from jno.train.validation import net_name

__all__ = ["Trained"]


class Trained:
    """The networks, optimizers, schedules, balancer and components of a trainer.

    Args:
        nets: The networks (``jno.nn(module)``), each with its optimizer.
        balancer: The balancer module, or None.
        components: The stateful loss components by slot.

    Attributes:
        specs: The optimizer spec of each network, as of the last :meth:`refresh`.
        opt_states: The optimizer state of each network (None until first initialised).
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
        self.specs: list[OptimizerSpec | None] = [None] * len(self.nets)
        self.opt_states: list[Any] = [None] * len(self.nets)

    def refresh(self) -> None:
        """Takes each network's current optimizer (a new one gets a fresh state).

        Raises:
            RuntimeError: a network has no optimizer.
            ValueError: two networks share one loss-adaptive schedule instance.
        """
        for i, net in enumerate(self.nets):
            spec = net.optimizer_spec
            if spec is None:
                raise RuntimeError(
                    f"network {net_name(net, self.nets)} has no optimizer: call "
                    "net.optimizer(optax.adam(1e-3)) (optionally .scale(...)) before fit"
                )
            if spec is not self.specs[i]:
                self.specs[i] = spec
                self.opt_states[i] = None
        owned = [id(s) for s in self.schedules() if s is not None and s.stateful]
        if len(owned) != len(set(owned)):
            raise ValueError("each network needs its own loss-adaptive schedule instance")

    def schedules(self) -> list[Any]:
        """Each network's learning-rate scale schedule (None where unscaled)."""
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
        makes network ``i``'s optimizer state where it has none yet."""
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
        for i in range(len(self.nets)):
            if self.opt_states[i] is None:
                self.opt_states[i] = init_optimizer(i, carry)
        return carry.replace(opt=tuple(self.opt_states))

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
