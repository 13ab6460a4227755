"""Each command's usage line names the command as it was invoked: the console script's name, or
`python -m <module>` under the name the code runs as (`train` in the clone, `audiotoken_train` installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _usage(argv, tmp_path, pythonpath):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    proc = subprocess.run([sys.executable, *argv, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def _installed(tmp_path) -> Path:
    """The two packages under the names they are installed as."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "audiotoken_train").symlink_to(REPO / "train", target_is_directory=True)
    (site / "audiotoken_core").symlink_to(REPO / "audiotoken_core", target_is_directory=True)
    return site


def test_a_console_script_names_itself(tmp_path):
    """What pip writes for a [project.scripts] entry, run against the installed layout."""
    script = tmp_path / "audiotoken-evaluate"
    script.write_text("import sys\nfrom audiotoken_train.evaluate.__main__ import main\nsys.exit(main())\n")
    assert _usage([str(script)], tmp_path, [_installed(tmp_path)]).startswith("usage: audiotoken-evaluate [-h]")


def test_a_module_run_names_the_module_it_runs_as(tmp_path):
    assert _usage(["-m", "audiotoken_train.generate"], tmp_path, [_installed(tmp_path)]).startswith(
        "usage: python -m audiotoken_train.generate [-h]")


def test_every_console_script_uses_it(monkeypatch, capsys):
    import importlib

    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) == 4
    for script, target in scripts.items():
        module, func = target.split(":")
        main = getattr(importlib.import_module(module.replace("audiotoken_train", "train", 1)), func)
        monkeypatch.setattr(sys, "argv", [f"/venv/bin/{script}"])
        with pytest.raises(SystemExit):
            main(["--help"])
        assert capsys.readouterr().out.startswith(f"usage: {script} [-h]"), script


def test_called_from_python_it_reads_as_a_module_run(monkeypatch):
    from audiotoken_core.command_name import command_name

    monkeypatch.setattr(sys, "argv", ["-c"])
    assert command_name("train.generate") == "python -m train.generate"
    monkeypatch.setattr(sys, "argv", ["/venv/bin/audiotoken-train"])
    assert command_name("train") == "audiotoken-train"
    monkeypatch.setattr(sys, "argv", ["C:\\venv\\Scripts\\audiotoken-train.exe".replace("\\", os.sep)])
    assert command_name("train") == "audiotoken-train"
