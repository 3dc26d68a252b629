"""Shared fixtures: small problems that compile fast; one XLA compilation cache per run."""

from __future__ import annotations

import gc
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Many tests compile the same small programs (each Trainer jits its own step, and the
# resume tests rerun one training in several processes). JAX's persistent compilation
# cache, in a directory of this test run that every xdist worker and subprocess shares
# (through the environment) and that is removed at the end, compiles each one once.
_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


# The suite compiles thousands of small programs and runs each a few times: XLA's
# backend optimisations cost more compile time than they save. On CPU the fusion
# emitters (MLIR) take most of a compilation at -O0; the classic emitters produce
# programs that compute the same values in under half the compile time. They round a
# little differently (no contraction into fused multiply-adds), so a test whose claim
# is exact equality between two different programs, or a value stated to a precision
# that such rounding moves, is marked ``default_xla`` and runs in a fresh process
# under the user's own XLA flags: the compiler every user of the library runs.
_FAST_COMPILE = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_llvm_disable_expensive_passes=true",
    # One LLVM module per program: the default splits codegen across threads, which
    # only adds work when every core already runs a test.
    "--xla_cpu_parallel_codegen_split_count=1",
)
# Tracing and lowering allocate millions of short-lived Python objects. Under Python's
# default thresholds (700, 10, 10) the cyclic collector runs thousands of times in a
# worker, and every full collection walks the whole long-lived heap: the modules, JAX's
# caches and every trainer a module fixture keeps. Measured on two test files in one
# process, interleaved: 28.9 and 32.9 s with the defaults, 24.6 and 26.2 s with these
# thresholds and the heap of the collected tests frozen (peak memory 835 to 871 MB,
# against 844 MB).
_GC_THRESHOLDS = (50_000, 20, 20)
_USER_FLAGS_ENV = "JNO_TESTS_USER_XLA_FLAGS"
_DEFAULT_XLA_ENV = "JNO_TESTS_DEFAULT_XLA"


def pytest_configure(config):
    gc.set_threshold(*_GC_THRESHOLDS)
    config.addinivalue_line(
        "markers", "default_xla: runs in a fresh process under the user's own XLA flags"
    )
    if os.environ.get(_DEFAULT_XLA_ENV):  # a marked test's own process: flags as given
        pass
    elif not hasattr(config, "workerinput"):  # the main process (xdist workers inherit)
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ[_USER_FLAGS_ENV] = flags
        for flag in _FAST_COMPILE:
            if flag.split("=")[0] not in flags:  # the user's own setting wins
                flags = f"{flags} {flag}".strip()
        os.environ["XLA_FLAGS"] = flags
        config.jno_xla_cache = tempfile.mkdtemp(prefix="jno-tests-xla-")
        os.environ[_CACHE_ENV] = config.jno_xla_cache
        os.environ[_RESULTS_ENV] = str(pathlib.Path(config.jno_xla_cache) / "default-xla")
        os.mkdir(os.environ[_RESULTS_ENV])
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    # Every operation of a compiled program carries its Python source location (up to
    # 100 frames by default), for profilers and XLA's runtime errors. No check of the
    # suite reads them, and building them is about a tenth of each lowering and
    # compilation. Subprocesses inherit the setting through the environment.
    limit = os.environ.setdefault("JAX_TRACEBACK_IN_LOCATIONS_LIMIT", "0")
    full = os.environ.setdefault("JAX_INCLUDE_FULL_TRACEBACKS_IN_LOCATIONS", "false")
    jax.config.update("jax_traceback_in_locations_limit", int(limit))
    jax.config.update("jax_include_full_tracebacks_in_locations", full.lower() in ("1", "true"))
    if _CACHE_ENV in os.environ:  # the key of a cached program includes XLA_FLAGS
        jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    directory = getattr(config, "jno_xla_cache", None)
    if directory is not None:  # the main process: a background run cut short ends too
        pid = _background_pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


# The ``default_xla`` tests run together in one process of their own, started in the
# background as soon as the tests are collected (by the first xdist worker, or the one
# pytest process); a marked test then reports what that process found for it. One
# process instead of one per test saves each later one its start (Python, JAX, pytest,
# the test file), and the background run fills the cores while the workers wait on
# subprocesses of their own. The marked tests are collected last, so their results are
# usually in before a worker asks for them.
_RESULTS_ENV = "JNO_TESTS_DEFAULT_XLA_RESULTS"
_FINISHED = "finished"


def _marked(item) -> bool:
    return item.get_closest_marker("default_xla") is not None


def pytest_collection_finish(session):
    """Freeze the heap of the collected tests (:data:`_GC_THRESHOLDS`); start the
    background run of the collected ``default_xla`` tests."""
    gc.freeze()
    config = session.config
    if os.environ.get(_DEFAULT_XLA_ENV) or _RESULTS_ENV not in os.environ:
        return
    if config.option.collectonly:
        return
    if getattr(config, "workerinput", {}).get("workerid", "gw0") != "gw0":
        return
    nodeids = [item.nodeid for item in session.items if _marked(item)]
    if not nodeids:
        return
    results = pathlib.Path(os.environ[_RESULTS_ENV])
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get(_USER_FLAGS_ENV, "")
    env[_DEFAULT_XLA_ENV] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodeids]
    with open(results / "log.txt", "w") as log:
        process = subprocess.Popen(
            command, cwd=config.rootpath, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def note_exit():  # a crashed run still ends the wait of every marked test
        code = process.wait()
        _append(results, {_FINISHED: code})

    threading.Thread(target=note_exit, daemon=True).start()
    (results / "pid").write_text(str(process.pid))


def _background_pid() -> int | None:
    path = pathlib.Path(os.environ.get(_RESULTS_ENV, "/nonexistent")) / "pid"
    return int(path.read_text()) if path.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _append(results: pathlib.Path, record: dict) -> None:
    with open(results / "reports.jsonl", "a") as out:
        out.write(json.dumps(record) + "\n")


def pytest_runtest_logreport(report):
    """In the background run: record each report for the marked test that waits on it."""
    path = report.nodeid.split("::")[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration
    if os.environ.get(_DEFAULT_XLA_ENV) and _RESULTS_ENV in os.environ:
        record = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome}
        record["text"] = report.longreprtext if report.failed else ""
        _append(pathlib.Path(os.environ[_RESULTS_ENV]), record)


def _background_reports(nodeid: str, timeout: float = 1800.0) -> tuple[list[dict], int | None]:
    """The background run's reports for ``nodeid`` once its teardown is in, and the
    run's exit code if it has ended."""
    results = pathlib.Path(os.environ[_RESULTS_ENV]) / "reports.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        pid = _background_pid()
        ended = pid is not None and not _alive(pid)  # before reading: its reports are in
        code, reports = None, []
        lines = results.read_text().splitlines() if results.exists() else []
        for record in map(json.loads, lines):
            code = record.get(_FINISHED, code)
            if record.get("nodeid") == nodeid:
                reports.append(record)
        if any(r["when"] == "teardown" for r in reports) or code is not None:
            return reports, code
        if ended or time.monotonic() > deadline:  # ended without a word (a kill)
            return reports, code
        time.sleep(0.2)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``default_xla`` test reports its run in the background process."""
    if not _marked(pyfuncitem) or os.environ.get(_DEFAULT_XLA_ENV):
        return None
    if _RESULTS_ENV not in os.environ:  # set by pytest_configure in the main process
        pytest.fail(f"{_RESULTS_ENV} is not set: no background run to report", pytrace=False)
    reports, code = _background_reports(pyfuncitem.nodeid)
    failed = [r for r in reports if r["outcome"] != "passed"]
    if failed or not any(r["when"] == "call" for r in reports):
        flags = os.environ.get(_USER_FLAGS_ENV, "")
        if failed:
            text = "".join(r["text"] for r in failed)
        else:
            log = pathlib.Path(os.environ[_RESULTS_ENV]) / "log.txt"
            ended = "has not ended" if code is None else f"ended with exit code {code}"
            text = f"the run {ended} without running this test; its output:\n"
            text += log.read_text()[-6000:]
        pytest.fail(f"under the user's XLA flags ({flags!r}):\n{text}", pytrace=False)
    return True


@pytest.fixture
def poisson1d_points():
    """Fixed interior and boundary points of [0, 1] (deterministic, no sampler)."""
    x = np.linspace(0.0, 1.0, 34, dtype=np.float32)[1:-1, None]
    return {"interior": jnp.asarray(x), "boundary": jnp.asarray([[0.0], [1.0]])}


# The longest tests (subprocesses, whole trainings) go first, so that the two xdist
# workers do not end with one of them alone on a long test while the other idles.
_FIRST = (
    "test_processes.py",
    "test_mesh.py",
    "test_float64.py",
    "test_ensemble.py",
    "test_persistence.py",
    "test_cli.py",
    "test_first_order_recipe.py",
    "test_quasi_newton.py",
    "test_optim_bfgs.py",
    "test_resampling.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        if _marked(item):  # run in the background meanwhile (pytest_collection_finish)
            return len(_FIRST) + 1
        name = item.path.name
        return _FIRST.index(name) if name in _FIRST else len(_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept


# Seconds spent in each test file (setup, call and teardown), summed on the main
# process from every worker's reports: the slowest files are listed at the end.
_FILE_SECONDS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS:
        return
    slowest = sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:12]
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"slowest test files ({total:.0f} s in all tests)")
    for path, seconds in slowest:
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
