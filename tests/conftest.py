"""Shared fixtures: small problems that compile fast; one XLA compilation cache per run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

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
_USER_FLAGS_ENV = "JNO_TESTS_USER_XLA_FLAGS"
_DEFAULT_XLA_ENV = "JNO_TESTS_DEFAULT_XLA"


def pytest_configure(config):
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
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``default_xla`` test runs again by its node id in a process of its own."""
    if pyfuncitem.get_closest_marker("default_xla") is None or os.environ.get(_DEFAULT_XLA_ENV):
        return None
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get(_USER_FLAGS_ENV, "")
    env[_DEFAULT_XLA_ENV] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    done = subprocess.run(
        command, cwd=pyfuncitem.config.rootpath, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(
            f"under the user's XLA flags ({env['XLA_FLAGS']!r}):\n{done.stdout[-6000:]}"
            f"{done.stderr[-2000:]}",
            pytrace=False,
        )
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
        name = item.path.name
        return _FIRST.index(name) if name in _FIRST else len(_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept


# Seconds spent in each test file (setup, call and teardown), summed on the main
# process from every worker's reports: the slowest files are listed at the end.
_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS:
        return
    slowest = sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:12]
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"slowest test files ({total:.0f} s in all tests)")
    for path, seconds in slowest:
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
