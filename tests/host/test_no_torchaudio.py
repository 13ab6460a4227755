"""The pack loads, registers its nodes and runs every one of them with torchaudio unimportable (issue 17).

ComfyUI stopped installing torchaudio (0.38), and torchaudio's last release pins an older torch, so a current
install has none. The check runs in a fresh interpreter (no_torchaudio_child.py): there the host's own modules
load first (the trees CI has predate 0.37 and import torchaudio themselves), then an import hook makes torchaudio
look uninstalled (`import torchaudio...` raises, `find_spec` answers None), and ComfyUI's own loader loads the
pack from custom_nodes/ and each registered node is executed once, the models fetched by Download Models from a
mirror on 127.0.0.1. An import after the block names the importing file and the pack files on the import stack,
so a failure says which import to remove. Runs on every host tree, in CI's hosts and newest legs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from host_assets import BEATS, CHECKPOINT, EMBEDDER  # noqa: E402
from host_harness import install_pack  # noqa: E402

from audiotoken_core import sources  # noqa: E402
from factories.mirror import Mirror  # noqa: E402

CHILD = Path(__file__).with_name("no_torchaudio_child.py")


def refusals_text(refused: list[dict]) -> str:
    return "\n".join(f"  import {r['module']} by {r['importer']}"
                     + (f"\n    via the pack's {' <- '.join(r['pack_chain'])}" if r["pack_chain"] else "")
                     for r in refused)


@pytest.fixture(scope="module")
def report(host_assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("no_torchaudio")
    stand_ins = {EMBEDDER: (host_assets["audiotoken"] / EMBEDDER).read_bytes(),
                 BEATS: (host_assets["audio_encoders"] / BEATS).read_bytes()}
    pins = root / "pins.json"
    pins.write_text(json.dumps({name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                                for name, data in stand_ins.items()}))
    mirror = Mirror().start()
    for name, data in stand_ins.items():
        mirror.add(sources.find(name).url, data)
    spec = {"pack_dir": str(install_pack(root / "custom_nodes")), "models": str(root / "models"),
            "embeddings": str(root / "embeddings"), "input": str(root / "input"),
            "audio": str(host_assets["audio"] / "dog_bark.wav"),  # 22.05 kHz stereo: resampled by the pack
            "checkpoint": str(host_assets["checkpoints"] / CHECKPOINT), "embedder": EMBEDDER, "beats": BEATS}
    for folder in ("embeddings", "input"):
        Path(spec[folder]).mkdir()
    (root / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "COMFYUI_PATH": COMFYUI_PATH, sources.MIRROR_ENV: mirror.url, sources.PINS_ENV: str(pins),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        proc = subprocess.run([sys.executable, str(CHILD), str(root / "spec.json"), str(root / "report.json")],
                              env=env, capture_output=True, text=True, timeout=900)
    finally:
        mirror.stop()
    out = root / "report.json"
    assert out.is_file(), f"the child wrote no report (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    data = json.loads(out.read_text())
    data["log"] = proc.stderr[-4000:]
    return data


def test_pack_loads_and_every_node_runs_without_torchaudio(report):
    """In the order that names the cause first: an import of torchaudio once the pack loads (the host's own
    came before the block), then anything else that stopped the child, then the loader, then each node."""
    print(f"host's torchaudio: {report.get('host_torchaudio')}; imported by the host before the block: "
          f"{report.get('host_imported_torchaudio')}")
    if report.get("probed"):  # asking whether it is installed is fine: the answer was "no"
        print("asked whether torchaudio is installed:\n" + refusals_text(report["probed"]))
    refused = report.get("refused", [])
    assert not refused, ("torchaudio was imported once it was blocked:\n" + refusals_text(refused)
                         + "\nThe pack must not import torchaudio (ComfyUI 0.38+ installs none)."
                         + (f"\nThe child then stopped:\n{report['error']}" if "error" in report else ""))
    assert "error" not in report, f"the child failed outside the nodes:\n{report['error']}\n{report['log']}"
    assert report["loaded"] is True, f"ComfyUI's loader did not load the pack:\n{report['log']}"
    assert report["registered"] and report["registered"] == report["extension_nodes"]
    failed = report["failed"]
    assert not failed, "\n".join(f"{node}:\n{tb}" for node, tb in failed.items())
    assert sorted(report["ran"]) == report["registered"]
    assert report["import_after"].startswith("No module named 'torchaudio'"), report["import_after"]
    assert report["torchaudio_modules_after"] == []
