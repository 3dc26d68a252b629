"""``Problem``: a :class:`~jno.train.trainer.Trainer` that knows its PDE and its solution.

A packaged benchmark fixes four things on top of a plain trainer: the domain, the
residuals of the PDE and of its boundary / initial conditions (:meth:`Problem.residuals`),
the exact or reference solution (:meth:`Problem.reference`) and a fixed evaluation grid
for :meth:`Problem.relative_l2`. :meth:`Problem.default` builds a ready trainer with the
usual network (an MLP with standardised inputs) and optimizer (Adam with exponential
decay); every :class:`~jno.train.trainer.Trainer` keyword (``balancer``, ``seed``,
``logdir``, ``checkpoint_dir``, ``log_every``, ``progress``, ...) passes through.

Example:
    >>> from jno.problems import Poisson2D
    >>> trainer = Poisson2D.default(seed=0, hidden=[16], progress=False)
    >>> sorted(trainer.points), trainer.points["interior"].resample
    (['boundary', 'interior'], True)
    >>> 0.5 < trainer.relative_l2() < 10.0   # untrained network
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jno.domain import PointSet, Shape
from jno.problems._evaluation import FieldEvaluation, apply
from jno.problems._residuals import Residual, embeds_periods, mean_square, real_parameter, values
from jno.problems._setup import ProblemSetupMixin, attention_components, attention_losses
from jno.problems.recipes import FirstOrderRecipe, QuasiNewtonRecipe
from jno.resampling import ResidualAdaptivePoints
from jno.train.network import Network, nn
from jno.train.trainer import Trainer

__all__ = ["Problem", "real_parameter", "values"]


class Problem(ProblemSetupMixin, Trainer):
    """Base class of the packaged PDE benchmarks.

    A subclass sets the class attributes and implements :meth:`residuals` and
    :meth:`reference`; :meth:`losses` is then the mean square of each residual.

    Class attributes:
        domain: the shape the PDE lives on (a :class:`~jno.domain.Box`, inputs ``(x, ...,
            t)``, or any :mod:`jno.domain` shape).
        point_sets: names of the point sets, each a sampler method of ``domain``
            (``"interior"``, ``"boundary"``, ``"initial"``).
        default_batch_size: points per set and step, one int or ``{set: n}``.
        grid_shape: points per axis of the evaluation grid of :meth:`relative_l2`
            (None: 101 on every axis).
        default_hidden: hidden widths of the MLP built by :meth:`default`.
        causal_term, causal_points: the loss weighed in time by ``causal=CausalWeights(...)``
            (a trainer keyword; time-dependent problems) and the point set it lives on.

    Args:
        net: the network (``jno.nn(module)``); the module maps ``(n, d)`` to ``(n, m)``,
            one output per field.
        batch_size: points per set and step: an int for every set or ``{set: n}`` for
            some of them (the others keep ``default_batch_size``). Not with ``points``.
        resample: draw new points every step (the default) or one fixed set.
        points: your own ``{set: PointSet or array}`` instead, with the names of
            ``point_sets``.
        adaptive_points: ``base -> sampler``: moves the points of the residual's set
            (``causal_points``, e.g. ``"interior"``) with the residual of ``causal_term``,
            e.g. ``lambda base: jno.resampling.RAD(base, every=500)``
            (:mod:`jno.resampling`); ``base`` is a fixed draw of that set.
        attention: ``{term: jno.nnx.RBA(n) or jno.nnx.VRBA(n)}``: per-point multipliers
            of those terms' residuals (:mod:`jno.nnx.balancers.attention`), components
            in slots ``attention_<term>``; the term needs fixed points of count ``n``.
        **trainer_kwargs: any :class:`~jno.train.trainer.Trainer` keyword.

    Raises:
        TypeError: ``net`` is not a single ``jno.nn`` network, or the class sets no
            ``domain``.
        ValueError: a batch size ``< 1``, an unknown set name, or ``points`` together
            with ``batch_size``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jno import ops
        >>> from jno.domain import Interval
        >>> from jno.problems import Problem
        >>> class Decay(Problem):  # u' = -u on [0, 1], u(0) = 1
        ...     domain = Interval(0.0, 1.0)
        ...     point_sets = ("interior",)
        ...     def reference(self, x):
        ...         return jnp.exp(-x[:, 0])
        ...     def residuals(self, u, batch):
        ...         x = batch["interior"]
        ...         u0 = u(jnp.zeros((1, 1))).reshape(1)
        ...         return {"ode": ops.partial(u, x, 0) + values(u, x), "ic": u0 - 1.0}
        >>> t = Decay.default(hidden=[8], batch_size=32, progress=False)
        >>> t.losses(t.reference, {"interior": jnp.ones((4, 1)) / 2})  # exact: zero losses
        {'ode': Array(0., dtype=float32), 'ic': Array(0., dtype=float32)}
    """

    domain: ClassVar[Shape]
    #: The names of the network's outputs: one field, ``u``, or a system's, e.g.
    #: ``("u", "v", "p")`` (``default()`` builds that many outputs, and ``residuals``
    #: then gets their :class:`~jno.ops.FieldSet`).
    fields: ClassVar[tuple[str, ...]] = ("u",)
    #: Fields defined up to a constant (a pressure): compared after removing their mean.
    zero_mean_fields: ClassVar[tuple[str, ...]] = ()
    point_sets: ClassVar[tuple[str, ...]] = ("interior", "boundary")
    #: ``{point set: boundary part name(s)}``: sets drawn on parts of the domain's
    #: boundary (``domain.boundary(n, parts=...)``); every other set is drawn by the
    #: domain's sampler of its name (``interior``, ``boundary``, ``initial``).
    boundary_parts: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}
    default_batch_size: ClassVar[int | Mapping[str, int]] = 128
    #: The loss that ``causal=CausalWeights(...)`` weighs in time, and its point set.
    causal_term: ClassVar[str] = "pde"
    causal_points: ClassVar[str] = "interior"
    grid_shape: ClassVar[tuple[int, ...] | None] = None
    default_hidden: ClassVar[tuple[int, ...]] = (50, 50, 50)
    #: ``{input axis: period}`` of a periodic problem: ``default()`` networks embed
    #: those axes exactly (:class:`~jno.nnx.networks.embeddings.PeriodicEmbedding`).
    periodic_inputs: ClassVar[Mapping[int, float] | None] = None
    #: Losses that a network periodic by construction in every axis of
    #: ``periodic_inputs`` (fixed frequencies) satisfies exactly: :meth:`losses` leaves
    #: them out for such a network, so they neither cost a pass nor get a weight.
    periodic_terms: ClassVar[tuple[str, ...]] = ()
    #: Packaged training recipes by name (:mod:`jno.problems.recipes`).
    recipes: ClassVar[Mapping[str, QuasiNewtonRecipe | FirstOrderRecipe]] = {
        "quasi-newton": QuasiNewtonRecipe(),
        "soap": FirstOrderRecipe(),
    }

    def __init__(
        self,
        net: Network,
        *,
        batch_size: int | Mapping[str, int] | None = None,
        resample: bool = True,
        points: Mapping[str, Any] | None = None,
        adaptive_points: Callable[[PointSet], ResidualAdaptivePoints] | None = None,
        attention: Mapping[str, Any] | None = None,
        **trainer_kwargs: Any,
    ):
        if not isinstance(getattr(type(self), "domain", None), Shape):
            raise TypeError(
                f"{type(self).__name__} has no domain: subclass Problem and set the class "
                "attribute domain = jno.domain.Box(...) (or any jno.domain shape)"
            )
        if not isinstance(net, Network):
            raise TypeError(
                f"net must be one network wrapped with jno.nn(module), got {type(net).__name__}"
            )
        if points is None:
            points = self.default_points(batch_size, resample)
        else:
            if batch_size is not None:
                raise ValueError(
                    f"pass batch_size or points, not both (got batch_size={batch_size!r})"
                )
            missing = [
                k for k in self.point_sets if isinstance(points, Mapping) and k not in points
            ]
            if missing:
                raise ValueError(
                    f"points must have the sets {list(self.point_sets)}, missing {missing}"
                )
        if adaptive_points is not None:
            points = self.adapt_points(dict(points), adaptive_points)
        self.attention_terms = attention_components(attention, trainer_kwargs, self.causal_term)
        unknowns = self.initial_unknowns()
        if unknowns is not None:  # an inverse problem: the coefficients train with the field
            net = [
                net,
                unknowns if isinstance(unknowns, Network) else nn(unknowns, name="unknowns"),
            ]
        super().__init__(net, points=points, **trainer_kwargs)
        self.evaluation = FieldEvaluation(
            self.domain,
            self.grid_shape,
            self.fields,
            self.zero_mean_fields,
            self.reference if self.has_reference() else None,
        )

    # ----------------------------------------------------------- the problem
    def initial_unknowns(self) -> nnx.Module | None:
        """The unknown coefficients of an inverse problem, as a module of ``nnx.Param`` s
        at their initial guess (None: a forward problem). They train as a second
        network; :meth:`residuals` then gets ``(u, unknowns)``, and a recipe trains
        both with one optimizer."""
        return None

    def residuals(self, u: Callable[[jax.Array], jax.Array], batch: Mapping[str, jax.Array]):
        """``{loss name: residual}`` of ``u`` on ``batch``; a subclass implements it.

        A residual is an ``(n,)`` array, or a tuple of them whose mean squares add up
        (e.g. ``u`` and ``u_t`` at the initial time). ``u`` is any function of points
        ``(n, d)`` returning ``(n,)`` or ``(n, 1)``: the network, or the exact solution.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.problems import Poisson2D
            >>> t = Poisson2D.default(hidden=[8], progress=False)
            >>> batch = {"interior": jnp.array([[0.5, 0.5]]), "boundary": jnp.zeros((2, 2))}
            >>> res = t.residuals(t.reference, batch)     # the exact solution solves it
            >>> bool(abs(res["pde"][0]) < 1e-4), res["bc"].tolist()
            (True, [0.0, 0.0])
        """
        raise NotImplementedError(f"{type(self).__name__} must implement residuals(u, batch)")

    def reference(self, x: Any) -> jax.Array:
        """The exact (or reference) solution at points ``x`` ``(n, d)``: shape ``(n,)``
        for one field, ``(n, m)`` for ``m`` (in the order of :attr:`fields`). A problem
        without one trains and logs its losses; it has no errors to report."""
        raise NotImplementedError(f"{type(self).__name__} must implement reference(x)")

    def parameters(self) -> dict[str, Any]:
        """The problem's parameters (logged with the run's configuration).

        Example:
            >>> from jno.problems import Burgers1D
            >>> Burgers1D.default(hidden=[8], nu=0.01, progress=False).parameters()
            {'nu': 0.01, 'nodes': 200}
        """
        return {}

    def losses(self, net: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The mean square of each residual of :meth:`residuals` (a tuple: summed).

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.problems import Poisson2D
            >>> t = Poisson2D.default(hidden=[8], progress=False)
            >>> zero = lambda x: jnp.zeros(x.shape[0])
            >>> batch = {"interior": jnp.full((1, 2), 0.5), "boundary": jnp.zeros((2, 2))}
            >>> {k: round(float(v), 3) for k, v in t.losses(zero, batch).items()}  # (2 pi^2)^2
            {'pde': 389.636, 'bc': 0.0}
        """
        residuals = self._trained_residuals(net, batch)
        losses = {name: mean_square(r) for name, r in residuals.items()}
        weights = self.point_weights(self.causal_points)
        if weights is not None:  # a RAR-D buffer: the mean over its live points
            losses[self.causal_term] = mean_square(residuals[self.causal_term], weights)
        if self.causal is not None:
            losses[self.causal_term] = self._causal_term_loss(residuals[self.causal_term], batch)
        losses.update(attention_losses(self, residuals, self.attention_terms))
        return losses

    def _trained_residuals(self, net: Any, batch: Mapping[str, jax.Array]) -> dict[str, Any]:
        """:meth:`residuals` less the terms the field network satisfies exactly: the
        ``periodic_terms`` of a periodic embedding, the ``satisfies`` of an output
        transform (:class:`~jno.nnx.Constrained`)."""
        residuals = self.residuals(net, batch)
        exact = set(getattr(self.nets[0].module, "satisfies", ()))
        unknown = sorted(exact - set(residuals))
        if unknown:
            raise ValueError(
                f"the network satisfies {unknown} exactly, but {type(self).__name__} has no "
                f"such terms; its terms are {list(residuals)}"
            )
        if self.periodic_terms and all(
            embeds_periods(n.module, self.periodic_inputs) for n in self.nets
        ):
            exact |= set(self.periodic_terms)
        return {k: r for k, r in residuals.items() if k not in exact}

    def _causal_term_loss(self, residual: Residual, batch: Mapping[str, jax.Array]) -> jax.Array:
        axis = self.domain.time_axis
        if axis is None or isinstance(residual, tuple):
            raise ValueError(
                f"causal weights need a time-dependent problem with one residual for "
                f"{self.causal_term!r}; {type(self).__name__} has none"
            )
        t = batch[self.causal_points][:, axis]
        return self.causal_loss(residual, t, self.domain.lo[axis], self.domain.hi[axis])

    def config(self) -> dict[str, Any]:
        """The trainer's configuration plus ``problem``: the parameters of the PDE.

        Example:
            >>> from jno.problems import Helmholtz2D
            >>> Helmholtz2D.default(hidden=[8], k=2, progress=False).config()["problem"]
            {'a1': 1.0, 'a2': 4.0, 'k': 2.0}
        """
        out = super().config()
        out["problem"] = self.parameters()
        return out

    # ------------------------------------------------------------ evaluation
    @classmethod
    def exact_conditions(cls, module: nnx.Module) -> nnx.Module:
        """``module`` with the problem's boundary or initial conditions imposed exactly
        (a :class:`~jno.nnx.Constrained` whose ``satisfies`` names the terms it makes
        redundant); ``default(exact=True)`` uses it.

        Raises:
            NotImplementedError: the problem defines none.
        """
        raise NotImplementedError(
            f"{cls.__name__} imposes no conditions exactly: override exact_conditions(module)"
        )

    def initial_condition(self, x: Any) -> jax.Array:
        """The fields at the initial time, at points ``x`` ``(n, d)`` (their time
        coordinate is not read): shape ``(n,)`` for one field, ``(n, m)`` for ``m``. What
        a recipe that starts a network from the initial state fits (``fit_output``);
        a problem in time defines it from its initial condition, never from measured
        data. A problem without one is trained from a plain start.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.problems import Burgers1D
            >>> Burgers1D.default(hidden=[8], progress=False).initial_condition(
            ...     jnp.array([[0.5, 0.3]])).round(6).tolist()
            [-1.0]
        """
        raise NotImplementedError(
            f"{type(self).__name__} defines no initial condition: override initial_condition(x)"
        )

    @classmethod
    def has_initial_condition(cls) -> bool:
        """Whether the problem defines :meth:`initial_condition`."""
        return cls.initial_condition is not Problem.initial_condition

    @classmethod
    def has_reference(cls) -> bool:
        """Whether the problem defines :meth:`reference` (a problem may have none)."""
        return cls.reference is not Problem.reference

    def evaluation_points(self) -> jax.Array:
        """The fixed evaluation grid ``domain.grid(grid_shape)``, shape ``(n, d)``.

        Example:
            >>> from jno.problems import KleinGordon1D
            >>> g = KleinGordon1D.default(hidden=[8], progress=False).evaluation_points()
            >>> g.shape, g[:2].tolist()
            ((10201, 2), [[0.0, 0.0], [0.0, 0.009999999776482582]])
        """
        return self.evaluation.points()

    def _shaped(self, values: Any) -> Any:
        # One field: (n,) as always; several: (n, m).
        return values[:, 0] if len(self.fields) == 1 else values

    def reference_values(self) -> np.ndarray:
        """:meth:`reference` on :meth:`evaluation_points`, as float64: ``(n,)`` for one
        field, ``(n, m)`` for ``m``.

        Example:
            >>> from jno.problems import Poisson2D
            >>> ref = Poisson2D.default(hidden=[8], progress=False).reference_values()
            >>> ref.dtype, round(float(ref.max()), 6)
            (dtype('float64'), 1.0)
        """
        return self._shaped(self.evaluation.reference_values())

    def predict(self, x: Any = None) -> jax.Array:
        """The network at points ``x`` (default: the evaluation grid): ``(n,)`` for one
        field, ``(n, m)`` for ``m``.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.problems import Poisson2D
            >>> t = Poisson2D.default(hidden=[8], progress=False)
            >>> t.predict(jnp.zeros((3, 2))).shape, t.predict().shape
            ((3,), (10201,))
        """
        x = self.evaluation.as_points(x)
        out = jnp.reshape(apply(self.nets[0].module, x), (x.shape[0], -1))
        return self._shaped(out)

    def field_errors(self, points: Any = None) -> dict[str, float]:
        """``{field: relative L2 error}`` on the grid, or on ``points`` ``(n, d)``; a field
        of ``zero_mean_fields`` is compared after removing its mean.

        Raises:
            ValueError: the problem has no reference, or it is zero on the points.
        """
        if not self.has_reference():
            raise ValueError(f"{type(self).__name__} has no reference solution to compare with")
        if points is None:
            reference = self.reference_values()
        else:
            reference = self.evaluation.reference_values(points)
        return self.evaluation.errors(self.predict(points), reference)

    def relative_l2(self, points: Any = None, *, field: str | None = None) -> Any:
        """``||u_net - u_ref||_2 / ||u_ref||_2`` on the grid, or on ``points`` ``(n, d)``.

        A float for a one-field problem or for ``field``; ``{field: error}`` for a
        problem with several fields (:meth:`field_errors`).

        Raises:
            ValueError: the problem has no reference, or it is zero on the points.

        Example:
            >>> import jax.numpy as jnp
            >>> from jno.problems import Poisson2D
            >>> t = Poisson2D.default(hidden=[8], progress=False)
            >>> e = t.relative_l2(jnp.array([[0.5, 0.5], [0.25, 0.5]]))
            >>> isinstance(e, float)
            True
        """
        errors = self.field_errors(points)
        if field is not None:
            if field not in errors:
                raise KeyError(f"no field {field!r}; the fields are {list(self.fields)}")
            return errors[field]
        return errors[self.fields[0]] if len(self.fields) == 1 else errors

    def evaluate(self, state: Any) -> dict[str, float]:
        """The relative L2 error of each field on the grid, ``error/<field>``, logged
        with the losses (none without a reference)."""
        if not self.has_reference():
            return {}
        graphdef = self.trained.split()[0][0]
        module = nnx.merge(graphdef, state.params[0], state.rest[0])
        x = self.evaluation.points()
        predicted = jnp.reshape(apply(module, x), (x.shape[0], -1))
        errors = self.evaluation.errors(predicted, self.reference_values())
        return {f"error/{k}": v for k, v in errors.items()}
