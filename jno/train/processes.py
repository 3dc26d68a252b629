"""The processes of one run: JAX's multi-controller runtime seen from a trainer.

Every process of a run (:func:`jax.distributed.initialize`) executes the same program
on its own devices; the arrays of the step are global, over the devices of every
process. What happens on the host is split:

* process 0 (:func:`is_primary`) alone writes event files, progress and figures;
* checkpoints are written and read by every process together (orbax coordinates them);
* a stop request (SIGINT, SIGTERM) seen by any process stops all of them at the same
  step (:func:`~jno.train.interrupts.agree`, over :func:`gather`);
* host arrays become global arrays through :func:`global_array`, which every process
  calls with the same values.

With one process every function here is the plain single-process behaviour.

Example:
    >>> is_primary(), any_process(False), any_process(True)
    (True, False, True)
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

__all__ = [
    "any_process",
    "gather",
    "global_array",
    "host_values",
    "initialize_processes",
    "is_primary",
    "sync",
]


#: Variables of a job with several processes: SLURM, Open MPI, a Kubernetes indexed job.
_CLUSTER_VARIABLES = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "JOB_COMPLETION_INDEX")


def initialize_processes(**kwargs: Any) -> None:
    """Joins the run's processes unless that is done: a no-op when the runtime is
    initialised already (under ``jno launch``), else :func:`jax.distributed.initialize`
    with ``kwargs``, which detects SLURM, Open MPI and Kubernetes jobs. Outside such a
    job, without ``kwargs``, the process runs alone.

    Example:
        >>> initialize_processes()  # alone: nothing to join
        >>> jax.process_count()
        1
    """
    if jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(**kwargs)
    except ValueError as err:
        # No cluster found and no coordinator given: a single process.
        if kwargs or "coordinator_address" not in str(err):
            raise
    except RuntimeError:
        # JAX has started already; alone, there is nothing to join.
        if kwargs or any(os.environ.get(v) for v in _CLUSTER_VARIABLES):
            raise


def is_primary() -> bool:
    """Whether this is process 0, the one that writes logs, progress and figures."""
    return jax.process_index() == 0


def gather(value: int) -> list[int]:
    """``value`` of every process, in process order (every process must call it, at the
    same point of the program)."""
    if jax.process_count() == 1:
        return [int(value)]
    from jax.experimental import multihost_utils

    values = multihost_utils.process_allgather(np.asarray(value, np.int32))
    return [int(v) for v in np.ravel(values)]


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any process of the run (every process must call it,
    at the same point of the program)."""
    return any(gather(int(bool(flag))))


def sync(name: str) -> None:
    """Waits until every process has reached the barrier ``name``."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def global_array(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """The global arrays of ``tree``'s leaves (the same host values on every process,
    or global arrays of another sharding) placed with ``sharding``: each process puts
    its own shards. With one process, ``device_put``.

    Example:
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
        >>> global_array({"w": np.ones(2)}, NamedSharding(mesh, P()))["w"].tolist()
        [1.0, 1.0]
    """
    if jax.process_count() == 1 or sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)
    return jax.tree.map(lambda leaf: _global_leaf(leaf, sharding), tree)


def host_values(tree: Any) -> Any:
    """``tree`` with every leaf readable on the host of this process: arrays split over
    other processes' devices are gathered whole (every process must call it, at the
    same point of the program); the other leaves are returned as they are.

    Example:
        >>> host_values({"w": jax.numpy.ones(2)})["w"].tolist()
        [1.0, 1.0]
    """
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(_host_leaf, tree)


def _host_leaf(leaf: Any) -> Any:
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable or leaf.is_fully_replicated:
        return leaf
    from jax.experimental import multihost_utils

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    return multihost_utils.process_allgather(leaf, tiled=True)


def _global_leaf(leaf: Any, sharding: jax.sharding.Sharding) -> jax.Array:
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        # Global already (another mesh's placement): moved between shardings on device.
        return jax.jit(lambda x: x, out_shardings=sharding)(leaf)
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _global_leaf(jax.random.key_data(leaf), sharding)
        impl = jax.random.key_impl(leaf)
        return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl), out_shardings=sharding)(
            data
        )
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
