"""Stopping a training cleanly on SIGINT (Ctrl-C) and SIGTERM (preemption).

While ``fit`` runs, :func:`deferred_signals` replaces the handlers of SIGINT and SIGTERM
by one that only records the request. The training loop checks it after each chunk of
fused steps, stops at that step boundary, saves a checkpoint of the last completed step
(when ``checkpoint_dir`` is set), writes and closes the TensorBoard run, and then ends as
the signal asks: :func:`raise_for` raises ``KeyboardInterrupt`` for SIGINT and
``SystemExit(143)`` for SIGTERM. A second Ctrl-C stops at once. The wait is bounded by
the chunk in flight: at most ``log_every`` steps (or ``steps_per_call``, or the
distance to the next checkpoint), which cannot be cut short on the device.

Outside the main thread Python delivers no signals, and nothing is replaced. A signal
the process ignores (``SIG_IGN``: a job started with ``nohup`` or in the background of a
shell) stays ignored.

A run over several processes (:mod:`jno.train.processes`) stops as one: after each chunk
the processes share their requests (:func:`agree`), and a signal sent to any one of
them stops all of them at the same step, where one checkpoint is written together.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import jax

from jno.train.processes import gather

__all__ = ["StopRequest", "agree", "deferred_signals", "raise_for"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The signal received while training (None: none yet)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def deferred_signals() -> Iterator[StopRequest]:
    """Records SIGINT and SIGTERM instead of acting on them, for the ``with`` block.

    Example:
        >>> import os, signal
        >>> with deferred_signals() as request:
        ...     os.kill(os.getpid(), signal.SIGTERM)
        >>> request.signal == signal.SIGTERM
        True
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def record(signum: int, frame: object) -> None:
        if request.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop at once
        request.signal = signum
        name = signal.Signals(signum).name
        print(
            f"jno: {name} received, stopping at the end of the current chunk of steps "
            "(Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    previous = {s: h for s, h in previous.items() if h is not signal.SIG_IGN}
    for s in previous:
        signal.signal(s, record)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def agree(request: StopRequest) -> bool:
    """Whether any process of the run has received a stop signal: every process calls
    it at the same point of the loop, so all of them stop at the same step. A process
    that received none records the first process's signal, and ends as it asks.

    Example:
        >>> agree(StopRequest())  # one process, no signal
        False
    """
    if jax.process_count() == 1:
        return bool(request)
    first = next((s for s in gather(request.signal or 0) if s), None)
    if first is not None and request.signal is None:
        request.signal = first
        print(
            f"jno: another process of this run received {signal.Signals(first).name}, "
            "stopping at the end of the current chunk of steps",
            file=sys.stderr,
            flush=True,
        )
    return first is not None


def raise_for(request: StopRequest, step: int, checkpoint: str | None) -> None:
    """Ends as the recorded signal asks, saying where training stopped; nothing
    without a signal.

    Raises:
        KeyboardInterrupt: after SIGINT.
        SystemExit: after SIGTERM, with status 143 (128 + 15).
    """
    if not request:
        return
    where = f"checkpoint of step {step} in {checkpoint}" if checkpoint else "no checkpoint_dir"
    message = f"jno: training stopped at step {step} ({where})"
    print(message, file=sys.stderr, flush=True)
    if request.signal == signal.SIGTERM:
        raise SystemExit(128 + signal.SIGTERM)
    raise KeyboardInterrupt(message)
