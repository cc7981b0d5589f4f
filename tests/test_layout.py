"""The shape of the package (docs/architecture.md): data flows one way, packages have one job.

Read from the source with ``ast`` (nothing is imported): every ``import`` and ``from ... import``
of a ``pipeline`` module, at any depth (imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"

# Lowest first: a module may import from its own layer and the layers before it, never after.
LAYERS = (
    ("pipeline.errors", "pipeline.system"),
    ("pipeline.devices",),
    ("pipeline.data",),
    ("pipeline.layers",),
    ("pipeline.models",),
    ("pipeline.runs",),
    ("pipeline.cache",),
    ("pipeline.plots",),
    ("pipeline.evaluation",),
    ("pipeline.visualize",),
    ("pipeline.report",),
    ("pipeline.training",),
    ("pipeline.workflows",),
    ("pipeline.commands",),
    ("pipeline.cli", "pipeline.__main__", "pipeline"),  # the command line and the Python API
)
MAX_LOOSE_MODULES = 5
MAX_LINES = 400
MAX_CLI_LINES = 120


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``pipeline`` modules ``path`` imports (a package when a name is not a submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names
                          if f"{node.module}.{alias.name}" in modules]
            names += submodules
            if len(submodules) < len(node.names):
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        for name in names:
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def layer(module: str) -> int:
    best = None
    for index, members in enumerate(LAYERS):
        for member in members:
            if (module == member or module.startswith(member + ".")) and (
                    best is None or len(member) > len(best[1])):
                best = (index, member)
    assert best is not None, f"{module} belongs to no layer of tests/test_layout.py"
    return best[0]


def test_every_module_belongs_to_a_layer():
    for module in module_files():
        layer(module)


def test_no_upward_imports():
    upward = sorted(f"{module} -> {target}" for module, targets in graph().items()
                    for target in targets if layer(target) > layer(module))
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_import_circles():
    edges = graph()
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_few_loose_modules_at_the_top():
    loose = sorted(path.name for path in PACKAGE.glob("*.py")
                   if path.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, loose


def test_modules_a_reader_can_hold_in_mind():
    long = {str(path.relative_to(ROOT)): lines for path in PACKAGE.rglob("*.py")
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_cli_holds_only_the_main_group_and_registration():
    for path in (ROOT / "cli.py", PACKAGE / "cli.py"):
        if path.exists():
            assert len(path.read_text(encoding="utf-8").splitlines()) < MAX_CLI_LINES, path


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The rules above can fail: two modules importing each other, and data importing a
    workflow, are both found."""
    package = tmp_path / "pipeline"
    (package / "data").mkdir(parents=True)
    (package / "workflows").mkdir()
    for folder in (package, package / "data", package / "workflows"):
        (folder / "__init__.py").write_text("")
    (package / "data" / "a.py").write_text("from pipeline.workflows.b import x\n")
    (package / "workflows" / "b.py").write_text("def f():\n    import pipeline.data.a\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "PACKAGE", package)
    edges = graph()
    assert edges["pipeline.data.a"] == {"pipeline.workflows.b"}
    assert edges["pipeline.workflows.b"] == {"pipeline.data.a"}
    assert layer("pipeline.workflows.b") > layer("pipeline.data.a")
