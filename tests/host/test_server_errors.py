"""Bad inputs end as a node error with a clear message, and the server keeps serving the next prompt."""

from __future__ import annotations


import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from host_assets import BEATS, CHECKPOINT, EMBEDDER, NARROW_BEATS, SD2_EMBEDDER  # noqa: E402
from host_harness import error_message  # noqa: E402


def graph(embedder=EMBEDDER, encoder=BEATS, text="a photo of <audio>", audio=None, mode="first"):
    """Checkpoint + AudioToken chain ending in a conditioning preview-free sampler run (64 px, 1 step)."""
    audio_node = audio or {"class_type": "LoadAudio", "inputs": {"audio": "dog_bark.wav"}}
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "AudioTokenModelLoader",
              "inputs": {"embedder_name": embedder, "audio_encoder_name": encoder, "precision": "auto"}},
        "3": audio_node,
        "4": {"class_type": "AudioTokenEncode", "inputs": {"audiotoken_model": ["2", 0], "audio": ["3", 0],
                                                          "mode": mode, "start_seconds": 0.0, "window_seconds": 10.0}},
        "5": {"class_type": "AudioTokenTextEncode", "inputs": {"clip": ["1", 1], "audio_tokens": ["4", 0], "text": text}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["5", 0], "negative": ["5", 0],
                                                   "latent_image": ["6", 0], "seed": 3, "steps": 1, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "errors"}},
    }


def assert_still_serving(server):
    entry = server.run(graph())
    assert entry["status"]["status_str"] == "success"


def run_expecting_error(server, prompt) -> dict:
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "error"
    return error_message(entry)


def test_mismatched_encoder_names_both_files(comfy_server):
    err = run_expecting_error(comfy_server, graph(encoder=NARROW_BEATS))
    assert err["node_type"] == "AudioTokenModelLoader"
    msg = err["exception_message"]
    assert EMBEDDER in msg and NARROW_BEATS in msg and "192" in msg and "96" in msg, msg
    assert_still_serving(comfy_server)


def test_embedder_for_another_clip_draws_from_words_and_says_so(comfy_server):
    """An SD2 (h) embedder on an SD1.5 checkpoint: no head fits, so the fallback words stand in (no error)."""
    prompt = graph(embedder=SD2_EMBEDDER)
    prompt["5"]["inputs"].update(words="fallback text", fallback_text="rain on a roof")
    entry = comfy_server.run(prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    preview = entry["outputs"]["5"]["text"][0]
    assert "l (768): fallback text 'rain on a roof'" in preview and "words only" in preview, preview


def test_missing_placeholder_is_rejected_with_a_fix(comfy_server):
    status, answer = comfy_server.post_prompt(graph(text="a photo of a dog"))
    assert status == 400
    errors = answer["node_errors"]["5"]["errors"]
    assert any("<audio>" in e["details"] and "a photo of <audio>" in e["details"] for e in errors), errors
    assert_still_serving(comfy_server)


def test_zero_length_audio_is_a_clear_node_error(comfy_server):
    empty = {"class_type": "EmptyAudio", "inputs": {"duration": 0.0, "sample_rate": 44100, "channels": 1}}
    err = run_expecting_error(comfy_server, graph(audio=empty))
    assert err["node_type"] == "AudioTokenEncode"
    assert "empty" in err["exception_message"], err["exception_message"]
    assert_still_serving(comfy_server)


def test_out_of_range_window_is_rejected_by_the_host(comfy_server):
    prompt = graph()
    prompt["4"]["inputs"]["window_seconds"] = -1.0  # 0 is the embedder's window; 0-0.5 s Encode refuses itself
    status, answer = comfy_server.post_prompt(prompt)
    assert status == 400 and answer["node_errors"]["4"]["errors"][0]["type"] == "value_smaller_than_min"


def test_unknown_model_file_fails_validation(comfy_server):
    status, answer = comfy_server.post_prompt(graph(embedder="missing.safetensors"))
    assert status == 400
    details = " ".join(e["details"] for e in answer["node_errors"]["2"]["errors"])
    assert "missing.safetensors" in details and "models/audiotoken" in details, details


def test_each_missing_file_is_reported_on_its_own_input(comfy_server):
    """A missing embedder (the Flux token template's, which the user trains) is reported on embedder_name alone,
    with the way to train it: the frontend's Issues panel counts one bad input, not two."""
    status, answer = comfy_server.post_prompt(graph(embedder="gone.safetensors"))
    assert status == 400
    errors = answer["node_errors"]["2"]["errors"]
    assert [e["extra_info"]["input_name"] for e in errors] == ["embedder_name"], errors
    assert "'gone.safetensors' is not in models/audiotoken" in errors[0]["details"], errors
    assert "python -m train" in errors[0]["details"], errors
    assert_still_serving(comfy_server)


def test_a_wrong_beats_is_named_on_its_own_input_and_the_official_names_validate(comfy_server):
    """The official names are what the templates save: they validate (fetched when absent). A wrong BEATs is
    never blamed on embedder_name: 0.33.0 refuses it on audio_encoder_name (not among the listed BEATs files);
    0.3.64, which does not check V3 lists, runs the loader, and it names the file."""
    status, answer = comfy_server.post_prompt(graph(encoder="gone_beats.pt"))
    if status == 400:
        errors = answer["node_errors"]["2"]["errors"]
        assert [e["extra_info"]["input_name"] for e in errors] == ["audio_encoder_name"], errors
        assert "gone_beats.pt" in errors[0]["details"], errors
    else:
        entry = comfy_server.wait_history(answer["prompt_id"])
        err = error_message(entry)
        assert err["node_id"] == "2" and "'gone_beats.pt' is not in models/audio_encoders" in err["exception_message"]
    assert_still_serving(comfy_server)
