"""The layers of the two packages, read from the code's own imports (plain ``ast``).

Rules (README, "Layout"; docs/layout.md):

* inside ``derive`` and inside ``numerics`` the sub-packages are layers, listed below from the
  top down; a module imports only from its own layer or from layers below it;
* ``derive`` never imports ``numerics``; ``numerics`` imports the model family as data
  (``derive.model``) and the sympy-free file checks (``derive.codegen.artefacts``) anywhere,
  and the generator itself only in the registry (``numerics.runtime.registry``) and in the
  command line (``wickode derive`` is the generator's own command);
* no import cycle between modules (imports inside functions count: they are cycles deferred);
* no private name (``_name``) imported from another module;
* modules of at most :data:`MAX_MODULE_LINES` lines, functions of at most
  :data:`MAX_FUNCTION_LINES` lines of code (see :func:`function_lines`).
* the tests mirror the packages: every module is imported by a test file of its mirrored folder
  ``tests/<dotted path of its package>/`` (not only through a facade or from another folder).

Every import is read, at module level or inside a function, under ``TYPE_CHECKING`` or not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("derive", "numerics", "bench")

#: Layers from the top down; a module belongs to the first prefix it starts with.
LAYERS = {
    "derive": (
        ("derive", "derive.__main__", "derive.generate"),
        # the document: the sections of docs/equations.md write the mathematics below them as Markdown
        ("derive.paper.documents", "derive.paper.sections"),
        ("derive.paper",),
        ("derive.codegen",),
        ("derive.quantities",),
        ("derive.algebra",),
        ("derive.gauss",),
        ("derive.model",),
    ),
    "numerics": (
        ("numerics.cli",),
        ("numerics.figures",),
        ("numerics",),
        ("numerics.sweeps",),
        ("numerics.analyses",),
        ("numerics.simulators",),
        ("numerics.noise",),
        ("numerics.ode",),
        ("numerics.results",),
        ("numerics.runtime",),
        ("numerics._generated",),
        ("numerics.kernels",),
        ("numerics.core",),
    ),
    "bench": (("bench",),),
}
#: Longest module, in lines.
MAX_MODULE_LINES = 500
#: Longest function, in lines of code after its docstring (:func:`function_lines`).
MAX_FUNCTION_LINES = 80
#: What any numerics module may import from derive (data and sympy-free file checks).
DERIVE_FOR_EVERYONE = ("derive.model", "derive.codegen.artefacts")
#: The numerics modules that may call the generator.
GENERATOR_CALLERS = ("numerics.runtime.registry", "numerics.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _target(name: str) -> str | None:
    """The project module ``name`` refers to (a module, or the module defining the name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path) -> list[tuple[str, str, int]]:
    """``(target module, imported name or "", line)`` for every project import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _target(alias.name)) is not None:
                    found.append((target, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node, path.name == "__init__.py")
            if source.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in MODULES:  # a sub-module imported by name
                    found.append((full, "", node.lineno))
                elif (target := _target(source)) is not None:
                    found.append((target, alias.name, node.lineno))
    return found


def layer(module: str) -> tuple[str, int]:
    """``(package, depth)``: depth 0 is the top layer of the package."""
    package = module.split(".")[0]
    best = None
    for depth, prefixes in enumerate(LAYERS[package]):
        for prefix in prefixes:
            if module == prefix or (module.startswith(prefix + ".") and prefix != package):
                if best is None or len(prefix) > best[1]:
                    best = (depth, len(prefix))
    if best is None:  # a module of the package facade's own folder (e.g. derive/generate.py)
        return package, 0
    return package, best[0]


def graph(modules: dict[str, Path] = MODULES) -> dict[str, list[tuple[str, str, int]]]:
    return {module: imports(module, path) for module, path in modules.items()}


GRAPH = graph()


def upward_imports(edges=GRAPH) -> list[str]:
    bad = []
    for module, targets in edges.items():
        package, depth = layer(module)
        for target, _, line in targets:
            if target == module:
                continue
            target_package, target_depth = layer(target)
            if target_package == package:
                if target_depth < depth:
                    bad.append(f"{module}:{line} imports {target} (a higher layer)")
            elif package == "derive":
                bad.append(f"{module}:{line} imports {target} (derive never imports {target_package})")
            elif package == "numerics" and target_package == "derive":
                allowed = target.startswith(DERIVE_FOR_EVERYONE) or module.startswith(GENERATOR_CALLERS)
                if not allowed:
                    bad.append(f"{module}:{line} imports {target} (the generator only through the registry)")
            elif package == "numerics" and target_package == "bench" and not module.startswith("numerics.cli"):
                bad.append(f"{module}:{line} imports {target} (benchmarks sit above the packages)")
    return bad


def cycles(edges=GRAPH) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    adjacency = defaultdict(set)
    for module, targets in edges.items():
        for target, _, _ in targets:
            if target != module and not _is_parent_package(target, module):
                adjacency[module].add(target)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in adjacency[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def _is_parent_package(target: str, module: str) -> bool:
    # importing a sub-module first runs its parent packages' __init__: that is not an import
    # of the parent's contents, so a package facade re-exporting its children is no cycle
    return module.startswith(target + ".")


def private_imports(edges=GRAPH) -> list[str]:
    return [
        f"{module}:{line} imports {name} from {target}"
        for module, targets in edges.items()
        for target, name, line in targets
        if name.startswith("_") and not name.startswith("__") and target != module
    ]


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from the line after its docstring (or its first statement) to its last line."""
    first = node.body[0]
    has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
        and isinstance(first.value.value, str)
    start = first.end_lineno + 1 if has_docstring else first.lineno
    return node.end_lineno - start + 1


def size_problems(module: str, text: str) -> list[str]:
    """Why ``module`` (its source ``text``) is too long: the module, or each function over the limit."""
    problems = []
    if (n := len(text.splitlines())) > MAX_MODULE_LINES:
        problems.append(f"{module} has {n} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and function_lines(node) > MAX_FUNCTION_LINES:
            problems.append(f"{module}:{node.lineno} {node.name} has {function_lines(node)} lines of code "
                            f"(at most {MAX_FUNCTION_LINES})")
    return problems


#: The modules the size limits apply to (the committed generated code is exempt: the generator writes it).
SIZED_MODULES = {module: path for module, path in MODULES.items() if not module.startswith("numerics._generated")}
def _test_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((ROOT / "tests").rglob("*.py"))}


def mirrored_folder(module: str) -> str:
    """The test folder of ``module`` as a dotted name: ``numerics.ode.overlaps`` -> ``tests.numerics.ode``."""
    return "tests." + module.rpartition(".")[0]


def needs_a_mirrored_test(module: str, path: Path) -> bool:
    """Every module but package facades, committed generated code and the benchmark scripts.

    The generated modules are checked against the derivation (``python -m derive --check``) and
    through the public API; the benchmark scripts by tests/bench/test_bench_smoke.py.
    """
    if path.name == "__init__.py" or module.startswith("numerics._generated."):
        return False
    return not module.startswith("bench.bench_")


def modules_without_a_mirrored_test(modules: dict[str, Path] = MODULES, test_edges=None) -> list[str]:
    """The modules no test file of their mirrored folder imports (directly: a facade does not count)."""
    if test_edges is None:
        test_edges = graph(_test_modules())
    imported_from = defaultdict(set)
    for test, targets in test_edges.items():
        imported_from[test.rpartition(".")[0]].update(target for target, _, _ in targets)
    return sorted(
        module for module, path in modules.items()
        if needs_a_mirrored_test(module, path) and module not in imported_from[mirrored_folder(module)]
    )


def test_no_import_from_a_higher_layer():
    assert upward_imports() == []


def test_no_import_cycle():
    assert cycles() == []


def test_no_private_name_imported_across_modules():
    assert private_imports() == []


def test_tests_import_no_private_name():
    assert private_imports(graph(_test_modules())) == []


def test_every_module_is_imported_by_a_test_of_its_mirrored_folder():
    assert modules_without_a_mirrored_test() == []


def test_a_module_tested_only_from_another_folder_or_through_a_facade_is_reported():
    modules = {
        "numerics.ode.a": ROOT / "numerics/ode/a.py",  # tested in its folder
        "numerics.ode.b": ROOT / "numerics/ode/b.py",  # tested from another folder only
        "numerics.ode.c": ROOT / "numerics/ode/c.py",  # reached through the package facade only
        "numerics.ode.d": ROOT / "numerics/ode/d.py",  # tested in a sub-folder of its folder only
        "derive.e": ROOT / "derive/e.py",  # a top-level module: tests/derive/
        "numerics.ode": ROOT / "numerics/ode/__init__.py",  # a facade needs no test of its own
        "numerics._generated.f": ROOT / "numerics/_generated/f.py",
        "bench.bench_g": ROOT / "bench/bench_g.py",
    }
    test_edges = {
        "tests.numerics.ode.test_a": [("numerics.ode.a", "f", 1), ("numerics", "integrate", 2)],
        "tests.numerics.sweeps.test_b": [("numerics.ode.b", "g", 1)],
        "tests.numerics.ode.test_c": [("numerics.ode", "c", 1)],
        "tests.numerics.ode.more.test_d": [("numerics.ode.d", "", 1)],
        "tests.derive.test_e": [("derive.e", "", 1)],
    }
    assert modules_without_a_mirrored_test(modules, test_edges) == ["numerics.ode.b", "numerics.ode.c",
                                                                    "numerics.ode.d"]


def test_modules_and_functions_are_short():
    assert [problem for module, path in SIZED_MODULES.items()
            for problem in size_problems(module, path.read_text())] == []


def _function(name: str, code_lines: int, docstring_lines: int = 0) -> str:
    docstring = ['    """'] + ["    text"] * max(docstring_lines - 2, 0) + ['    """'] if docstring_lines else []
    return "\n".join([f"def {name}():", *docstring, *["    x = 1"] * (code_lines - 1), "    return x"]) + "\n"


@pytest.mark.parametrize(
    "module, text, too_long",
    [
        ("numerics.ode.a", "x = 1\n" * MAX_MODULE_LINES, False),
        ("numerics.ode.a", "x = 1\n" * (MAX_MODULE_LINES + 1), True),
        ("derive.paper.a", _function("f", MAX_FUNCTION_LINES), False),
        ("derive.paper.a", _function("f", MAX_FUNCTION_LINES + 1), True),
        # the docstring does not count
        ("bench.a", _function("f", MAX_FUNCTION_LINES, docstring_lines=30), False),
        # a method counts as a function of its own
        ("numerics.cli.a", "class A:\n" + "".join("    " + line + "\n"
                                                  for line in _function("f", MAX_FUNCTION_LINES + 1).splitlines()),
         True),
    ],
)
def test_the_size_check_can_fail(module, text, too_long):
    assert bool(size_problems(module, text)) is too_long


def test_every_module_is_in_a_layer():
    for module in MODULES:
        package, _ = layer(module)
        assert package in LAYERS


@pytest.mark.parametrize(
    "files, expected",
    [
        # a cycle through a function-level import
        ({"numerics/ode/a.py": "from numerics.ode.b import f\n",
          "numerics/ode/b.py": "def f():\n    from numerics.ode.a import g\n"}, "cycle"),
        # the ODE reaching up into the simulators
        ({"numerics/ode/a.py": "from numerics.simulators.weights import simulate\n",
          "numerics/simulators/weights.py": ""}, "upward"),
        # derive reaching into numerics
        ({"derive/codegen/a.py": "from numerics.kernels.helpers import GRAM_MIN\n", "numerics/kernels/helpers.py": ""},
         "upward"),
        # a private name across modules
        ({"numerics/ode/a.py": "from numerics.core.b import _check\n", "numerics/core/b.py": ""}, "private"),
    ],
)
def test_the_checks_can_fail(files, expected):
    modules = {}
    for relative, text in files.items():
        path = ROOT / relative
        modules[_module_name(path)] = (path, text)
    saved = dict(MODULES)
    MODULES.update({name: path for name, (path, _) in modules.items()})
    try:
        edges = {}
        for name, (path, text) in modules.items():
            found = []
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        target = _target(node.module)
                        found.append((target, alias.name, node.lineno))
            edges[name] = found
        result = {
            "cycle": bool(cycles(edges)),
            "upward": bool(upward_imports(edges)),
            "private": bool(private_imports(edges)),
        }
    finally:
        MODULES.clear()
        MODULES.update(saved)
    assert result[expected]
