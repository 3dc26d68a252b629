"""TensorBoard event files (tensorboardX) and the console progress display."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from typing import Any

from jno.train.processes import is_primary

__all__ = ["ProgressReporter", "TensorBoardWriter"]


class TensorBoardWriter:
    """Writes logged values as TensorBoard scalars under their tags.

    A resumed run writes into the same directory; ``purge_step`` makes TensorBoard drop
    events at or after that step left by an interrupted process, so the curves join.

    Args:
        logdir: Run directory (``tensorboard --logdir <parent>`` shows it).
        purge_step: First step this writer will write (None for a new run).

    Example:
        >>> import tempfile
        >>> writer = TensorBoardWriter(tempfile.mkdtemp())
        >>> writer.write_scalars(100, {"loss/total": 0.5, "weight/pde": float("nan")})
        >>> writer.close()
    """

    def __init__(self, logdir: str, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.logdir = logdir
        self._writer = SummaryWriter(logdir, purge_step=purge_step, flush_secs=30)

    @classmethod
    def for_run(
        cls, logdir: str | None, step: int, config: Mapping[str, Any]
    ) -> TensorBoardWriter | None:
        """A writer for one ``fit`` that starts at ``step`` (None without ``logdir``),
        with the run's ``config``; closing it at the end is what puts every event on
        disk. Events at or after the first step it writes are purged, so a run resumed
        after a crash joins its curves instead of doubling them. Of a run's processes,
        process 0 alone writes (the others get None)."""
        if logdir is None or not is_primary():
            return None
        writer = cls(logdir, purge_step=step + 1 if step else None)
        writer.write_config(config, step=step)
        return writer

    def write_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One scalar per tag; NaN values (nothing finite in the interval) are left out."""
        for tag, value in values.items():
            if math.isfinite(value):
                self._writer.add_scalar(tag, value, global_step=step)

    def write_config(self, config: Mapping[str, Any], step: int = 0) -> None:
        """The run's hyper-parameters as a JSON text summary (TensorBoard's Text tab)."""
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        self._writer.add_text("hparams", "```\n" + text + "\n```", global_step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class ProgressReporter:
    """Step, loss, learning rate and steps/s while training.

    Everything goes to ``stream``, standard error by default (the tqdm convention:
    standard output stays the user's): a live ``rich`` progress bar when it is a
    terminal, one plain line per logged step otherwise, nothing when disabled.

    Args:
        enabled: True (always a live bar), False (nothing), or None (a live bar when
            ``stream`` is a terminal, plain lines otherwise).
        stream: Where the progress goes (default ``sys.stderr``).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = ProgressReporter(None, stream=out)
        >>> p.start(0, 200)
        >>> p.update(100, {"loss/total": 0.5, "lr": 1e-3})
        >>> p.close()
        >>> out.getvalue().startswith("step 100/200  loss 5.000e-01  lr 1.000e-03")
        True
    """

    def __init__(self, enabled: bool | None, stream: Any = None):
        self.stream = sys.stderr if stream is None else stream
        # Of a run's processes, process 0 alone reports.
        self.enabled = enabled is not False and is_primary()
        self.live = enabled is True or (enabled is None and _is_terminal(self.stream))
        self._bar = None
        self._task = None

    def start(self, step: int, target: int) -> None:
        self._start_step, self._target = step, target
        self._t0 = time.perf_counter()
        if not (self.enabled and self.live):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            transient=False,
            console=Console(file=self.stream),
        )
        self._task = self._bar.add_task("train", total=target, completed=step, info="")
        self._bar.start()

    def update(self, step: int, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = (step - self._start_step) / elapsed
        info = f"loss {values.get('loss/total', float('nan')):.3e}"
        lrs = [(k, v) for k, v in values.items() if k == "lr" or k.startswith("lr/")]
        info += "".join(f"  {k} {v:.3e}" for k, v in lrs)
        info += f"  {rate:.1f} steps/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)
        else:
            print(f"step {step}/{self._target}  {info}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
