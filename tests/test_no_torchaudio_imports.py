"""torchaudio is not installed with ComfyUI any more, so the pack never imports it: no module in
audiotoken_core/, nodes/ or train/ may (at any depth: lazy imports count), and a benchmark may only inside a
function, as the reference it compares against."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("audiotoken_core", "nodes", "train")


def _torchaudio_imports(tree: ast.AST):
    """(line, text) of every import of torchaudio or of one of its submodules, and of importlib calls naming it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if not node.level else []
        elif isinstance(node, ast.Call) and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                for a in node.args):
            func = ast.unparse(node.func)
            if not func.endswith(("import_module", "__import__", "importorskip", "find_spec")):
                continue
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        else:
            continue
        for name in names:
            if name == "torchaudio" or name.startswith("torchaudio."):
                yield node, f"{name}"


def _files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_never_imports_torchaudio(package):
    files = _files(package)
    assert files, f"no Python files under {package}/"
    found = [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
             for path in files for node, name in _torchaudio_imports(ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, "torchaudio is not installed with ComfyUI; use audiotoken_core's own:\n" + "\n".join(found)


def test_benchmarks_import_torchaudio_only_inside_functions():
    bad = []
    for path in _files("benchmarks"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
        bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name} at module level"
                for node, name in _torchaudio_imports(tree) if id(node) not in inside]
    assert not bad, "\n".join(bad)


def test_the_check_sees_every_spelling(tmp_path):
    source = "\n".join([
        "import torchaudio",
        "import torchaudio.functional as AF",
        "from torchaudio.compliance import kaldi",
        "def f():\n    import torchaudio.transforms",
        "import importlib\nimportlib.import_module('torchaudio.functional')",
        "import torch, numpy",
        "from .torchaudio_free import x",
        "import torchaudiox",
    ])
    names = [name for _, name in _torchaudio_imports(ast.parse(source))]
    assert names == ["torchaudio", "torchaudio.functional", "torchaudio.compliance", "torchaudio.transforms",
                     "torchaudio.functional"]
