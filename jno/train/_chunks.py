"""The host loop of a training: fused chunks of steps, completed one chunk late."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jno.nnx._checks import check_int
from jno.train.interrupts import StopRequest, agree, deferred_signals

__all__ = ["ChunkedRun", "check_fit", "fit_target", "next_boundary"]


def check_fit(steps: Any, until: Any) -> tuple[int | None, int | None]:
    """The arguments of ``fit(steps)`` / ``fit(until=...)``, checked: exactly one given,
    a non-negative int."""
    if (steps is None) == (until is None):
        raise TypeError(
            f"fit takes exactly one of steps and until, got steps={steps!r}, until={until!r}"
        )
    if until is not None:
        return None, check_int("until", until, minimum=0)
    return check_int("steps", steps, minimum=0), None


def fit_target(steps: int | None, until: int | None, current: int) -> int:
    """The step a fit that starts at step ``current`` trains to.

    Example:
        >>> fit_target(5, None, 10), fit_target(None, 3, 10), fit_target(None, 30, 10)
        (15, 10, 30)
    """
    return current + steps if until is None else max(until, current)


def next_boundary(
    step: int,
    target: int,
    log_every: int,
    checkpoint_every: int | None,
    steps_per_call: int | None,
) -> int:
    """Where a chunk of fused steps that starts at ``step`` ends: at ``target``, the next
    logged or checkpointed step, or after ``steps_per_call`` steps, whichever is first.

    Example:
        >>> next_boundary(0, 1000, 100, None, None), next_boundary(120, 1000, 100, 50, 10)
        (100, 130)
    """
    stops = [target, (step // log_every + 1) * log_every]
    if checkpoint_every is not None:
        stops.append((step // checkpoint_every + 1) * checkpoint_every)
    if steps_per_call is not None:
        stops.append(step + steps_per_call)
    return min(stops)


class ChunkedRun:
    """Runs chunks of fused steps to ``target``; :attr:`carry` is always the newest
    dispatched state, also when a completion raises (for the caller's ``finally``).

    Dispatch is asynchronous: the device runs a chunk while the host completes
    (logs, checks, checkpoints) the previous one. A chunk that follows a divergence
    changes nothing (the carry is frozen), so being one chunk late is safe.

    Args:
        carry: the state before the first chunk.
    """

    def __init__(self, carry: Any):
        self.carry = carry

    def run(
        self,
        step: Callable[[Any, Any, int], tuple[Any, Any]],
        complete: Callable[[Any, Any, int, bool], None],
        empty: Any,
        start: int,
        target: int,
        next_boundary: Callable[[int, int], int],
        log_every: int,
        stop: Any,
    ) -> None:
        """``step(carry, accumulated, n) -> (carry, metrics)`` runs ``n`` steps;
        ``complete(carry, metrics, end_step, log_due)`` is the host side of a chunk.
        Stops early once ``stop`` is true on any process of the run (:func:`agree`),
        logging what the last interval accumulated."""
        accumulated, dispatched, pending = empty, start, None
        while dispatched < target and not agree(stop):
            n = next_boundary(dispatched, target) - dispatched
            self.carry, chunk = step(self.carry, accumulated, n)
            dispatched += n
            log_due = dispatched % log_every == 0 or dispatched == target
            accumulated = empty if log_due else chunk
            if pending is not None:
                complete(*pending)
            pending = (self.carry, chunk, dispatched, log_due)
        if pending is not None:
            complete(*pending[:3], pending[3] or bool(stop))

    def fit(
        self,
        step: Callable[[Any, Any, int], tuple[Any, Any]],
        complete: Callable[[Any, Any, int, bool], None],
        empty: Any,
        start: int,
        target: int,
        next_boundary: Callable[[int, int], int],
        log_every: int,
        *,
        save: Callable[[Any], None],
        hand_back: Callable[[Any], None],
    ) -> StopRequest:
        """:meth:`run` with SIGINT and SIGTERM deferred (:func:`deferred_signals`).

        ``save(carry)`` runs once the chunks are done, also after a signal;
        ``hand_back(carry)`` gets the newest dispatched state whatever happens. Returns
        the stop request, for :func:`~jno.train.interrupts.raise_for`.
        """
        with deferred_signals() as stop:
            try:
                self.run(step, complete, empty, start, target, next_boundary, log_every, stop)
                save(self.carry)
            finally:
                hand_back(self.carry)
        return stop
