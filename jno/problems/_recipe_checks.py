"""The checks of :meth:`FirstOrderRecipe.contradictions
<jno.problems.recipes.FirstOrderRecipe.contradictions>`: a recipe's network, causal and
gradient-norm weights against a trainer built otherwise; each returns the settings the
trainer contradicts, with the reason."""

from __future__ import annotations

from typing import Any

from jno.nnx.balancers.causal import CausalWeights
from jno.nnx.balancers.gradient import GradNormBalancer
from jno.problems._recipe_networks import network_shape
from jno.problems._recipe_parts import core_network

__all__ = [
    "balancer_contradictions",
    "causal_contradictions",
    "has_initial_condition",
    "network_contradictions",
    "time_dependent",
]


def time_dependent(problem_or_trainer: Any) -> bool:
    domain = getattr(problem_or_trainer, "domain", None)
    return getattr(domain, "time_axis", None) is not None


def has_initial_condition(trainer: Any) -> bool:
    check = getattr(trainer, "has_initial_condition", None)
    return bool(check()) if callable(check) else False


def network_contradictions(recipe: Any, module: Any) -> list[str]:
    if recipe.network is None:
        return []
    shape = network_shape(core_network(module))
    if shape is None:
        return [f"network={recipe.network!r}: the trainer's network is a {type(module).__name__}"]
    if shape.network != recipe.network:
        return [f"network={recipe.network!r}: the trainer's network is {shape.network!r}"]
    out = []
    for name in ("width", "depth", "weight_factorization"):
        want, have = getattr(recipe, name), getattr(shape, name)
        if want != have:
            out.append(f"{name}={want!r}: the network has {name} {have!r}")
    # The recipe gives MLPs no Fourier features: their scale describes a PirateNet.
    if recipe.network == "pirate" and shape.fourier_scale != recipe.fourier_scale:
        out.append(
            f"fourier_scale={recipe.fourier_scale!r}: the network has {shape.fourier_scale!r}"
        )
    return out


def causal_contradictions(recipe: Any, trainer: Any) -> list[str]:
    chunks, epsilon = recipe.causal_chunks, recipe.causal_epsilon
    causal = getattr(trainer, "causal", None)
    if chunks is None:
        if epsilon is None:
            return []
        if not isinstance(causal, CausalWeights):
            return [f"causal_epsilon={epsilon}: the trainer has no causal weights"]
        if causal.epsilons != (epsilon,):
            return [f"causal_epsilon={epsilon}: its causal weights have {causal.epsilons}"]
        return []
    # A trainer without a domain cannot say whether it is in time: its weights decide.
    in_time = time_dependent(trainer) or getattr(trainer, "domain", None) is None
    if not (chunks > 0 and in_time):
        return [] if causal is None else [f"causal_chunks={chunks}: the trainer has causal weights"]
    if not isinstance(causal, CausalWeights):
        return [f"causal_chunks={chunks}: the trainer has no causal weights"]
    out = []
    if causal.num_chunks != chunks:
        out.append(f"causal_chunks={chunks}: its causal weights have {causal.num_chunks} chunks")
    eps = 1.0 if epsilon is None else epsilon
    if causal.epsilons != (eps,) or causal.delta != 1.0:
        out.append(
            f"causal_epsilon={epsilon}: its causal weights have epsilons {causal.epsilons} "
            f"and delta {causal.delta}"
        )
    return out


def balancer_contradictions(every: int | None, balancer: Any) -> list[str]:
    if every is None:
        return []
    if every == 0:
        return (
            []
            if balancer is None
            else [f"balance_every=0: the trainer has a {type(balancer).__name__}"]
        )
    if balancer is None:
        return [f"balance_every={every}: the trainer has no balancer"]
    if not isinstance(balancer, GradNormBalancer) or balancer.update_every != every:
        kind, was = type(balancer).__name__, getattr(balancer, "update_every", None)
        return [f"balance_every={every}: the trainer's balancer is a {kind} updated every {was}"]
    return []
