"""The fields of a network with several outputs: named views that every operator takes.

A network of a system (``u``, ``v``, ``p`` of a Navier-Stokes flow) maps ``(n, d)``
points to ``(n, m)`` outputs. :func:`fields` gives one :class:`Field` per output; a
field is called like a one-output network (``u(x)`` has shape ``(n,)``) and every
:mod:`jno.ops` operator takes it on the same fast path as the network itself: inside a
loss (:func:`~jno.ops.share_derivatives`, which the ``Trainer`` and ``jno.core`` apply),
one Taylor pass per (network, points) carries the derivatives of every field the loss
asks for. ``ops.laplacian(net, x, output=k)`` is the same as ``ops.laplacian(field_k, x)``.

A :class:`FieldSet` holds the fields of one network under their names: ``U.u``,
``U["p"]``, ``u, v, p = U``; called, it returns the whole ``(n, m)`` output, so
``ops.divergence(U, x, outputs=("u", "v"))`` is the divergence of the velocity.
``jno.nn(module, fields=("u", "v", "p"))`` hands terms and ``Trainer.losses`` such a
set in place of the module.

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jno import ops
    >>> from jno.nnx import MLP
    >>> net = MLP(2, [16], 3, rngs=nnx.Rngs(0))
    >>> u, v, p = fields(net, ("u", "v", "p"))
    >>> x = jnp.array([[0.1, 0.2], [0.3, 0.4]])
    >>> u(x).shape, bool(jnp.allclose(p(x), net(x)[:, 2]))
    ((2,), True)
    >>> bool(jnp.allclose(ops.laplacian(v, x), ops.laplacian(net, x, output=1)))
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jno.nnx._checks import check_int

__all__ = ["Field", "FieldSet", "fields"]


class Field:
    """Output ``index`` of ``net`` as a one-output network: ``field(x) = net(x)[:, index]``.

    Args:
        net: A network with several outputs (a :class:`~jno.nnx.JetModule`, ``jno.nn(...)``
            or any callable ``(n, d) -> (n, m)``).
        index: The output column.
        name: The field's name (in error messages and ``repr``).
    """

    def __init__(self, net: Any, index: int, name: str | None = None):
        if isinstance(net, Field):
            raise TypeError(f"a field has one output; take fields of its network, got {net!r}")
        if not callable(net):
            raise TypeError(f"net must be callable, got {net!r}")
        self.net = net
        self.index = check_int("index", index, minimum=0)
        self.name = name

    def __call__(self, x: jax.Array) -> jax.Array:
        out = jnp.asarray(self.net(x))
        if out.ndim != 2 or self.index >= out.shape[1]:
            raise ValueError(
                f"field {self!r} is output {self.index} of a network that returns shape "
                f"{tuple(out.shape)}"
            )
        return out[:, self.index]

    def __repr__(self) -> str:
        return f"Field({self.name!r}, index={self.index})" if self.name else f"Field({self.index})"


class FieldSet:
    """The named fields of one network; called, the whole ``(n, m)`` output.

    Args:
        net: The network.
        names: One name per output, in the order of the output columns.

    Example:
        >>> import jax.numpy as jnp
        >>> U = FieldSet(lambda x: jnp.concatenate([x, 2 * x], axis=1), ("a", "b"))
        >>> U.b(jnp.ones((1, 1))).tolist(), U["a"].index, [f.name for f in U]
        ([2.0], 0, ['a', 'b'])
    """

    def __init__(self, net: Any, names: Sequence[str]):
        names = tuple(names)
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ValueError(f"fields must be a non-empty sequence of identifiers, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"field names must differ, got {names!r}")
        self.net = net
        self.names = names
        self.fields = tuple(Field(net, i, name) for i, name in enumerate(names))

    @property
    def module(self) -> Any:
        """The network's module (what the operators differentiate)."""
        return getattr(self.net, "module", self.net)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.net(x)

    def __getitem__(self, key: str | int) -> Field:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no field {key!r}; the fields are {list(self.names)}")
            return self.fields[self.names.index(key)]
        return self.fields[key]

    def __getattr__(self, name: str) -> Field:
        # Only called for names that are not attributes: the field names.
        names = self.__dict__.get("names", ())
        if name in names:
            return self.fields[names.index(name)]
        raise AttributeError(f"no field or attribute {name!r}; the fields are {list(names)}")

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def index(self, key: str | int) -> int:
        """The output column of field ``key`` (a name or an index)."""
        return self[key].index

    def __repr__(self) -> str:
        return f"FieldSet({list(self.names)})"


def fields(net: Any, names: Sequence[str] | int) -> FieldSet:
    """The fields of ``net``: a :class:`FieldSet` with one :class:`Field` per name, or
    ``names`` unnamed fields when it is a number (named ``f0``, ``f1``, ...).

    Example:
        >>> import jax.numpy as jnp
        >>> u, v = fields(lambda x: jnp.concatenate([x, -x], axis=1), 2)
        >>> v(jnp.ones((1, 1))).tolist(), v.name
        ([-1.0], 'f1')
    """
    if isinstance(names, int) and not isinstance(names, bool):
        count = check_int("names", names, minimum=1)
        names = tuple(f"f{i}" for i in range(count))
    elif isinstance(names, str):
        raise TypeError(f"names must be a sequence of names or a count, got the string {names!r}")
    return FieldSet(net, names)
