"""Residual-adaptive point sets: RAD and R3, redrawn inside the compiled step.

Where collocation points sit decides what a PINN can learn: a shock or a thin layer
needs points there. These point sets move their points towards large residuals while
training, on the device, with a static shape:

* :class:`RAD` (residual-based adaptive distribution; Wu et al. 2023, "A comprehensive
  study of non-adaptive and residual-based adaptive sampling for physics-informed
  neural networks", CMAME 403): every ``every`` steps a uniform pool of
  ``pool_factor * n`` candidates is drawn, the residual is evaluated there, and the
  ``n`` points are redrawn from the pool without replacement with probability
  proportional to ``|r|^k / mean(|r|^k) + c`` (defaults ``k = 1``, ``c = 1``).
* :class:`RARD` (residual-based adaptive refinement with distribution, Wu et al.
  2023): a buffer of fixed capacity that starts with the ``n`` points of ``base`` and,
  every ``every`` steps, gains ``add`` points drawn from a pool like RAD's (defaults
  ``k = 2``, ``c = 0``) until it is full; a live mask says which slots hold points and
  the loss of the set is the mean over the live ones
  (:meth:`~jno.train.trainer.Trainer.point_weights`).
* :class:`R3` (retain-resample-release; Daw et al. 2023, "Mitigating propagation
  failures in physics-informed neural networks using retain-resample-release (R3)
  sampling", ICML): every ``every`` steps the points whose residual exceeds the mean
  residual of the set are kept and the others replaced by uniform draws.

Pass one wherever a point set goes (``Trainer(points={"interior": RAD(...)})``, the
packaged problems, ``net.residual(fn, RAD(...))``). The trainer carries its state (the
points, the RNG key, the last statistics) through the compiled step as a stateful
component, redraws under ``jax.lax.cond`` on due steps from the residual of the term
that uses the set (``term=``, the :meth:`~jno.train.trainer.Trainer.residuals` entry;
``jno.core`` knows it), logs ``tracker/points_<set>_pool_residual`` (mean ``|r|`` over
the evaluated candidates) and ``tracker/points_<set>_replaced`` (fraction of points
replaced), and checkpoints it, so a resumed run redraws exactly as the uninterrupted
one.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jno.domain import Interval
    >>> rad = RAD(Interval(0.0, 1.0).interior(64), every=10, c=0.1, seed=0)
    >>> rad.redraw(lambda x: jnp.where(x[:, 0] < 0.25, 10.0, 0.1))  # a peak on [0, 0.25)
    >>> bool(jnp.mean(rad.points[...][:, 0] < 0.25) > 0.5)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jno.domain import PointSet
from jno.nnx._checks import check_int, check_real
from jno.nnx._dtype import default_float
from jno.nnx.state import PointState

__all__ = ["R3", "RAD", "RARD", "ResidualAdaptivePoints", "rad_probabilities"]

Residual = Callable[[jax.Array], Any]


def rad_probabilities(residual: jax.Array, k: float = 1.0, c: float = 1.0) -> jax.Array:
    """The RAD sampling probabilities ``(|r|^k / mean(|r|^k) + c)``, normalised to 1.

    A residual that is zero everywhere gives the uniform distribution; non-finite
    entries count as zero residual.

    Example:
        >>> rad_probabilities(jnp.array([0.0, 1.0, 3.0]), k=1.0, c=1.0).tolist()
        [0.1666666716337204, 0.2916666865348816, 0.5416666865348816]
    """
    a = jnp.abs(residual)
    a = jnp.where(jnp.isfinite(a), a, 0.0) ** k
    mean = jnp.mean(a)
    density = jnp.where(mean > 0, a / jnp.where(mean > 0, mean, 1.0), 0.0) + c
    return density / jnp.sum(density)


def _pointwise_magnitude(residual: Any, n: int) -> jax.Array:
    """``|r|`` per point of a residual ``(n,)``, ``(n, k)`` or a tuple of such parts."""
    parts = residual if isinstance(residual, tuple | list) else (residual,)
    total = jnp.zeros((n,), default_float())
    for part in parts:
        part = jnp.reshape(jnp.asarray(part), (n, -1)).astype(default_float())
        total = total + jnp.sum(part**2, axis=1)
    return jnp.sqrt(total)


class ResidualAdaptivePoints(nnx.Module):
    """Base of the residual-adaptive point sets: ``n`` points that move with the residual.

    A subclass implements :meth:`_redraw`. The state (``points``, ``key`` and the
    statistics of the last redraw) is :class:`~jno.nnx.state.PointState`.

    Args:
        base: the point set whose distribution candidates are drawn from (e.g.
            ``box.interior(2048)``); its ``n`` is the number of points.
        every: steps between redraws (the first redraw is at step ``every``).
        term: the loss term whose residual moves the points (``Trainer.residuals``
            entry); ``jno.core`` fills it in.
        seed: seed of the initial points and of the redraws.
    """

    resample = False  # the trainer keeps the points in the state, not a fresh draw

    def __init__(self, base: PointSet, *, every: int, term: str | None = None, seed: int = 0):
        if not isinstance(base, PointSet):
            raise TypeError(f"base must be a PointSet such as box.interior(n), got {base!r}")
        if base.resample:
            raise ValueError("base must be drawn once (resample=False): the sampler moves it")
        if term is not None and (not isinstance(term, str) or not term):
            raise ValueError(f"term must be a non-empty string or None, got {term!r}")
        self.base = base
        self.every = check_int("every", every, minimum=1)
        self.term = term
        self.n, self.dim = base.n, base.dim
        key = jax.random.key(check_int("seed", seed))
        draw, key = jax.random.split(key)
        self.points = PointState(jnp.asarray(base.sample(draw), default_float()))
        self.key = PointState(jax.random.key_data(key))
        self.pool_residual = PointState(jnp.asarray(jnp.nan, default_float()))
        self.replaced = PointState(jnp.zeros((), default_float()))

    def sample(self, key: Any = None) -> jax.Array:
        """The current points ``(n, dim)`` (``key`` is ignored: the state decides)."""
        return self.points[...]

    def _next_key(self) -> jax.Array:
        key, sub = jax.random.split(jax.random.wrap_key_data(self.key[...]))
        self.key[...] = jax.random.key_data(key)
        return sub

    def _draw(self, key: jax.Array, count: int) -> jax.Array:
        """``count * n`` uniform candidates from ``base`` (``count`` draws)."""
        keys = jax.random.split(key, count)
        draws = [jnp.asarray(self.base.sample(k), default_float()) for k in keys]
        return jnp.concatenate(draws, axis=0)

    def redraw(self, residual: Residual) -> None:
        """Moves the points from ``residual(points) -> (m,)`` residuals; updates state.

        Pure JAX on the state: call it inside a compiled step (the trainer does, on
        steps where ``step % every == 0``).
        """
        self._redraw(self._next_key(), residual)

    def _redraw(self, key: jax.Array, residual: Residual) -> None:
        raise NotImplementedError

    def _set_pool_rule(self, pool_factor: int, k: float, c: float) -> None:
        """The RAD distribution over a pool of ``pool_factor * n`` candidates."""
        self.pool_factor = check_int("pool_factor", pool_factor, minimum=1)
        self.k = check_real("k", k, minimum=0.0)
        self.c = check_real("c", c, minimum=0.0)
        if self.c == 0.0 and self.k == 0.0:
            raise ValueError("k and c cannot both be 0 (no distribution), got k=0, c=0")
        self.pool = self.pool_factor * self.n

    def _pick_from_pool(self, key: jax.Array, residual: Residual, count: int) -> jax.Array:
        """``count`` candidates of a fresh pool, drawn without replacement by
        :func:`rad_probabilities`; records the pool's mean ``|r|``."""
        draw_key, pick_key = jax.random.split(key)
        pool = self._draw(draw_key, self.pool_factor)
        r = _pointwise_magnitude(residual(pool), self.pool)
        p = rad_probabilities(r, self.k, self.c)
        self.pool_residual[...] = jnp.mean(r)
        return pool[jax.random.choice(pick_key, self.pool, (count,), replace=False, p=p)]

    def due(self, step: jax.Array) -> jax.Array:
        """Whether the points are redrawn before step ``step``."""
        return (step > 0) & (step % self.every == 0)

    def trackers(self) -> dict[str, jax.Array]:
        """Logged as ``tracker/points_<set>_<name>``: mean ``|r|`` over the evaluated
        candidates, and the fraction of points replaced, at the last redraw."""
        return {"pool_residual": self.pool_residual[...], "replaced": self.replaced[...]}


class RAD(ResidualAdaptivePoints):
    """Residual-based adaptive distribution (Wu et al. 2023).

    Every ``every`` steps: draw ``pool_factor * n`` uniform candidates from ``base``,
    evaluate the residual there, and redraw the ``n`` points from them without
    replacement with probability ``∝ |r|^k / mean(|r|^k) + c``.

    Args:
        base: the point set to adapt, e.g. ``box.interior(2048)`` (drawn once).
        every: steps between redraws.
        pool_factor: candidates per point.
        k: exponent of the residual (larger: more concentrated).
        c: uniform floor (larger: closer to uniform).
        term: the loss term whose residual drives the redraw.
        seed: seed of the initial points and the redraws.

    Example:
        >>> from jno.domain import Box
        >>> rad = RAD(Box([0.0, 0.0], [1.0, 1.0]).interior(128), every=100, term="pde")
        >>> rad.points[...].shape, rad.pool
        ((128, 2), 512)
    """

    def __init__(
        self,
        base: PointSet,
        *,
        every: int = 1000,
        pool_factor: int = 4,
        k: float = 1.0,
        c: float = 1.0,
        term: str | None = None,
        seed: int = 0,
    ):
        super().__init__(base, every=every, term=term, seed=seed)
        self._set_pool_rule(pool_factor, k, c)

    def _redraw(self, key: jax.Array, residual: Residual) -> None:
        self.points[...] = self._pick_from_pool(key, residual, self.n)
        self.replaced[...] = jnp.ones((), default_float())


class R3(ResidualAdaptivePoints):
    """Retain-resample-release sampling (Daw et al. 2023).

    Every ``every`` steps: evaluate the residual at the current points, keep those
    whose ``|r|`` exceeds the mean ``|r|`` of the set, and replace the others by
    uniform draws from ``base``.

    Args:
        base: the point set to adapt (drawn once).
        every: steps between redraws.
        term: the loss term whose residual drives the redraw.
        seed: seed of the initial points and the redraws.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.domain import Interval
        >>> r3 = R3(Interval(0.0, 1.0).interior(8), every=5)
        >>> before = r3.points[...]
        >>> r3.redraw(lambda x: x[:, 0])  # keeps the points right of the mean
        >>> kept = before[:, 0] > jnp.mean(before[:, 0])
        >>> bool(jnp.all(r3.points[...][kept] == before[kept]))
        True
    """

    def __init__(self, base: PointSet, *, every: int = 100, term: str | None = None, seed: int = 0):
        super().__init__(base, every=every, term=term, seed=seed)

    def _redraw(self, key: jax.Array, residual: Residual) -> None:
        current = self.points[...]
        r = _pointwise_magnitude(residual(current), self.n)
        keep = r > jnp.mean(r)
        fresh = self._draw(key, 1)
        self.points[...] = jnp.where(keep[:, None], current, fresh)
        self.pool_residual[...] = jnp.mean(r)
        self.replaced[...] = jnp.mean((~keep).astype(default_float()))


class RARD(ResidualAdaptivePoints):
    """Residual-based adaptive refinement with distribution (RAR-D; Wu et al. 2023).

    A buffer of ``capacity`` slots of which the first ``base.n`` hold the points of
    ``base``. Every ``every`` steps, ``pool_factor * base.n`` uniform candidates are
    drawn, and ``add`` of them, chosen without replacement with probability
    ``∝ |r|^k / mean(|r|^k) + c``, fill the next free slots, until the buffer is full.
    ``live`` marks the filled slots: the loss of the set is the mean over them (the
    packaged problems and ``jno.core`` do this; in a ``Trainer`` subclass use
    :meth:`~jno.train.trainer.Trainer.point_weights`). Dead slots hold copies of live
    points, so every slot is a valid point of the domain.

    Args:
        base: the initial points (drawn once).
        every: steps between refinements.
        add: points added per refinement.
        capacity: most points (``>= base.n``).
        pool_factor: candidates per initial point.
        k: exponent of the residual.
        c: uniform floor.
        term: the loss term whose residual drives the refinement.
        seed: seed of the initial points and the refinements.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno.domain import Interval
        >>> rard = RARD(Interval(0.0, 1.0).interior(4), every=10, add=3, capacity=8)
        >>> int(rard.live[...].sum())
        4
        >>> rard.redraw(lambda x: x[:, 0]); rard.redraw(lambda x: x[:, 0])
        >>> int(rard.live[...].sum()), rard.points[...].shape  # 4 + 3 + 1: full
        (8, (8, 1))
    """

    def __init__(
        self,
        base: PointSet,
        *,
        every: int = 1000,
        add: int = 10,
        capacity: int,
        pool_factor: int = 4,
        k: float = 2.0,
        c: float = 0.0,
        term: str | None = None,
        seed: int = 0,
    ):
        super().__init__(base, every=every, term=term, seed=seed)
        self.add = check_int("add", add, minimum=1)
        self.capacity = check_int("capacity", capacity, minimum=base.n)
        self._set_pool_rule(pool_factor, k, c)
        initial = self.points[...]
        slots = jnp.arange(self.capacity) % self.n
        self.points = PointState(initial[slots])
        self.live = PointState(jnp.arange(self.capacity) < self.n)
        self.count = PointState(jnp.asarray(self.n, jnp.int32))

    def weights(self) -> jax.Array:
        """``(capacity,)`` weights of the slots: 1 for a live point, 0 for an empty slot."""
        return self.live[...].astype(default_float())

    def _redraw(self, key: jax.Array, residual: Residual) -> None:
        new = self._pick_from_pool(key, residual, self.add)
        count = self.count[...]
        slots = count + jnp.arange(self.add)
        # Slots past the capacity are dropped: the buffer never grows beyond it.
        target = jnp.where(slots < self.capacity, slots, self.capacity)
        self.points[...] = self.points[...].at[target].set(new, mode="drop")
        self.live[...] = self.live[...].at[target].set(True, mode="drop")
        added = jnp.minimum(self.add, self.capacity - count)
        self.count[...] = count + added
        self.replaced[...] = (added / self.capacity).astype(default_float())
