"""A user's own ``Problem`` class, named on the command line as ``path/to/file.py:Class``.

``jno train my_pde.py:MyProblem --recipe quasi-newton`` trains a class of the user's
file like a packaged problem. The file runs as a module of its own (it is the user's
code, named by the user); the class must subclass :class:`jno.problems.Problem`.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "decay.py").write_text(
    ...     "import jax.numpy as jnp\\n"
    ...     "from jno import ops\\n"
    ...     "from jno.domain import Interval\\n"
    ...     "from jno.problems import Problem\\n"
    ...     "class Decay(Problem):\\n"
    ...     "    domain = Interval(0.0, 1.0)\\n"
    ...     "    point_sets = ('interior',)\\n"
    ...     "    def residuals(self, u, batch):\\n"
    ...     "        x = batch['interior']\\n"
    ...     "        return {'ode': ops.partial(u, x, 0) + u(x)[:, 0]}\\n"
    ... )
    >>> spec = f"{folder}/decay.py:Decay"
    >>> is_problem_file(spec), load_problem(spec).__name__
    (True, 'Decay')
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from jno.problems import Problem

__all__ = ["is_problem_file", "load_problem", "problem_label"]


def is_problem_file(spec: str) -> bool:
    """Whether ``spec`` has the form ``path/to/file.py:Class``."""
    path, sep, name = spec.rpartition(":")
    return bool(sep) and path.endswith(".py") and name.isidentifier()


def problem_label(spec: str) -> str:
    """A name for run folders: the class name of a file spec (lower case), else ``spec``.

    Example:
        >>> problem_label("pdes/flow.py:Channel"), problem_label("burgers1d")
        ('channel', 'burgers1d')
    """
    return spec.rpartition(":")[2].lower() if is_problem_file(spec) else spec


def load_problem(spec: str) -> type[Problem]:
    """The class ``Class`` of ``path/to/file.py:Class``, the file run as a module.

    Raises:
        ValueError: the file does not exist, has no such class, or the class is not a
            :class:`~jno.problems.Problem` subclass.
    """
    if not is_problem_file(spec):
        raise ValueError(f"expected path/to/file.py:ProblemClass, got {spec!r}")
    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"problem file {path!r} does not exist")
    key = str(file.resolve())
    if key not in _MODULES:
        _MODULES[key] = _run_file(file)
    module = _MODULES[key]
    cls = getattr(module, name, None)
    if cls is None:
        found = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, Problem) and v.__module__ == module.__name__
        )
        raise ValueError(f"{path} has no class {name!r}; its Problem classes: {found}")
    if not (isinstance(cls, type) and issubclass(cls, Problem)):
        raise ValueError(f"{name} in {path} must subclass jno.problems.Problem, got {cls!r}")
    return cls


# Each file runs once per process, however often its classes are asked for.
_MODULES: dict[str, ModuleType] = {}


def _run_file(file: Path) -> ModuleType:
    module_name = f"jno_user_problem_{file.stem}"
    loader = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    loader.loader.exec_module(module)
    return module
