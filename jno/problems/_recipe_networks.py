"""The shape of a trainer's network as a first-order recipe describes it: kind, width,
depth, weight factorization and Fourier scale, read from the module's public layers."""

from __future__ import annotations

from typing import Any, NamedTuple

from jno.nnx.networks.embeddings import FactorizedDense
from jno.nnx.networks.mlp import MLP
from jno.nnx.networks.modified_mlp import ModifiedMLP
from jno.nnx.networks.piratenet import PirateNet

__all__ = ["NetworkShape", "network_shape"]


class NetworkShape(NamedTuple):
    """What :class:`~jno.problems.recipes.FirstOrderRecipe` says of a network."""

    network: str
    width: int | None
    depth: int
    weight_factorization: tuple[float, float] | None
    fourier_scale: float | None


def _factorization(layers: list[Any]) -> tuple[float, float] | None | str:
    """``(mean, stddev)`` shared by every layer, None for plain layers, ``"mixed"``."""
    found = {
        (layer.mean, layer.stddev) if isinstance(layer, FactorizedDense) else None
        for layer in layers
    }
    return found.pop() if len(found) == 1 else "mixed"


def network_shape(module: Any) -> NetworkShape | None:
    """The shape of ``module``, or None when it is none of the recipe's networks.

    Example:
        >>> from flax import nnx
        >>> network_shape(MLP(2, [8, 8], 1, rngs=nnx.Rngs(0)))
        NetworkShape(network='mlp', width=8, depth=2, weight_factorization=None, fourier_scale=None)
    """
    fourier = getattr(module, "fourier", None)
    scale = None if fourier is None else float(fourier.scale)
    if isinstance(module, PirateNet):
        layers = [module.gate_u, module.gate_v, module.output]
        layers += [layer for block in module.block_layers for layer in block]
        width = int(module.output.in_features)
        return NetworkShape("pirate", width, 3 * module.blocks, _factorization(layers), scale)
    if isinstance(module, (ModifiedMLP, MLP)):
        hidden = [int(layer.out_features) for layer in module.layers[:-1]]
        width = hidden[0] if len(set(hidden)) == 1 else None
        kind = "modified" if isinstance(module, ModifiedMLP) else "mlp"
        layers = list(module.layers)
        if kind == "modified" and module.encoder_u is not None:
            layers += [module.encoder_u, module.encoder_v]
        return NetworkShape(kind, width, len(hidden), _factorization(layers), scale)
    return None
