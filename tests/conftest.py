"""Shared fixtures: small problems that compile fast; one XLA compilation cache per process."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Many tests compile the same small programs (each Trainer jits its own step). JAX's
# persistent compilation cache, in a directory of this process only (removed at exit),
# compiles each of them once: about a quarter of the suite's time.
_XLA_CACHE = tempfile.mkdtemp(prefix="jno-tests-xla-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def poisson1d_points():
    """Fixed interior and boundary points of [0, 1] (deterministic, no sampler)."""
    x = np.linspace(0.0, 1.0, 34, dtype=np.float32)[1:-1, None]
    return {"interior": jnp.asarray(x), "boundary": jnp.asarray([[0.0], [1.0]])}
