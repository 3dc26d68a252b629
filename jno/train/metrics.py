"""Per-step training metrics accumulated on the device with ``clu.metrics``.

Every step of the compiled loop merges one step's values into a
``clu.metrics.Collection``; the host fetches and resets it once per logging interval.
Losses and norms are averaged over the interval, weights, rates and trackers keep their
last value, and the number of skipped steps is summed. A step that was skipped (its
loss or gradient was not finite) contributes nothing but its skip. Every accumulator
is of the default float dtype (float32, float64 under ``jax_enable_x64``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from jno.nnx._dtype import default_float

__all__ = ["LastFinite", "StepMetrics", "Sum"]


@flax.struct.dataclass
class LastFinite(clu_metrics.Metric):
    """The last finite value among the steps whose mask was true (NaN if there was none).

    A step may report NaN on purpose for "not computed this step" (the per-term
    gradient norms of a balancer that updates every ``update_every`` steps)."""

    value: jnp.ndarray
    seen: jnp.ndarray

    @classmethod
    def empty(cls) -> LastFinite:
        return cls(value=jnp.zeros((), default_float()), seen=jnp.zeros((), bool))

    @classmethod
    def from_model_output(cls, values: jnp.ndarray, mask: jnp.ndarray, **_: Any) -> LastFinite:
        value = jnp.asarray(values, default_float()).reshape(())
        seen = jnp.asarray(mask, bool).reshape(()) & jnp.isfinite(value)
        return cls(value=jnp.where(seen, value, 0.0), seen=seen)

    def merge(self, other: LastFinite) -> LastFinite:
        return type(self)(
            value=jnp.where(other.seen, other.value, self.value), seen=self.seen | other.seen
        )

    def compute(self) -> jnp.ndarray:
        return jnp.where(self.seen, self.value, jnp.nan)


@flax.struct.dataclass
class Sum(clu_metrics.Metric):
    """The sum over the interval (used for the count of skipped steps)."""

    total: jnp.ndarray

    @classmethod
    def empty(cls) -> Sum:
        return cls(total=jnp.zeros((), default_float()))

    @classmethod
    def from_model_output(cls, values: jnp.ndarray, **_: Any) -> Sum:
        return cls(total=jnp.asarray(values, default_float()).reshape(()))

    def merge(self, other: Sum) -> Sum:
        return type(self)(total=self.total + other.total)

    def compute(self) -> jnp.ndarray:
        return self.total


@flax.struct.dataclass
class _MaskedAverage(clu_metrics.Average):
    # clu's Average starts from a float32 total, and its count sums to the default int
    # (int64 under jax_enable_x64): keep the total in the default float, the count int32.
    @classmethod
    def empty(cls) -> _MaskedAverage:
        return cls(total=jnp.zeros((), default_float()), count=jnp.zeros((), jnp.int32))

    @classmethod
    def from_model_output(cls, values: jnp.ndarray, mask: jnp.ndarray, **_: Any):
        out = super().from_model_output(
            jnp.asarray(values, default_float()).reshape((1,)), mask=jnp.asarray(mask).reshape((1,))
        )
        return cls(total=out.total, count=out.count.astype(jnp.int32))

    def compute(self) -> jnp.ndarray:
        return jnp.where(self.count > 0, self.total / jnp.maximum(self.count, 1), jnp.nan)


def _bind(metric_cls: type, field: str) -> type:
    """A metric class that reads its value from keyword ``field`` of the model output."""

    @flax.struct.dataclass
    class Bound(metric_cls):
        @classmethod
        def from_model_output(cls, **outputs: Any):
            return metric_cls.from_model_output.__func__(
                cls, outputs[field], mask=outputs["__mask__"]
            )

    return Bound


class StepMetrics:
    """Builds the ``clu.metrics.Collection`` for a fixed set of tags.

    Args:
        mean_tags: Tags averaged over the logging interval (losses, gradient norm).
        last_tags: Tags whose last value is kept (weights, rates, trackers).
        sum_tags: Tags summed over the interval (skipped steps).

    Example:
        >>> import jax.numpy as jnp
        >>> sm = StepMetrics(mean_tags=["loss/total"], last_tags=["lr"], sum_tags=[])
        >>> acc = sm.empty()
        >>> for v in (1.0, 3.0):
        ...     acc = acc.merge(sm.single({"loss/total": v, "lr": 2 * v}, jnp.array(True)))
        >>> sm.compute(acc)
        {'loss/total': 2.0, 'lr': 6.0}
    """

    def __init__(self, mean_tags: Sequence[str], last_tags: Sequence[str], sum_tags: Sequence[str]):
        self.tags: tuple[str, ...] = (*mean_tags, *last_tags, *sum_tags)
        if len(set(self.tags)) != len(self.tags):
            raise ValueError(f"metric tags must be unique, got {list(self.tags)}")
        kinds = (
            [_MaskedAverage] * len(mean_tags)
            + [LastFinite] * len(last_tags)
            + [Sum] * len(sum_tags)
        )
        # clu collections are dataclasses, so tags like "loss/pde" map to identifier fields.
        self._fields = {tag: f"m{i}" for i, tag in enumerate(self.tags)}
        self._empty: clu_metrics.Collection | None = None
        self.collection = clu_metrics.Collection.create(
            **{
                self._fields[tag]: _bind(kind, self._fields[tag])
                for tag, kind in zip(self.tags, kinds)
            }
        )

    def empty(self) -> clu_metrics.Collection:
        """An empty accumulator (immutable, so one is built and shared)."""
        if self._empty is None:
            self._empty = self.collection.empty()
        return self._empty

    def single(self, values: Mapping[str, Any], mask: Any) -> clu_metrics.Collection:
        """One step's values (``mask`` false: the step was skipped)."""
        outputs = {self._fields[tag]: values[tag] for tag in self.tags}
        return self.collection.single_from_model_output(**outputs, __mask__=mask)

    def _host_values(self, accumulated: clu_metrics.Collection) -> dict[str, float]:
        """The value of every tag of a host-side accumulator: a few scalar operations,
        done on the host rather than compiled once more for every set of tags."""
        computed = accumulated.compute()
        return {tag: float(computed[self._fields[tag]]) for tag in self.tags}

    def compute(self, accumulated: clu_metrics.Collection) -> dict[str, float]:
        """Host-side values of an accumulator (one device transfer)."""
        return self._host_values(jax.device_get(accumulated))

    def compute_members(self, accumulated: clu_metrics.Collection) -> list[dict[str, float]]:
        """:meth:`compute` of accumulators stacked on a leading member axis (an
        ensemble's): one dict per member, from one transfer."""
        host = jax.device_get(accumulated)
        members = len(jax.tree.leaves(host)[0])
        return [
            self._host_values(jax.tree.map(lambda leaf, k=k: leaf[k], host)) for k in range(members)
        ]
