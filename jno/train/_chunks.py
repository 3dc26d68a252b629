"""The host loop of a training: fused chunks of steps, completed one chunk late."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jno.train.interrupts import StopRequest, deferred_signals

__all__ = ["ChunkedRun"]


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
        Stops early once ``stop`` is true, logging what the last interval accumulated."""
        accumulated, dispatched, pending = empty, start, None
        while dispatched < target and not stop:
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
