"""No import circles inside the trainer or the core: each module can be read (and imported) on its own terms."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path, package: str) -> str:
    rel = path.relative_to(ROOT / package).with_suffix("")
    parts = [package, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, package: str) -> set[str]:
    """Every module of `package` that `path` imports, at any depth (lazy and TYPE_CHECKING imports count)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])]) if node.level else node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m and (m == package or m.startswith(package + "."))}


def _graph(package: str) -> dict[str, set[str]]:
    files = {_module_name(p, package): p for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in _imports(path, name, package) if m in files and m != name}
            for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ re-exporting its own submodules is not a circle.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", ["train", "audiotoken_core"])
def test_no_import_circle(package):
    cycle = _cycle(_graph(package))
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("package", ["audiotoken_core", "nodes", "train"])
def test_product_imports_no_test_support(package):
    # testkit/ is neither installed with the trainer nor packed into the registry zip: an import of it would
    # fail on every user's machine.
    found = {str(p.relative_to(ROOT)): sorted(_imports(p, _module_name(p, package), "testkit"))
             for p in (ROOT / package).rglob("*.py")}
    assert {f: m for f, m in found.items() if m} == {}


def test_benchmarks_import_no_test_code():
    # Test code (tests/ and the modules pytest puts on the path from tests/ and tests/host/) is not a benchmark's
    # to use: what both need lives in testkit/.
    test_modules = {"tests"} | {p.stem for folder in (ROOT / "tests", ROOT / "tests" / "host")
                                for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    found = {}
    for path in (ROOT / "benchmarks").rglob("*.py"):
        name = _module_name(path, "benchmarks")
        tops = {m.split(".")[0] for package in test_modules for m in _imports(path, name, package)}
        if tops:
            found[str(path.relative_to(ROOT))] = sorted(tops)
    assert found == {}
