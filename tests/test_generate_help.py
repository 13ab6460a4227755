"""`scripts/generate.sh --help` on a fresh clone: the generator's options at once, and no venv made."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the help needs: the script and the settings modules, which are plain stdlib (no torch).
HELP_FILES = ("scripts/generate.sh", "scripts/env.sh", "train/__init__.py", "train/generate_config.py",
              "train/options.py", "audiotoken_core/__init__.py", "audiotoken_core/precision.py",
              "audiotoken_core/sources.py", "audiotoken_core/command_name.py")


def test_help_answers_without_installing(tmp_path):
    clone = tmp_path / "clone"
    for rel in HELP_FILES:
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, clone / rel)
    # torch, where the system Python has it, must not be what answers: an import of it fails
    poison = tmp_path / "no_torch" / "torch"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('generate.sh --help must not need torch')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("AUDIOTOKEN_VENV", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(poison.parent)
    began = time.perf_counter()
    proc = subprocess.run(["bash", str(clone / "scripts" / "generate.sh"), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - began
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m train.generate") and "--audio" in proc.stdout
    assert "--no-download" in proc.stdout and "first run makes a Python environment" in proc.stdout
    assert "(default: 50)" in proc.stdout  # the one default of --steps, shared with train.evaluate
    assert not (clone / ".venv").exists() and not (tmp_path / ".venv").exists()
    print(f"generate.sh --help on a fresh copy: {took:.2f} s")
