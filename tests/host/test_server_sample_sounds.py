"""A real ComfyUI whose input folder lacks the sample sounds: the pack copies them there at load, leaves a
user's file of the same name alone, and every example workflow's Load Audio value is then in the list and loads."""

from __future__ import annotations

import json
import re

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from host_harness import REPO_ROOT, ComfyServer, install_pack  # noqa: E402

SOUNDS = REPO_ROOT / "sample_sounds"
USERS_RAIN = b"RIFF not the pack's rain: the user's own file"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_sounds")
    install_pack(base / "custom_nodes")
    (base / "input").mkdir()
    (base / "input" / "rain.wav").write_bytes(USERS_RAIN)
    srv = ComfyServer(COMFYUI_PATH, base).start()
    yield srv
    srv.stop()


def combo_options(spec: list) -> list[str]:
    """0.3.64 sends `[[options], {...}]`; V3 on 0.33.0 sends `["COMBO", {"options": [...]}]`."""
    return spec[0] if isinstance(spec[0], list) else spec[1]["options"]


def template_sounds() -> dict[str, str]:
    return {path.name: node["widgets_values"][0]
            for path in sorted((REPO_ROOT / "example_workflows").glob("*.json"))
            for node in json.loads(path.read_text())["nodes"] if node["type"] == "LoadAudio"}


def test_the_pack_ships_every_sound_a_template_loads():
    used = set(template_sounds().values())
    assert used and used <= {p.name for p in SOUNDS.glob("*.wav")}
    assert sum(p.stat().st_size for p in SOUNDS.glob("*.wav")) < 600_000


def test_missing_sounds_are_copied_and_the_users_file_is_kept(server):
    inp = server.base / "input"
    for name in ("dog_bark.wav", "long_recording.wav"):
        assert (inp / name).read_bytes() == (SOUNDS / name).read_bytes()
    assert (inp / "rain.wav").read_bytes() == USERS_RAIN
    said = [line for line in server.log().splitlines() if "sample sounds" in line]
    assert len(said) == 1, said
    assert re.search(r"copied the sample sounds dog_bark\.wav, long_recording\.wav into ", said[0]), said


def test_load_audio_lists_every_template_sound(server):
    options = combo_options(server.get_json("/object_info/LoadAudio")["LoadAudio"]["input"]["required"]["audio"])
    missing = {template: sound for template, sound in template_sounds().items() if sound not in options}
    assert not missing, (missing, options)


def test_the_shipped_sounds_load(server):
    """Load Audio decodes the mu-law WAVs (PyAV); PreviewAudio makes it run and re-encodes them."""
    names = ("dog_bark.wav", "long_recording.wav")
    prompt = {}
    for i, name in enumerate(names):
        prompt[f"{i}a"] = {"class_type": "LoadAudio", "inputs": {"audio": name}}
        prompt[f"{i}b"] = {"class_type": "PreviewAudio", "inputs": {"audio": [f"{i}a", 0]}}
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    previews = [item for out in entry["outputs"].values() for item in out.get("audio", [])]
    assert len(previews) == len(names)
