"""``jno launch -n N script.py ...``: a script over ``N`` processes on this machine.

The launcher starts ``N`` copies of the script, each a process of one JAX
multi-controller run (:func:`jax.distributed.initialize`) with the coordinator on
``localhost`` and the CPU collectives of gloo, so a ``Trainer``, ``Crux`` or
``Ensemble`` script runs over several processes as it would over several hosts. Each
child initialises the runtime before the script starts; a script that calls
:func:`jno.train.initialize_processes` (or nothing) runs unchanged under the launcher,
on a cluster (SLURM, Kubernetes, Open MPI: detected by JAX) and alone.

The launcher forwards SIGINT and SIGTERM to every child; when a child fails, the others
are stopped (a process left waiting on a collective would wait forever). Its exit
status is the first non-zero status of a child, else 0.

The same command without the installed entry point: ``python -m jno.app.launch -n 2
script.py``.

Example:
    >>> build_parser().parse_args(["-n", "2", "fit.py", "--steps", "10"]).args
    ['--steps', '10']
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["build_parser", "launch", "main"]

#: Environment of a child: the coordinator's address, the number of processes and its id.
COORDINATOR, NUM_PROCESSES, PROCESS_ID = (
    "JNO_COORDINATOR_ADDRESS",
    "JNO_NUM_PROCESSES",
    "JNO_PROCESS_ID",
)


def free_port() -> int:
    """A TCP port on localhost that no process listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def child_environment(
    process_id: int, processes: int, port: int, cpu_devices: int | None
) -> dict[str, str]:
    """The environment of child ``process_id``: this one's, plus the coordinates of the
    run, the gloo CPU collectives and, when ``cpu_devices`` is set, that many CPU
    devices in the child."""
    env = dict(os.environ)
    env[COORDINATOR] = f"localhost:{port}"
    env[NUM_PROCESSES] = str(processes)
    env[PROCESS_ID] = str(process_id)
    env.setdefault("JAX_CPU_COLLECTIVES_IMPLEMENTATION", "gloo")
    if cpu_devices is not None:
        flags = [
            f
            for f in env.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")
        ]
        flags.append(f"--xla_force_host_platform_device_count={cpu_devices}")
        env["XLA_FLAGS"] = " ".join(flags)
    return env


def launch(
    argv: Sequence[str],
    processes: int,
    *,
    port: int | None = None,
    cpu_devices: int | None = None,
    grace: float = 10.0,
) -> int:
    """Runs ``python argv...`` as ``processes`` processes of one run; returns the exit
    status (the first non-zero one of a child, else 0).

    Args:
        argv: The script and its arguments.
        processes: How many processes.
        port: The coordinator's port on localhost (default: a free one).
        cpu_devices: CPU devices per process (None: JAX's default).
        grace: Seconds the other children get to end after one failed, before they
            are killed.

    Raises:
        ValueError: ``processes`` below 1, ``cpu_devices`` below 1, or no script.
    """
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise ValueError(f"processes must be a positive int, got {processes!r}")
    if cpu_devices is not None and (not isinstance(cpu_devices, int) or cpu_devices < 1):
        raise ValueError(f"cpu_devices must be a positive int or None, got {cpu_devices!r}")
    if not argv:
        raise ValueError("argv must name the script to run, got an empty list")
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "jno.app.launch", "--child", *argv]
    children = [
        subprocess.Popen(command, env=child_environment(i, processes, port, cpu_devices))
        for i in range(processes)
    ]

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _wait(children, grace)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _wait(children: list[subprocess.Popen], grace: float) -> int:
    status, failed_at = 0, None
    while any(c.poll() is None for c in children):
        codes = [c.returncode for c in children if c.returncode]
        if codes and failed_at is None:
            status, failed_at = codes[0], time.monotonic()
            for child in children:  # the others may wait on a collective forever
                if child.poll() is None:
                    child.terminate()
        if failed_at is not None and time.monotonic() - failed_at > grace:
            for child in children:
                if child.poll() is None:
                    child.kill()
        time.sleep(0.05)
    return status or next((c.returncode for c in children if c.returncode), 0)


def run_child(argv: Sequence[str]) -> None:
    """A child's side: initialise the runtime from the launcher's environment, then run
    the script as ``__main__`` with ``argv`` as its ``sys.argv``."""
    import jax

    jax.distributed.initialize(
        os.environ[COORDINATOR],
        num_processes=int(os.environ[NUM_PROCESSES]),
        process_id=int(os.environ[PROCESS_ID]),
    )
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The launcher's arguments (on ``parser`` when given: the ``jno launch`` command)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m jno.app.launch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-n", "--processes", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--port", type=int, help="the coordinator's port (default: a free one)")
    parser.add_argument(
        "--cpu-devices", type=int, help="CPU devices per process (default: JAX's, one)"
    )
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser


def run_parsed(args: argparse.Namespace) -> int:
    """Runs the parsed ``jno launch`` command."""
    return launch(
        [args.script, *args.args], args.processes, port=args.port, cpu_devices=args.cpu_devices
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jno.app.launch``: see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        run_child(argv[1:])
        return 0
    return run_parsed(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
