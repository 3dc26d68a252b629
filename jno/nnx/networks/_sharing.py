"""One derivative pass per (network, points) pair inside a loss function.

A loss such as Burgers' ``u_t + u u_x - nu u_xx`` calls several operators on the same
network and points. Each would propagate its own jet and, in the backward pass, its
own cotangents through every layer. :func:`run_shared` runs the loss function twice
while tracing: a first run only records which derivatives each (network, points) pair
is asked for (operators return zeros of the right shape), the second computes, at the
first request of each pair, one jet carrying all of them and serves every later
request from it.

Pairs are matched between the two runs by the order in which they first appear, which
is the same for the same Python function; a pair that does not match (different
network class or point shape) simply gets a jet of its own. Results never depend on
the matching: it only decides how much is computed at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.extend

from jno.nnx.networks.jets import Jet, Pair

__all__ = ["Request", "planned_jet", "recording", "run_shared", "shared_jet", "shared_value"]


class Request(NamedTuple):
    """The derivatives asked of a network at some points."""

    first: frozenset[int] = frozenset()
    second: frozenset[Pair] = frozenset()
    laplacian: bool = False

    @classmethod
    def of(
        cls, first: Iterable[int] = (), second: Iterable[Pair] = (), laplacian: bool = False
    ) -> Request:
        pairs = frozenset((min(i, j), max(i, j)) for i, j in second)
        return cls(frozenset(first), pairs, bool(laplacian))

    def union(self, other: Request) -> Request:
        return Request(
            self.first | other.first,
            self.second | other.second,
            self.laplacian or other.laplacian,
        )

    def covered_by(self, jet: Jet) -> bool:
        return (
            self.first <= jet.first.keys()
            and self.second <= jet.second.keys()
            and (jet.has_laplacian or not self.laplacian)
        )

    def seed(self, x: jax.Array) -> Jet:
        return Jet.seed(x, self.first, self.second, self.laplacian)


def _trace() -> Any:
    """The JAX trace being built: a jet made inside a nested transformation (a
    ``lax.cond`` branch, ``vmap``, ``checkpoint``) holds its tracers and must not be
    reused outside it."""
    return jax.extend.core.get_opaque_trace_state(convention="nnx")


class _Slot:
    __slots__ = ("jet", "module", "request", "trace", "x")

    def __init__(self, module: Any, x: Any, request: Request):
        self.module, self.x, self.request, self.jet = module, x, request, None
        self.trace = _trace()


class _Context:
    """The slots of one run: pairs in order of first appearance."""

    def __init__(self, plan: list[tuple[type, tuple[int, ...], Request]] | None):
        self.plan = plan
        self.slots: list[_Slot] = []

    def find(self, module: Any, x: Any) -> _Slot | None:
        for slot in self.slots:
            if slot.module is module and slot.x is x:
                return slot
        return None

    def record(self, module: Any, x: Any, request: Request) -> None:
        slot = self.find(module, x)
        if slot is None:
            self.slots.append(_Slot(module, x, request))
        else:
            slot.request = slot.request.union(request)

    def jet(self, module: Any, x: Any, request: Request) -> Jet:
        slot = self.find(module, x)
        if slot is not None:
            usable = slot.jet is not None and slot.trace == _trace()
            if not (usable and request.covered_by(slot.jet)):
                # Not foreseen by the recording, or asked in another trace: computed on
                # its own, still correct.
                return module.forward(request.seed(x))
            return slot.jet
        k = len(self.slots)
        planned = request
        if self.plan is not None and k < len(self.plan):
            kind, shape, wanted = self.plan[k]
            if kind is type(module) and shape == tuple(x.shape):
                planned = wanted.union(request)
        slot = _Slot(module, x, planned)
        slot.jet = module.forward(planned.seed(x))
        self.slots.append(slot)
        return slot.jet

    def to_plan(self) -> list[tuple[type, tuple[int, ...], Request]]:
        return [(type(s.module), tuple(s.x.shape), s.request) for s in self.slots]


class _Local(threading.local):
    recording: _Context | None = None
    sharing: _Context | None = None


_local = _Local()


def recording() -> bool:
    """Whether the current run only records requests (operators return placeholders)."""
    return _local.recording is not None


def shared_jet(module: Any, x: Any, request: Request) -> Jet | None:
    """The jet of ``module`` at ``x`` carrying at least ``request``.

    ``None`` while recording (the caller returns a placeholder of the right shape);
    outside :func:`run_shared` a fresh jet.
    """
    if _local.recording is not None:
        _local.recording.record(module, x, request)
        return None
    if _local.sharing is not None:
        return _local.sharing.jet(module, x, request)
    return module.forward(request.seed(x))


def planned_jet(module: Any, x: Any) -> Jet | None:
    """The shared jet of the pair with what the other operators asked of it, if any.

    Asks for nothing itself: an operator with a cheaper route of its own (the reverse
    mode gradient) uses the jet only when the other operators already put what it needs
    there. ``None`` outside a sharing run and while recording.
    """
    if _local.recording is not None:
        _local.recording.record(module, x, Request())
        return None
    if _local.sharing is not None:
        return _local.sharing.jet(module, x, Request())
    return None


def shared_value(module: Any, x: Any) -> Any:
    """``module``'s output at ``x``, from the shared jet of the pair when there is one."""
    if _local.recording is not None:
        _local.recording.record(module, x, Request())
        return module.forward(x)
    if _local.sharing is not None:
        return _local.sharing.jet(module, x, Request()).value
    return module.forward(x)


def run_shared(
    fn: Callable[..., Any],
    *args: Any,
    after_recording: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Calls ``fn(*args, **kwargs)`` with derivatives shared per (network, points) pair.

    ``fn`` runs twice (a recording run, then the real one), so it must be free of side
    effects on its inputs, as a loss function is; ``after_recording`` is called between
    the runs to undo any that it has (e.g. restore a module's state). Inside an active
    run it simply calls ``fn``.
    """
    if _local.recording is not None or _local.sharing is not None:
        return fn(*args, **kwargs)
    _local.recording = _Context(None)
    try:
        fn(*args, **kwargs)
        plan = _local.recording.to_plan()
    finally:
        _local.recording = None
    if after_recording is not None:
        after_recording()
    _local.sharing = _Context(plan)
    try:
        return fn(*args, **kwargs)
    finally:
        _local.sharing = None
