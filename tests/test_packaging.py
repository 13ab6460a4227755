"""What ships: the registry zip (`comfy node pack`), the wheel's package layout, and the pack metadata.

Offline and without comfy-cli: the zip's file choice is replayed with the library and rules comfy-cli 1.23
uses (`comfy_cli.file_utils.zip_files`), the wheel's layout with setuptools' own `build_py`.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from pathspec import PathSpec

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_DIRS = ("nodes", "audiotoken_core", "train", "example_workflows", "docs")
ROOT_FILES = ("__init__.py", "LICENSE", "README.md", "pyproject.toml", "requirements.txt")


def comfyignore_spec() -> PathSpec:
    # As comfy_cli.file_utils._load_comfyignore_spec: stripped lines, whole-line comments, "gitwildmatch"
    # (deprecated in pathspec 1.x, which warns; comfy-cli still uses it, so must we).
    lines = (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return PathSpec.from_lines("gitwildmatch", patterns)


def candidate_files() -> list[str]:
    """comfy-cli zips `git ls-files`; untracked, non-ignored files are added so a file not yet committed
    (a new icon, say) is judged as it will be once it is. Without git it walks the tree, as comfy-cli does."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            capture_output=True, text=True, check=True,
        ).stdout
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if files:
        return [f for f in files if (ROOT / f).is_file()]
    spec = comfyignore_spec()
    walked = []
    for dirpath, dirs, names in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT)
        dirs[:] = [d for d in dirs if d != ".git" and not spec.match_file((rel / d).as_posix())]
        walked += [(rel / n).as_posix() for n in names]
    return walked


@pytest.fixture(scope="module")
def shipped() -> set[str]:
    spec = comfyignore_spec()
    return {f for f in candidate_files() if not spec.match_file(f)}


@pytest.fixture(scope="module")
def left_out() -> set[str]:
    spec = comfyignore_spec()
    return {f for f in candidate_files() if spec.match_file(f)}


def test_pack_leaves_out_development_files(shipped):
    dev = [f for f in shipped if f.split("/")[0] in {"tests", "benchmarks"} or f.startswith(".")]
    assert not dev, f"development files would ship: {sorted(dev)[:10]}"
    for script in ("scripts/test.sh", "scripts/host_env.sh", "scripts/screenshot_workflow.py"):
        assert script not in shipped


def test_pack_keeps_everything_a_user_runs(shipped, left_out):
    dropped = [f for f in left_out if f.split("/")[0] in RUNTIME_DIRS and "__pycache__" not in f]
    assert not dropped, f"runtime files would be left out: {sorted(dropped)[:10]}"
    for d in RUNTIME_DIRS:
        assert any(f.startswith(d + "/") for f in shipped), d
    # The README offers scripts/generate.sh, which sources scripts/env.sh.
    for f in (*ROOT_FILES, "scripts/generate.sh", "scripts/env.sh", "docs/img/icon.png"):
        assert f in shipped, f


def test_ignore_rules_on_fixed_paths():
    # Independent of what is tracked today: the rules themselves, on paths that do or may exist.
    spec = comfyignore_spec()
    for path in ("tests/test_audio.py", "tests/fixtures/golden/beats_tiny_official.pt", "benchmarks/bench_fbank.py",
                 ".ci/run", ".gitignore", "nodes/__pycache__/encode.cpython-311.pyc"):
        assert spec.match_file(path), path
    for path in ("nodes/encode.py", "audiotoken_core/beats/model.py", "train/evaluate/run.py", "train/data/pairs.py",
                 "example_workflows/audiotoken_sound_to_image.json", "docs/training.md", "docs/img/icon.png"):
        assert not spec.match_file(path), path


def test_icon_exists_and_is_a_square_png():
    url = PYPROJECT["tool"]["comfy"]["Icon"]
    rel = re.sub(r"^https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/", "", url)
    data = (ROOT / rel).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height >= 200


def test_requires_comfyui_covers_the_versions_ci_tests():
    # CI's host matrix is one pinned requirements file per ComfyUI version.
    tested = sorted(p.stem for p in (ROOT / "tests" / "host" / "requirements").glob("*.txt"))
    assert tested, "no host requirement files"
    spec = SpecifierSet(PYPROJECT["tool"]["comfy"]["requires-comfyui"])
    assert all(v in spec for v in tested), (str(spec), tested)
    assert "1.0" not in spec, "an upper bound keeps untested releases out"


def test_requires_comfyui_is_spelled_as_comfy_cli_accepts():
    # comfy_cli.registry.config_parser.validate_version: a part it cannot read silently empties the field.
    part = re.compile(r"^(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?$")
    value = PYPROJECT["tool"]["comfy"]["requires-comfyui"]
    assert all(part.match(p.strip()) for p in value.split(",")), value


def test_trainer_is_mapped_away_from_the_name_train():
    st = PYPROJECT["tool"]["setuptools"]
    assert st["package-dir"] == {"audiotoken_train": "train"}
    packages = set(st["packages"])
    assert not any(p == "train" or p.startswith("train.") for p in packages)
    installed_as = {"audiotoken_core": "audiotoken_core", "train": "audiotoken_train"}
    on_disk = {
        ".".join((installed_as[top], *init.parent.relative_to(ROOT / top).parts))
        for top in installed_as for init in (ROOT / top).rglob("__init__.py")
    }
    assert packages == on_disk, f"pyproject packages {sorted(packages)} vs folders {sorted(on_disk)}"
    for target in PYPROJECT["project"]["scripts"].values():
        assert target.split(".")[0] in {"audiotoken_core", "audiotoken_train"}, target


def test_wheel_layout_from_the_pack(shipped, tmp_path):
    """Builds the wheel's lib tree (what bdist_wheel zips) from the files the pack ships: so the registry
    zip is installable too, and the installed top-level packages are exactly ours."""
    src = tmp_path / "src"
    for f in shipped:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(lib)],
        cwd=src, check=True, capture_output=True, timeout=120,
    )
    assert sorted(p.name for p in lib.iterdir()) == ["audiotoken_core", "audiotoken_train"]
    for module in ("cli.py", "__main__.py", "data/pairs.py", "evaluate/run.py"):
        assert (lib / "audiotoken_train" / module).is_file(), module
    # Data read at run time must be installed with the code.
    assert (lib / "audiotoken_core" / "data" / "audioset_labels.csv").is_file()
