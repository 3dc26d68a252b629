"""Set-up of the packaged problems: batch sizes, default point sets, ``default()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jno.domain import PointSet
from jno.frontend.network import nn
from jno.nnx._checks import check_bool, check_choice, check_int
from jno.nnx.networks.mlp import MLP
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.nnx.schedules import LearningRateSchedule
from jno.resampling import ResidualAdaptivePoints

__all__ = ["ProblemSetupMixin"]

P = TypeVar("P")

_NETWORKS = {"mlp": MLP, "modified": ModifiedMLP}


class ProblemSetupMixin:
    """The class-level set-up of a :class:`~jno.problems.base.Problem`: points per set
    and the ready-made trainer of :meth:`default`."""

    @classmethod
    def batch_sizes(cls, batch_size: int | Mapping[str, int] | None = None) -> dict[str, int]:
        """Points per set: the defaults, overridden by ``batch_size``.

        Example:
            >>> from jno.problems import Burgers1D
            >>> Burgers1D.batch_sizes({"interior": 64})
            {'interior': 64, 'boundary': 128, 'initial': 128}
        """
        sizes = cls._expand(cls.default_batch_size, "default_batch_size")
        if batch_size is not None:
            sizes.update(cls._expand(batch_size, "batch_size", partial=True))
        return sizes

    @classmethod
    def _expand(cls, value: Any, name: str, partial: bool = False) -> dict[str, int]:
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in cls.point_sets]
            if unknown:
                raise ValueError(
                    f"{name} names unknown point sets {unknown}; the sets are "
                    f"{list(cls.point_sets)}"
                )
            if not partial and set(value) != set(cls.point_sets):
                raise ValueError(f"{name} must give every set {list(cls.point_sets)}")
            items = [(k, value[k]) for k in cls.point_sets if k in value]
        else:
            items = [(k, value) for k in cls.point_sets]
        out = {}
        for k, n in items:
            label = f"{name}[{k!r}]" if isinstance(value, Mapping) else name
            out[k] = check_int(label, n, minimum=1)
        return out

    @classmethod
    def default_points(cls, batch_size: Any = None, resample: bool = True) -> dict[str, Any]:
        """The problem's point sets from its ``domain``, ``batch_sizes(batch_size)`` points
        each, drawn anew every step when ``resample``.

        Example:
            >>> from jno.problems import Poisson2D
            >>> {k: ps.n for k, ps in Poisson2D.default_points({"interior": 64}).items()}
            {'interior': 64, 'boundary': 128}
        """
        resample = check_bool("resample", resample)
        sizes = cls.batch_sizes(batch_size)
        return {k: cls.point_set(k, sizes[k], resample) for k in cls.point_sets}

    @classmethod
    def adapt_points(cls, points: dict[str, Any], make: Callable[[Any], Any]) -> dict[str, Any]:
        """``points`` with the residual's set replaced by ``make(fixed draw of it)``, a
        residual-adaptive sampler that follows ``causal_term`` unless it names a term."""
        name = cls.causal_points
        base = points[name]
        if not isinstance(base, PointSet):
            raise TypeError(f"adaptive_points needs a PointSet for {name!r}, got {base!r}")
        if base.resample:
            base = cls.point_set(name, base.n, resample=False)
        sampler = make(base)
        if not isinstance(sampler, ResidualAdaptivePoints):
            raise TypeError(
                "adaptive_points must map a PointSet to a residual-adaptive set such as "
                f"lambda base: jno.resampling.RAD(base, every=500), got {sampler!r}"
            )
        if sampler.term is None:
            sampler.term = cls.causal_term
        points[name] = sampler
        return points

    @classmethod
    def point_set(cls, name: str, n: int, resample: bool = True) -> Any:
        """The point set ``name`` of ``n`` points: on the boundary parts that
        ``boundary_parts`` gives it, else from the domain's sampler of that name.

        Example:
            >>> from jno.problems import Burgers1D
            >>> Burgers1D.point_set("initial", 8).kind
            'initial'
        """
        parts = cls.boundary_parts.get(name)
        if parts is not None:
            return cls.domain.boundary(n, resample=resample, parts=parts)
        sampler = getattr(cls.domain, name, None)
        if not callable(sampler):
            raise ValueError(
                f"{cls.__name__} has the point set {name!r}, which its domain cannot draw: "
                "name it after a sampler of the domain (interior, boundary, initial) or give "
                "its boundary parts in boundary_parts"
            )
        return sampler(n, resample=resample)

    @classmethod
    def default(
        cls: type[P],
        *,
        seed: int = 0,
        hidden: Sequence[int] | None = None,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        lr: float = 1e-3,
        decay_rate: float = 0.9,
        decay_steps: int = 1000,
        network: str = "mlp",
        exact: bool = False,
        **kwargs: Any,
    ) -> P:
        """A ready trainer: MLP with inputs standardised to ``[-1, 1]``, Adam, decay.

        The network is ``MLP(d, hidden, 1, activation)`` (``network="modified"``:
        :class:`~jno.nnx.networks.modified_mlp.ModifiedMLP`) initialised from ``seed``, with
        ``input_lo``/``input_hi`` the bounds of ``domain`` and the exact periodic
        embedding of ``periodic_inputs`` (periodic problems). The optimizer is Adam scaled
        by ``lr * decay_rate ** (step / decay_steps)``. ``seed`` also seeds the point
        sampling.

        Args:
            seed: seed of the network initialisation and of the point sampling.
            hidden: hidden widths (``default_hidden`` when None).
            activation: activation of the hidden layers.
            lr: initial learning rate.
            decay_rate: factor per ``decay_steps`` steps.
            decay_steps: steps per factor ``decay_rate``.
            network: ``"mlp"`` or ``"modified"`` (the gated two-encoder network of Wang,
                Teng & Perdikaris 2021).
            exact: impose the problem's boundary or initial conditions exactly
                (:meth:`~jno.problems.Problem.exact_conditions`); the terms they satisfy
                leave the loss.
            **kwargs: problem parameters, ``batch_size``, ``resample`` and any
                :class:`~jno.train.trainer.Trainer` keyword (``balancer``, ``logdir``, ...).

        Example:
            >>> from jno.problems import Helmholtz2D
            >>> t = Helmholtz2D.default(seed=1, batch_size=64, progress=False)
            >>> t.points["interior"].n, t.nets[0].module.in_features
            (64, 2)
        """
        hidden = list(cls.default_hidden if hidden is None else hidden)
        lo, hi = cls.domain.bounds
        module = _NETWORKS[check_choice("network", network, tuple(_NETWORKS))](
            cls.domain.dim,
            hidden,
            len(cls.fields),
            activation,
            rngs=nnx.Rngs(seed),
            input_lo=lo,
            input_hi=hi,
            periodic=cls.periodic_inputs,
        )
        if check_bool("exact", exact):
            module = cls.exact_conditions(module)
        net = nn(module, fields=cls.fields if len(cls.fields) > 1 else None)
        schedule = LearningRateSchedule.exponential(lr, decay_rate, decay_steps)
        net.optimizer(optax.adam(1.0)).scale(schedule)
        trainer = cls(net, seed=seed, **kwargs)
        if len(trainer.nets) > 1:  # an inverse problem: one Adam over field and unknowns
            trainer.optimizer(optax.adam(1.0)).scale(schedule)
        return trainer


ATTENTION_SLOT = "attention_{}"


def attention_components(
    attention: Mapping[str, Any] | None, trainer_kwargs: dict[str, Any], causal_term: str
) -> tuple[str, ...]:
    """Puts ``attention={term: RBA(...)}`` into ``trainer_kwargs["components"]`` (slot
    ``attention_<term>``); returns the terms.

    Raises:
        TypeError: ``attention`` is not a mapping of residual-attention modules.
        ValueError: the causal term is given attention as well as causal weights.

    Example:
        >>> from jno.nnx import RBA
        >>> kwargs = {}
        >>> attention_components({"pde": RBA(8)}, kwargs, "pde"), list(kwargs["components"])
        (('pde',), ['attention_pde'])
    """
    from jno.nnx.balancers.attention import ResidualAttention

    if attention is None:
        return ()
    if not isinstance(attention, Mapping) or not all(
        isinstance(m, ResidualAttention) for m in attention.values()
    ):
        raise TypeError(
            f"attention must be {{term name: jno.nnx.RBA(...) or jno.nnx.VRBA(...)}}, "
            f"got {attention!r}"
        )
    if causal_term in attention and trainer_kwargs.get("causal") is not None:
        raise ValueError(
            f"term {causal_term!r} has causal weights; give it attention= or causal=, not both"
        )
    components = dict(trainer_kwargs.get("components") or {})
    for term, module in attention.items():
        components[ATTENTION_SLOT.format(term)] = module
    trainer_kwargs["components"] = components
    return tuple(attention)


def attention_losses(problem: Any, residuals: Mapping[str, Any], terms: Sequence[str]) -> dict:
    """The losses of the ``terms`` with residual attention, from the live modules.

    Raises:
        ValueError: a term with attention is not a loss of the problem.
    """
    unknown = [t for t in terms if t not in residuals]
    if unknown:
        raise ValueError(
            f"attention= names terms {unknown}, but the losses of {type(problem).__name__} "
            f"are {list(residuals)}"
        )
    return {t: problem.component(ATTENTION_SLOT.format(t)).loss(residuals[t]) for t in terms}
