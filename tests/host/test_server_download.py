"""A real ComfyUI with empty model folders and a download mirror on 127.0.0.1: AudioToken Download Models fetches
the official files (random stand-ins, and the real official LoRA), a failed download fails only its prompt, and the
"official embedder + official LoRA" example workflow draws another picture than the same graph without the LoRA."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

import shutil  # noqa: E402

from host_assets import BEATS, EMBEDDER  # noqa: E402
from host_harness import REPO_ROOT, ComfyServer, error_message, install_pack, saved_images  # noqa: E402
from ui_to_api import set_inputs, ui_to_api  # noqa: E402

from audiotoken_core import download, download_lock, sources  # noqa: E402
from factories.mirror import official_mirror  # noqa: E402
from factories.official import LORA as OFFICIAL_LORA  # noqa: E402

LORA = "lora_layers_learned_embeds.bin"
NONE = "(none)"
WORKFLOW = REPO_ROOT / "example_workflows" / "audiotoken_official_lora.json"


@pytest.fixture(scope="module")
def mirror(host_assets, tmp_path_factory):
    """Stand-ins for the embedder and BEATs (pinned), the real official LoRA (checked by its pinned hash)."""
    m = official_mirror({EMBEDDER: (host_assets["audiotoken"] / EMBEDDER).read_bytes(),
                         BEATS: (host_assets["audio_encoders"] / BEATS).read_bytes()},
                        (EMBEDDER, BEATS), tmp_path_factory.mktemp("pins") / "pins.json")
    yield m
    m.stop()


@pytest.fixture(scope="module")
def server(host_assets, mirror, tmp_path_factory):
    """ComfyUI whose models/audiotoken, audio_encoders and loras start empty; the checkpoint comes from the assets."""
    base = tmp_path_factory.mktemp("comfy_download")
    install_pack(base / "custom_nodes")
    (base / "input").mkdir()
    shutil.copy(host_assets["audio"] / "dog_bark.wav", base / "input" / "dog_bark.wav")
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text(f"audiotoken_tests:\n  base_path: {host_assets['checkpoints'].parent}\n"
                         "  checkpoints: checkpoints\n")
    with pytest.MonkeyPatch.context() as mp:  # ComfyServer passes os.environ on to the server
        mp.setenv(sources.MIRROR_ENV, mirror.url)
        mp.setenv(sources.PINS_ENV, str(mirror.pins))
        srv = ComfyServer(COMFYUI_PATH, base, yaml_path).start()
    srv.models = base / "models"
    yield srv
    srv.stop()


class ProgressListener(threading.Thread):
    """The websocket `progress` messages the server sends to the test client while a prompt runs, and the
    text it sends to be drawn on a node (`texts`: (node id, text))."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.messages = url.replace("http://", "ws://") + "/ws?clientId=audiotoken-tests", []
        self.texts: list[tuple[str, str]] = []
        self.ready, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as ws:
            self.ready.set()
            while not self.done.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except asyncio.TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if data.get("type") == "progress":
                        self.messages.append(data["data"])
                elif msg.type == aiohttp.WSMsgType.BINARY and int.from_bytes(msg.data[:4], "big") == 3:
                    # the host's progress text: event 3, then the node id's length, the node id and the text
                    size = int.from_bytes(msg.data[4:8], "big")
                    self.texts.append((msg.data[8:8 + size].decode(), msg.data[8 + size:].decode()))
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

    def __enter__(self) -> "ProgressListener":
        self.start()
        assert self.ready.wait(30), "no websocket connection"
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join(10)


def download_prompt(embedder=EMBEDDER, audio_encoder=BEATS, lora=NONE) -> dict:
    return {"1": {"class_type": "AudioTokenDownloadModels",
                  "inputs": {"embedder": embedder, "audio_encoder": audio_encoder, "lora": lora}}}


def model_files(server, folder: str) -> list[str]:
    path = server.models / folder
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def test_node_offers_the_official_files_before_they_exist(server):
    info = server.get_json("/object_info/AudioTokenDownloadModels")["AudioTokenDownloadModels"]
    assert info["output_node"] is True and info["category"] == "conditioning/audiotoken"
    required = info["input"]["required"]
    for name, spec in required.items():
        assert spec[1].get("tooltip"), name
    assert EMBEDDER in required["embedder"][1]["options"] and BEATS in required["audio_encoder"][1]["options"]
    assert required["lora"][1]["options"] == [NONE, LORA]
    assert all(info["output_tooltips"])
    assert model_files(server, "audiotoken") == [] and server.get_json("/models/audiotoken") == []


def test_part_and_lock_files_of_a_download_under_way_are_never_listed(server):
    """What a download in progress (in another ComfyUI on the same models folder, say) has beside its target."""
    folder = server.models / "audio_encoders"
    folder.mkdir(parents=True, exist_ok=True)
    strays = [folder / (BEATS + download.PART_SUFFIX), download_lock.lock_path(folder / BEATS)]
    for path in strays:
        path.write_bytes(b"x")
    try:
        assert server.get_json("/models/audio_encoders") == []
        info = server.get_json("/object_info/AudioTokenModelLoader")["AudioTokenModelLoader"]["input"]["required"]
        assert info["audio_encoder_name"][1]["options"] == [BEATS]  # the official name, not on disk yet
    finally:
        for path in strays:
            path.unlink()


def test_model_loader_offers_missing_official_files_under_their_names_and_fetches_them_when_queued(server, mirror):
    info = server.get_json("/object_info/AudioTokenModelLoader")["AudioTokenModelLoader"]["input"]["required"]
    assert info["embedder_name"][1]["options"] == [EMBEDDER]  # not on disk, listed under its plain name
    assert info["audio_encoder_name"][1]["options"] == [BEATS]
    assert f"Not in models/audiotoken yet: {EMBEDDER} (about 35.4 MB)" in info["embedder_name"][1]["tooltip"]
    assert f"Not in models/audio_encoders yet: {BEATS}" in info["audio_encoder_name"][1]["tooltip"]
    prompt = {"1": {"class_type": "AudioTokenModelLoader",
                    "inputs": {"embedder_name": EMBEDDER, "audio_encoder_name": BEATS, "precision": "auto"}},
              "2": {"class_type": "LoadAudio", "inputs": {"audio": "dog_bark.wav"}},
              "3": {"class_type": "AudioTokenDescribe", "inputs": {"audiotoken_model": ["1", 0], "audio": ["2", 0],
                                                                   "k": 3, "threshold": 0.0, "mode": "mean",
                                                                   "window_seconds": 10.0}}}
    with ProgressListener(server.url) as progress:
        entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    assert model_files(server, "audiotoken") == [EMBEDDER] and model_files(server, "audio_encoders") == [BEATS]
    # the host's progress bar on the loader, in bytes, ending at each file's size
    assert {m["max"] for m in progress.messages if m["node"] == "1" and m["value"] == m["max"]} >= \
        {len(mirror.files[mirror.paths[EMBEDDER]]), len(mirror.files[mirror.paths[BEATS]])}
    listed = server.get_json("/object_info/AudioTokenModelLoader")["AudioTokenModelLoader"]["input"]["required"]
    assert listed["embedder_name"][1]["options"] == [EMBEDDER] and "yet" not in listed["embedder_name"][1]["tooltip"]
    # the later tests start from empty folders again
    for folder, name in (("audiotoken", EMBEDDER), ("audio_encoders", BEATS)):
        (server.models / folder / name).unlink()


def test_model_loader_names_every_file_it_could_not_fetch_under_a_readable_type(server, mirror):
    """Both downloads fail: one error, on the loader, naming both files and where to put each. The node itself
    shows one short line per file (file, folder, address) and the mirror setting; the error opens with the
    same lines and then gives each file its own paragraph."""
    for name in (EMBEDDER, BEATS):
        mirror.faults.status[mirror.paths[name]] = 404
    try:
        with ProgressListener(server.url) as listener:
            entry = server.run({"1": {"class_type": "AudioTokenModelLoader",
                                      "inputs": {"embedder_name": EMBEDDER, "audio_encoder_name": BEATS,
                                                 "precision": "auto"}},
                                "2": {"class_type": "LoadAudio", "inputs": {"audio": "dog_bark.wav"}},
                                "3": {"class_type": "AudioTokenDescribe",
                                      "inputs": {"audiotoken_model": ["1", 0], "audio": ["2", 0], "k": 3,
                                                 "threshold": 0.0, "mode": "mean", "window_seconds": 10.0}}})
    finally:
        for name in (EMBEDDER, BEATS):
            del mirror.faults.status[mirror.paths[name]]
    assert entry["status"]["status_str"] == "error"
    err = error_message(entry)
    # What the frontend's error panel shows as the title: `${exception_type}: ${exception_message}`.
    assert err["node_type"] == "AudioTokenModelLoader" and err["exception_type"] == "AudioTokenMissingModel", err
    msg = err["exception_message"]
    for folder, name in (("audiotoken", EMBEDDER), ("audio_encoders", BEATS)):
        assert f"put {name}" in msg and str(server.models / folder / name) in msg, msg
    assert msg.count("404") == 2, msg
    short, *paragraphs = msg.split("\n\n")
    lines = short.splitlines()
    assert len(lines) == 4 and len(paragraphs) == 2, msg  # a title, a line per file, the mirror; a paragraph per file
    files = (("audiotoken", EMBEDDER), ("audio_encoders", BEATS))
    for line, paragraph, (folder, name) in zip(lines[1:3], paragraphs, files):
        assert line.startswith(f"- {name} -> {server.models / folder}, from ") and len(line) < 250, line
        assert sources.find(name).url in line and paragraph.startswith(f"{name}: "), msg
    assert f"{sources.MIRROR_ENV}=http://HOST:PORT" in lines[3] and mirror.url in lines[3], lines[3]
    assert [text for node, text in listener.texts if node == "1"] == [short], listener.texts  # drawn on the node
    assert "\n\n".join(paragraphs) in server.log()  # the server log keeps the full text, a paragraph per file
    assert model_files(server, "audiotoken") == [] and model_files(server, "audio_encoders") == []


def test_failed_download_fails_that_prompt_and_leaves_nothing(server, mirror):
    mirror.faults.status[mirror.paths[EMBEDDER]] = 404
    entry = server.run(download_prompt(audio_encoder=NONE))
    assert entry["status"]["status_str"] == "error"
    err = error_message(entry)
    assert err["node_type"] == "AudioTokenDownloadModels"
    msg = err["exception_message"]
    assert "404" in msg and f"put {EMBEDDER}" in msg and str(server.models / "audiotoken" / EMBEDDER) in msg, msg
    del mirror.faults.status[mirror.paths[EMBEDDER]]

    good = mirror.files[mirror.paths[BEATS]]
    mirror.files[mirror.paths[BEATS]] = good[:-10] + b"0123456789"  # right size, wrong bytes
    entry = server.run(download_prompt(embedder=NONE))
    assert entry["status"]["status_str"] == "error"
    assert "not the expected file" in error_message(entry)["exception_message"]
    assert model_files(server, "audio_encoders") == []  # not even a part file
    mirror.files[mirror.paths[BEATS]] = good


def test_the_next_prompt_downloads_everything_with_a_cut_resumed(server, mirror):
    mirror.faults.cut_after[mirror.paths[BEATS]] = 200_000
    with ProgressListener(server.url) as progress:
        entry = server.run(download_prompt(lora=LORA))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    out = entry["outputs"]["1"]["text"][0]
    assert out.count("downloaded and verified") == 3, out
    assert model_files(server, "audiotoken") == [EMBEDDER]
    assert model_files(server, "audio_encoders") == [BEATS]
    assert model_files(server, "loras") == [LORA]
    assert (server.models / "loras" / LORA).read_bytes() == OFFICIAL_LORA.read_bytes()
    assert any(r[1] == mirror.paths[BEATS] and r[2] == "bytes=200000-" for r in mirror.requests)
    assert EMBEDDER in server.get_json("/models/audiotoken")
    # the host's progress bar, in bytes, for each file
    ends = {m["max"] for m in progress.messages if m["node"] == "1" and m["value"] == m["max"]}
    assert {len(mirror.files[p]) for p in mirror.paths.values()} <= ends, progress.messages[-5:]
    again = server.run(download_prompt(lora=LORA))  # everything present: nothing fetched again
    assert again["status"]["status_str"] == "success"


def _lora_prompt(server, strength: float, prefix: str) -> dict:
    workflow = json.loads(WORKFLOW.read_text())
    prompt = ui_to_api(workflow, server.get_json("/object_info"))
    set_inputs(prompt, "EmptyLatentImage", width=64, height=64)
    set_inputs(prompt, "KSampler", steps=2)
    set_inputs(prompt, "LoraLoaderModelOnly", strength_model=strength)
    set_inputs(prompt, "SaveImage", filename_prefix=prefix)
    sampler = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
    prompt["latent_out"] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler, 0], "filename_prefix": prefix}}
    return prompt


def _latent(server, prefix: str):
    from safetensors.torch import load_file

    (path,) = (server.base / "output").rglob(f"{prefix}_*.latent")
    return load_file(str(path))["latent_tensor"]


def test_official_lora_workflow_changes_the_picture(server):
    import torch

    if model_files(server, "loras") != [LORA]:
        assert server.run(download_prompt(lora=LORA))["status"]["status_str"] == "success"
    for strength, prefix in ((1.0, "with_lora"), (0.0, "without_lora")):
        entry = server.run(_lora_prompt(server, strength, prefix))
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
        assert len(saved_images(entry)) == 1
    with_lora, without = _latent(server, "with_lora"), _latent(server, "without_lora")
    assert with_lora.shape == without.shape and torch.isfinite(with_lora).all()
    # The tiny SD1.5 checkpoint has the first 320-wide attention block, so the official LoRA's 8 pairs for
    # down_blocks.0.attentions.0 apply (the other 120 have no layer to go to).
    diff = float((with_lora - without).abs().mean())
    print(f"mean |latent with LoRA - without| = {diff:.4f} (latent std {float(without.std()):.3f})")
    assert diff > 1e-3
