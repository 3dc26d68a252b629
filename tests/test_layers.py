"""The layers of ``jno`` and their import directions, read from the source (no imports run).

Every module under ``jno/`` is parsed with :mod:`ast`; every ``import`` statement in it,
at module level or inside a function, class or ``if TYPE_CHECKING`` block, is an edge
to the module it names (``from pkg import name`` names ``pkg.name`` when that is a
module, else ``pkg``). Two rules are checked:

- each layer imports only the layers below it (``ALLOWED``): ``jno.nnx`` (device-state
  blocks) and ``jno.optim`` -> ``jno.domain`` / ``jno.ops`` -> ``jno.train`` (the
  engine) -> ``jno.frontend`` (terms, ``jno.core``, ``jno.fn``) -> ``jno.problems`` ->
  ``jno.app`` (the ``jno`` command); the top-level ``jno`` re-exports all but the app;
- the graph of modules has no cycle at all, inside a layer included;

only the application writes to stdout, and no module reaches into another class's
private attributes: a class reads ``self._x`` only where it (or a base class in its own
module) defines ``_x``, and ``obj._x`` of another object is read only in the module that
defines ``_x``. Parts talk through their public interface.

Inside ``jno.nnx`` each concept has its own folder (``networks``, ``balancers``,
``schedules``); the folders never import each other, only the shared internals at the
root of ``jno.nnx`` (``state``, ``_checks``, ``_dtype``). A lazy import inside a function
that would close a cycle is allowed only where ``LAZY_IMPORTS`` names it, with its reason.

A package's ``__init__`` importing its own modules is an edge like any other; the
implicit import of a parent package when a submodule is imported is not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jno"

# Layer -> the layers its modules may import (its own layer included where allowed).
# ``jno`` is the top-level package: it re-exports the public names of every layer
# except the application.
ALLOWED: dict[str, set[str]] = {
    "nnx": {"nnx"},
    "optim": {"nnx", "optim"},
    "domain": {"nnx", "domain"},
    "resampling": {"nnx", "domain"},
    "ops": {"nnx", "ops"},
    "train": {"nnx", "optim", "domain", "resampling", "ops", "train"},
    "frontend": {"nnx", "optim", "domain", "resampling", "ops", "train", "frontend"},
    "problems": {
        "nnx",
        "optim",
        "domain",
        "resampling",
        "ops",
        "train",
        "frontend",
        "problems",
    },
    "app": {
        "nnx",
        "optim",
        "domain",
        "resampling",
        "ops",
        "train",
        "frontend",
        "problems",
        "app",
        "jno",
    },
    "jno": {
        "nnx",
        "optim",
        "domain",
        "resampling",
        "ops",
        "train",
        "frontend",
        "problems",
        "jno",
    },
}

# The concept folders of jno.nnx and the shared internals at its root that they may use.
NNX_CONCEPTS = ("networks", "balancers", "schedules")
NNX_SHARED = {"jno.nnx.state", "jno.nnx._checks", "jno.nnx._dtype"}

# (module, imported module) -> why the import sits inside a function. These edges are
# left out of the cycle check; each must be a function-level import.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("jno.nnx.schedules.schedule", "jno.nnx.schedules.adaptive"): (
        "LearningRateSchedule.dlrs / reduce_on_plateau build the loss-adaptive subclasses, "
        "whose module imports the base class"
    ),
    ("jno.domain.shape", "jno.domain.csg"): (
        "Shape's operators |, - and & build the combinations, whose module imports Shape"
    ),
}

# The only layer that may write to stdout (the ``jno`` command's output).
STDOUT_LAYERS = {"app"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


SOURCES = _sources()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in SOURCES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "jno"


def _is_package(module: str) -> bool:
    return SOURCES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, int, str]]:
    """``(imported jno module, line, statement)`` for every import in ``module``."""
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "jno" or alias.name.startswith("jno."):
                    target = alias.name
                    while target not in SOURCES:  # `import jno.x.Y` for a name Y
                        target = target.rsplit(".", 1)[0]
                    found.append((target, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source != "jno" and not source.startswith("jno."):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                target = sub if sub in SOURCES else source
                found.append((target, node.lineno, f"from {source} import {alias.name}"))
    return found


GRAPH = {
    m: sorted({t for t, _, _ in imports_of(m) if t != m and (m, t) not in LAZY_IMPORTS})
    for m in SOURCES
}


def _nnx_concept(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["jno", "nnx"] and len(parts) > 2 and parts[2] in NNX_CONCEPTS:
        return parts[2]
    return None


def test_every_module_is_in_a_layer():
    unknown = [m for m in SOURCES if _layer(m) not in ALLOWED]
    assert not unknown, (
        f"modules in no layer: {unknown}; put them in a layer's package or add their "
        "package to ALLOWED in tests/test_layers.py"
    )


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer):
    bad = [
        f"{module} (line {line}: {stmt}) imports layer {_layer(target)!r}"
        for module in SOURCES
        if _layer(module) == layer
        for target, line, stmt in imports_of(module)
        if _layer(target) not in ALLOWED[layer]
    ]
    allowed = ", ".join(sorted(ALLOWED[layer]))
    assert not bad, f"layer {layer!r} may import only {allowed}:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("concept", NNX_CONCEPTS)
def test_nnx_concepts_import_only_themselves_and_the_shared_internals(concept):
    bad = [
        f"{module} (line {line}: {stmt})"
        for module in SOURCES
        if _nnx_concept(module) == concept
        for target, line, stmt in imports_of(module)
        if _layer(target) == "nnx" and _nnx_concept(target) != concept and target not in NNX_SHARED
    ]
    assert not bad, (
        f"jno.nnx.{concept} may import only itself and {sorted(NNX_SHARED)}:\n  " + "\n  ".join(bad)
    )


def test_every_concept_folder_exists():
    for concept in NNX_CONCEPTS:
        assert f"jno.nnx.{concept}" in SOURCES, f"jno/nnx/{concept}/__init__.py is missing"
    flat = [m for m in SOURCES if m.startswith("jno.nnx.") and m.count(".") == 2]
    flat = [m for m in flat if m not in NNX_SHARED and _nnx_concept(m) is None]
    assert not flat, f"modules at the root of jno.nnx outside a concept folder: {flat}"


def _function_level_imports(module: str) -> set[str]:
    inner = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):
                    inner.add(sub.lineno)
    return {t for t, line, _ in imports_of(module) if line in inner}


@pytest.mark.parametrize("edge", sorted(LAZY_IMPORTS))
def test_allowed_lazy_imports_are_inside_functions(edge):
    module, target = edge
    found = {t for t, _, _ in imports_of(module)}
    assert target in found, f"{module} no longer imports {target}: drop it from LAZY_IMPORTS"
    assert target in _function_level_imports(module), (
        f"{module} imports {target} at module level, which LAZY_IMPORTS allows only "
        f"inside a function ({LAZY_IMPORTS[edge]})"
    )


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _describe(cycle: list[str]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        line, stmt = next((line, stmt) for t, line, stmt in imports_of(a) if t == b)
        steps.append(f"{a} (line {line}: {stmt})")
    return " -> ".join(steps) + f" -> {cycle[-1]}"


def test_no_import_cycle():
    cycle = _find_cycle(GRAPH)
    assert cycle is None, f"import cycle: {_describe(cycle)}"


def test_the_cycle_finder_finds_cycles():
    assert _find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_imports_are_read_at_every_depth():
    # jno.app.cli imports the schedules inside a function: the edge must be seen.
    assert "jno.nnx.schedules" in GRAPH["jno.app.cli"]
    assert "jno.nnx.schedules.adaptive" in {
        t for t, _, _ in imports_of("jno.nnx.schedules.schedule")
    }
    assert "jno.ops" in GRAPH["jno.problems.poisson"]  # `from jno import ops`


def _stdout_writes(module: str) -> list[str]:
    found = []
    for node in ast.walk(TREES[module]):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
            and not any(k.arg == "file" for k in node.keywords)
        ):
            found.append(f"{module} line {node.lineno}: print(...) without file=")
        if isinstance(node, ast.Attribute) and node.attr in ("stdout", "__stdout__"):
            found.append(f"{module} line {node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_application_writes_to_stdout():
    bad = [w for m in SOURCES if _layer(m) not in STDOUT_LAYERS for w in _stdout_writes(m)]
    assert not bad, (
        "only jno.app writes to stdout (progress and diagnostics go to stderr):\n  "
        + "\n  ".join(bad)
    )


# ----------------------------------------------------------- private attributes
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _class_defines(cls: ast.ClassDef) -> set[str]:
    """Names a class defines: in its body, or by assigning ``self.x`` / ``cls.x``."""
    names = set()
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
    return names


def private_reads(tree: ast.Module, module: str) -> list[str]:
    """Reads of private attributes that the reading class (``self._x``) or module
    (``obj._x``) does not define."""
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    defines = {name: _class_defines(c) for name, c in classes.items()}

    def own(cls: ast.ClassDef) -> set[str]:  # the class and its bases in this module
        out, todo, seen = set(), [cls], set()
        while todo:
            c = todo.pop()
            if c.name not in seen:
                seen.add(c.name)
                out |= defines[c.name]
                todo += [classes[b.id] for b in c.bases if getattr(b, "id", None) in classes]
        return out

    in_module = set().union(*defines.values())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {a.asname or a.name for a in node.names}
    found = []

    def visit(node: ast.AST, cls: ast.ClassDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child)
                continue
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Load)
                and _is_private(child.attr)
            ):
                owner = child.value
                selfish = (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                    isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super"
                )
                where = f"{module} line {child.lineno}: {ast.unparse(child)}"
                if selfish and (cls is None or child.attr not in own(cls)):
                    found.append(f"{where} (not defined by {getattr(cls, 'name', 'a class')})")
                elif (
                    not selfish
                    and child.attr not in in_module
                    and not (isinstance(owner, ast.Name) and owner.id in imported)
                ):
                    found.append(f"{where} (another class's private attribute)")
            visit(child, cls)

    visit(tree, None)
    return found


def test_no_module_reads_another_class_private_attributes():
    bad = [r for m in SOURCES for r in private_reads(TREES[m], m)]
    assert not bad, "private attributes read from outside their class:\n  " + "\n  ".join(bad)


def test_the_private_attribute_scan_finds_reads():
    source = """
class Part:
    def __init__(self):
        self._state = 0

class Mixin:
    def peek(self):
        return self._state          # defined by another class

class Owner(Part):
    def read(self, part):
        return part._state + self._state + self._helper()

    def _helper(self):
        return 1

def outside(owner):
    return owner._hidden            # no class here defines _hidden
"""
    found = private_reads(ast.parse(source), "m")
    assert [f.split(": ", 1)[1] for f in found] == [
        "self._state (not defined by Mixin)",
        "owner._hidden (another class's private attribute)",
    ]
