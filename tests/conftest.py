"""Shared fixtures: small problems that compile fast."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture
def poisson1d_points():
    """Fixed interior and boundary points of [0, 1] (deterministic, no sampler)."""
    x = np.linspace(0.0, 1.0, 34, dtype=np.float32)[1:-1, None]
    return {"interior": jnp.asarray(x), "boundary": jnp.asarray([[0.0], [1.0]])}
