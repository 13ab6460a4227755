"""A real ComfyUI runs every example workflow with the pack installed under an odd folder name."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from host_assets import CHECKPOINT, EMBEDDER, LONG_RECORDING_WINDOWS  # noqa: E402
from host_harness import REPO_ROOT, executed_nodes, quote, saved_images  # noqa: E402
from partial_runs import PARTIAL, run_audio_part, split_workflows, static_problems, write_placeholders  # noqa: E402
from ui_to_api import set_inputs, ui_to_api  # noqa: E402

NODE_IDS = ["AudioTokenModelLoader", "AudioTokenEncode", "AudioTokenTextEncode", "AudioTokenSaveEmbedding",
            "AudioTokenBlend", "AudioTokenSchedule", "AudioTokenDescribe", "AudioTokenDownloadModels"]
WORKFLOWS = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
# Run whole on the tiny checkpoint, or (image model too big: partial_runs.PARTIAL) checked whole and run in part.
FULL, PARTIAL_RUNS = split_workflows(WORKFLOWS)
EXPECTED_IMAGES = {"audiotoken_long_recording_windows.json": LONG_RECORDING_WINDOWS}
# Workflows that save one animated WEBP (listed under 'images'): how many frames it must hold.
ANIMATED_FRAMES = {"audiotoken_sound_to_frames.json": 16}


def shrink(prompt: dict) -> dict:
    """CPU-sized sampling: the graph is unchanged, only the latent size and step count drop."""
    set_inputs(prompt, "EmptyLatentImage", width=64, height=64)
    set_inputs(prompt, "KSampler", steps=2)
    return prompt


@pytest.fixture(scope="module")
def placeholders(comfy_server):
    """The image-model files the partial workflows name, as placeholders the server lists but never loads."""
    return write_placeholders(comfy_server.base / "models", WORKFLOWS)


@pytest.fixture(scope="module")
def object_info(comfy_server, placeholders):
    return comfy_server.get_json("/object_info")


def test_pack_imports_cleanly(comfy_server):
    log = comfy_server.log()
    assert "IMPORT FAILED" not in log and "Cannot import" not in log, log[-3000:]
    assert "Error while calling comfy_entrypoint" not in log, log[-3000:]


def test_every_node_is_registered_with_tooltips(object_info):
    for node_id in NODE_IDS:
        info = object_info[node_id]
        assert info["category"] == "conditioning/audiotoken"
        assert info["python_module"].startswith("custom_nodes.")
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert all(info["output_tooltips"]), f"{node_id} has an output without tooltip"


def test_model_folder_merges_yaml_entry(comfy_server):
    files = comfy_server.get_json("/models/audiotoken")
    assert EMBEDDER in files
    assert "notes.txt" not in files, "model extensions were not merged into the yaml-created entry"


def test_example_workflows_are_listed_as_templates(comfy_server):
    templates = comfy_server.get_json("/workflow_templates")
    listed = {name for names in templates.values() for name in names}
    assert {p.stem for p in WORKFLOWS} <= listed


def test_every_example_workflow_runs_whole_or_in_part():
    assert sorted(FULL + PARTIAL_RUNS) == WORKFLOWS and not set(FULL) & set(PARTIAL_RUNS)
    assert {p.name for p in PARTIAL_RUNS} == set(PARTIAL)


def test_example_workflows_leave_the_window_to_the_embedder(object_info):
    """Encode, Describe and Schedule in every example hear the window their embedder records (0 = its own)."""
    windows = {(path.stem, n["class_type"]): n["inputs"]["window_seconds"]
               for path in WORKFLOWS for n in ui_to_api(json.loads(path.read_text()), object_info).values()
               if "window_seconds" in n["inputs"]}
    assert {kind for _, kind in windows} == {"AudioTokenEncode", "AudioTokenDescribe", "AudioTokenSchedule"}
    assert set(windows.values()) == {0.0}, windows


@pytest.mark.parametrize("path", FULL, ids=[p.stem for p in FULL])
def test_example_workflow_runs(comfy_server, object_info, path: Path):
    workflow = json.loads(path.read_text())
    prompt = shrink(ui_to_api(workflow, object_info))
    # A recording's stand-in: Record Audio's value is a file the browser uploaded (e.g. "audio/recording-1.wav
    # [temp]"), read as Load Audio reads input/; test_frontend_record makes a real one.
    set_inputs(prompt, "RecordAudio", audio="dog_bark.wav")
    entry = comfy_server.run(prompt, workflow)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    images = saved_images(entry)
    assert len(images) == EXPECTED_IMAGES.get(path.name, 1)
    status, raw = comfy_server.request("GET", f"/view?filename={quote(images[0]['filename'])}"
                                               f"&subfolder={quote(images[0]['subfolder'])}&type=output")
    assert status == 200
    if path.name in ANIMATED_FRAMES:
        assert_animated_webp(raw, ANIMATED_FRAMES[path.name], schedule_fps(prompt))
    else:
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", PARTIAL_RUNS, ids=[p.stem for p in PARTIAL_RUNS])
def test_example_workflow_resolves_and_its_audio_part_runs(comfy_server, object_info, path: Path):
    """Image model too big to run here (see partial_runs.PARTIAL for each): the whole graph resolves against
    the server's nodes, and its audio part runs on the tiny BEATs and embedder, the rest sent along unrun."""
    workflow = json.loads(path.read_text())
    prompt = ui_to_api(workflow, object_info)
    assert static_problems(prompt, object_info) == []
    entry = run_audio_part(comfy_server, prompt, object_info, workflow)
    assert saved_images(entry) == []


def schedule_fps(prompt: dict) -> float:
    return next(n["inputs"]["fps"] for n in prompt.values() if n["class_type"] == "AudioTokenSchedule")


def assert_animated_webp(raw: bytes, frames: int, fps: float) -> None:
    """A real animated WEBP: decodable, one picture per scheduled frame, played at the schedule's fps."""
    from PIL import Image

    assert raw[:4] == b"RIFF" and raw[8:12] == b"WEBP", raw[:16]
    with Image.open(io.BytesIO(raw)) as img:
        assert img.format == "WEBP" and img.is_animated and img.n_frames == frames
        assert img.size == (64, 64)
        img.seek(frames - 1)
        img.load()  # the frame's duration is read with its data
        assert img.info.get("duration") == int(1000 / fps)


def test_resubmission_is_served_from_cache(comfy_server, object_info):
    workflow = json.loads((REPO_ROOT / "example_workflows" / "audiotoken_sound_to_image.json").read_text())
    prompt = shrink(ui_to_api(workflow, object_info))
    comfy_server.run(prompt)
    again = comfy_server.run(prompt)
    ran, cached = executed_nodes(again)
    assert again["status"]["status_str"] == "success"
    audiotoken_nodes = [k for k, v in prompt.items() if v["class_type"].startswith("AudioToken")]
    assert set(audiotoken_nodes) <= set(cached), (ran, cached)


def test_saved_embedding_works_in_core_prompt_node(comfy_server, object_info):
    """AudioTokenSaveEmbedding writes a file that plain CLIPTextEncode reads as embedding:NAME."""
    save = {
        "1": {"class_type": "AudioTokenModelLoader",
              "inputs": {"embedder_name": EMBEDDER, "audio_encoder_name": "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
                         "precision": "auto"}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "rain.wav"}},
        "3": {"class_type": "AudioTokenEncode", "inputs": {"audiotoken_model": ["1", 0], "audio": ["2", 0],
                                                          "mode": "first", "start_seconds": 0.0, "window_seconds": 10.0}},
        "4": {"class_type": "AudioTokenSaveEmbedding", "inputs": {"audio_tokens": ["3", 0], "name": "rain_sound",
                                                                 "batch_index": 0, "overwrite": True}},
    }
    entry = comfy_server.run(save)
    assert entry["status"]["status_str"] == "success"
    assert "embedding:rain_sound" in entry["outputs"]["4"]["text"][0]
    assert "rain_sound" in comfy_server.get_json("/embeddings")

    use = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a photo of embedding:rain_sound"}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "seed": 1, "steps": 1, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "embedding_check"}},
    }
    entry = comfy_server.run(use)
    assert entry["status"]["status_str"] == "success"
    assert "embedding:rain_sound does not exist" not in comfy_server.log()
