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
RUNTIME_DIRS = ("nodes", "audiotoken_core", "train", "example_workflows", "docs", "web")
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
    for script in ("scripts/test.sh", "scripts/host_env.sh", "scripts/screenshot_workflow.py",
                   "scripts/template_thumbnails.py", "scripts/frontend_shots.py"):
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


def test_requires_comfyui_excludes_no_released_version():
    # The Manager hides a pack from hosts outside this range; nodes/host_compat.py guards a changed host at
    # run time, so a release is left out only when it is known to break the pack. Releases whose API was read
    # (docs/design.md, host compatibility), newest last.
    released = ["0.3.64", "0.33.0", "0.34.0", "0.35.1", "0.36.0", "0.37.0", "0.38.1", "0.39.0"]
    spec = SpecifierSet(PYPROJECT["tool"]["comfy"]["requires-comfyui"])
    assert [v for v in released if v not in spec] == [], str(spec)
    assert "0.3.63" not in spec, "0.3.63 and older lack the V3 node API the pack uses"


def test_registry_models_are_the_official_sources():
    # One home for the official files is audiotoken_core/sources.py; the registry's list must say the same.
    from audiotoken_core import sources

    listed = {(m["location"], m["model_url"]) for m in PYPROJECT["tool"]["comfy"]["Models"]}
    official = {(f"models/{s.folder}/{s.name}", s.url) for s in sources.SOURCES if s.url and s.folder != "diffusers"}
    assert listed == official


def test_every_official_address_is_pinned():
    """A GitHub address names a commit; the one exception is the Space's BEATs, and sources.py says why."""
    import re

    from audiotoken_core import sources

    pinned = re.compile(r"/(raw|resolve)/[0-9a-f]{40}/")
    unpinned = [s for s in sources.SOURCES if s.url and not pinned.search(s.url)]
    assert [s.kind for s in unpinned] == ["audio_encoder"] and "huggingface.co/spaces/" in unpinned[0].url
    assert all(pinned.search(s.url) for s in sources.SOURCES if s.url and "github.com" in s.url)


def test_comfy_node_validate(tmp_path):
    """comfy-cli's own pre-publish check (the registry action runs the same parser) reads every field."""
    comfy = Path(sys.executable).with_name("comfy")
    assert comfy.exists(), "comfy-cli is in the dev extra"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
           "PATH": f"{comfy.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([str(comfy), "--skip-prompt", "--no-enable-telemetry", "node", "validate"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "All validation checks passed" in out, out
    # comfy-cli reports a malformed field as a warning and publishes without it.
    assert "Warning" not in out and "Error" not in out, out


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


def built_lib(files, tmp_path: Path) -> Path:
    """The wheel's lib tree (what bdist_wheel zips), built by setuptools' `build_py` from a copy of `files`."""
    src = tmp_path / "src"
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(lib)],
        cwd=src, check=True, capture_output=True, timeout=120,
    )
    return lib


def test_wheel_layout_from_the_pack(shipped, tmp_path):
    """The wheel built from the files the pack ships: so the registry zip is installable too, and the installed
    top-level packages are exactly ours."""
    lib = built_lib(shipped, tmp_path)
    assert sorted(p.name for p in lib.iterdir()) == ["audiotoken_core", "audiotoken_train"]
    for module in ("cli.py", "__main__.py", "data/pairs.py", "evaluate/run.py"):
        assert (lib / "audiotoken_train" / module).is_file(), module
    # Data read at run time must be installed with the code.
    assert (lib / "audiotoken_core" / "data" / "audioset_labels.csv").is_file()


def test_test_support_is_neither_shipped_nor_installed(shipped, tmp_path):
    # testkit/ (tiny models, the in-process host) serves tests, benchmarks and scripts in a clone only.
    support = [f for f in candidate_files() if f.startswith("testkit/")]
    assert "testkit/beats.py" in support and not set(support) & shipped
    assert comfyignore_spec().match_file("testkit/host.py")
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert not any("tiny" in p.split(".") or p.split(".")[0] == "testkit" for p in packages), packages
    # `pip install .` from a whole clone: the explicit package list keeps it out.
    lib = built_lib(candidate_files(), tmp_path)
    assert sorted(p.name for p in lib.iterdir()) == ["audiotoken_core", "audiotoken_train"]
    assert not list(lib.rglob("tiny")) and not list(lib.rglob("testkit"))


def test_banner_is_a_wide_png():
    url = PYPROJECT["tool"]["comfy"]["Banner"]
    rel = re.sub(r"^https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/", "", url)
    data = (ROOT / rel).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 3 * height and height >= 200


def _publish_workflow() -> dict:
    import yaml

    return yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text(encoding="utf-8"))


def test_publish_workflow_uses_the_registry_action_on_pyproject_changes():
    flow = _publish_workflow()
    push = flow[True]["push"]  # YAML 1.1 reads the key `on` as True
    assert push["branches"] == ["main"] and push["paths"] == ["pyproject.toml"]
    steps = flow["jobs"]["publish-node"]["steps"]
    action = next(s for s in steps if "publish-node-action" in s.get("uses", ""))
    assert action["uses"].startswith("Comfy-Org/publish-node-action@")
    assert action["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
    assert "needs.version-changed.outputs.changed == 'true'" in flow["jobs"]["publish-node"]["if"]


@pytest.mark.parametrize("before, after, changed", [("0.1.0", "0.1.0", "false"), ("0.1.0", "0.2.0", "true")])
def test_publish_workflow_publishes_only_a_new_version(tmp_path, before, after, changed):
    # The job's own shell step, run on a two-commit repository.
    step = next(s for s in _publish_workflow()["jobs"]["version-changed"]["steps"] if s.get("id") == "compare")
    script = step["run"].replace("${{ github.event_name }}", "push")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for i, version in enumerate((before, after)):
        (tmp_path / "pyproject.toml").write_text(f'[project]\nversion = "{version}"\ndescription = "edit {i}"\n')
        subprocess.run([*git, "add", "pyproject.toml"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"edit {i}"], check=True)
    out = tmp_path / "github_output"
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env={**os.environ, "GITHUB_OUTPUT": str(out)}, check=True)
    assert f"changed={changed}" in out.read_text() and f"version={after}" in out.read_text()
