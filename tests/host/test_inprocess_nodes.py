"""The nodes called directly in-process: loading and caching, encode modes, blend, save, progress, interrupt."""

from __future__ import annotations

import os
import time

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS, EMBEDDER  # noqa: E402
from inprocess import pack_module, small_sd1_clip  # noqa: E402



@pytest.fixture(scope="module")
def model(folders):
    loader = pack_module("model_loader").AudioTokenModelLoader
    return loader.execute(EMBEDDER, BEATS, "auto")[0]


def audio(seconds: float, rate: int = 16000, channels: int = 2, batch: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"waveform": torch.randn(batch, channels, int(seconds * rate), generator=g) * 0.1, "sample_rate": rate}


def encode(model, sound, **kw):
    """Short 2 s windows unless a test asks otherwise: BEATs time grows with the window, not the behaviour."""
    node = pack_module("encode").AudioTokenEncode
    out = node.execute(model, sound, **{"window_seconds": 2.0, **kw})
    return out[0], out[1]


def test_loader_reuses_model_until_the_file_changes(folders, model):
    loader = pack_module("model_loader").AudioTokenModelLoader
    assert loader.execute(EMBEDDER, BEATS, "auto")[0] is model
    assert model.tokenizer.device == torch.device("cpu") and model.beats_dtype == torch.float32
    path = folders["audiotoken"] / EMBEDDER
    before = loader.fingerprint_inputs(embedder_name=EMBEDDER, audio_encoder_name=BEATS, precision="auto")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = loader.fingerprint_inputs(embedder_name=EMBEDDER, audio_encoder_name=BEATS, precision="auto")
    assert before != after
    reloaded = loader.execute(EMBEDDER, BEATS, "auto")[0]
    assert reloaded is not model
    torch.testing.assert_close(encode(reloaded, audio(2.0))[0].tokens["l"], encode(model, audio(2.0))[0].tokens["l"])


def test_loader_validation_names_missing_files(folders):
    loader = pack_module("model_loader").AudioTokenModelLoader
    msg = loader.validate_inputs(embedder_name="nope.bin")
    assert isinstance(msg, str) and "nope.bin" in msg and "models/audiotoken" in msg


@pytest.mark.parametrize("mode,rows", [("first", 2), ("mean", 2), ("windows", 6)])
def test_encode_modes_batch_and_count(model, mode, rows):
    tokens, count = encode(model, audio(5.0), mode=mode, start_seconds=0.0)  # 2 full windows + a 1 s tail
    assert count == rows == tokens.batch_size
    assert tokens.tokens["l"].shape == (rows, 1, 768) and tokens.tokens["l"].dtype == torch.float32
    assert torch.isfinite(tokens.tokens["l"]).all()


@pytest.mark.parametrize("mode,rows", [("first", 2), ("windows", 6)])
def test_encode_says_what_beats_heard_per_token_row(model, mode, rows):
    """The tiny BEATs has an AudioSet head: one word string per token set, for Text Encode's word route."""
    node = pack_module("encode").AudioTokenEncode
    out = node.execute(model, audio(5.0), mode=mode, window_seconds=2.0)
    assert len(out[0].heard.words) == rows and out[0].heard.probs.shape == (rows, 527)
    assert out.ui.as_dict()["text"][0].startswith("Heard: ")


def test_windows_are_sound_major_and_mean_is_their_average(model):
    wins, _ = encode(model, audio(5.0), mode="windows")
    mean, _ = encode(model, audio(5.0), mode="mean")
    per_sound = wins.tokens["l"].view(2, 3, 1, 768)
    torch.testing.assert_close(per_sound.mean(1), mean.tokens["l"], rtol=1e-4, atol=1e-5)


def test_offset_matters_and_any_rate_is_accepted(model):
    a, _ = encode(model, audio(6.0, batch=1), start_seconds=0.0)
    b, _ = encode(model, audio(6.0, batch=1), start_seconds=3.0)
    assert not torch.allclose(a.tokens["l"], b.tokens["l"])
    stereo44k = audio(3.0, rate=44100, channels=2, batch=1)
    tokens, count = encode(model, stereo44k)
    assert count == 1 and torch.isfinite(tokens.tokens["l"]).all()


def test_empty_audio_is_a_clear_error(model):
    with pytest.raises(ValueError, match="empty"):
        encode(model, {"waveform": torch.zeros(1, 1, 0), "sample_rate": 44100})


def test_progress_is_reported_and_cancel_interrupts(model):
    import comfy.model_management as mm
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        encode(model, audio(18.0, channels=1, batch=1), mode="windows")
        assert calls and calls[-1] == (9, 9) and len(calls) >= 2  # chunks of 8 windows: 8, then 9
        mm.interrupt_current_processing(True)
        started = time.time()
        with pytest.raises(mm.InterruptProcessingException):
            encode(model, audio(18.0, channels=1, batch=1), mode="windows")
        assert time.time() - started < 30
        assert not mm.processing_interrupted()
    finally:
        mm.interrupt_current_processing(False)
        comfy.utils.set_progress_bar_global_hook(None)


def test_text_encode_gives_one_conditioning_per_window(model, folders):
    node = pack_module("text_encode").AudioTokenTextEncode
    tokens, count = encode(model, audio(5.0), mode="windows")
    clip = small_sd1_clip([str(folders["embeddings"])])
    cond = node.execute(clip, tokens, "a photo of (<audio>:1.2)")[0]
    assert cond[0][0].shape == (count, 77, 768) and cond[0][1]["pooled_output"].shape == (count, 768)
    assert node.validate_inputs(text="no placeholder").startswith("The prompt has no <audio>")
    assert node.validate_inputs(text="a <audio>") is True


def test_blend_mixes_and_broadcasts(model):
    blend = pack_module("blend")
    a, _ = encode(model, audio(3.0, batch=1, seed=1))
    b, _ = encode(model, audio(3.0, batch=2, seed=2))
    only_a = blend.AudioTokenBlend.execute(a, b, 0.0, 1.0)[0]
    assert only_a.batch_size == 2
    torch.testing.assert_close(only_a.tokens["l"], a.tokens["l"].expand(2, -1, -1))
    half = blend.AudioTokenBlend.execute(a, b, 0.5, 2.0)[0]
    torch.testing.assert_close(half.tokens["l"], a.tokens["l"] + b.tokens["l"])
    c, _ = encode(model, audio(3.0, batch=3, seed=3))
    with pytest.raises(ValueError, match="B holds 3"):
        blend.AudioTokenBlend.execute(b, c, 0.5, 1.0)


def test_save_embedding_writes_textual_inversion_file(model, folders):
    import safetensors.torch

    save = pack_module("save_embedding").AudioTokenSaveEmbedding
    tokens, _ = encode(model, audio(3.0))
    out = save.execute(tokens, "my_sound", 1, True)
    assert out[0] == "embedding:my_sound"
    saved = safetensors.torch.load_file(str(folders["embeddings"] / "my_sound.safetensors"))
    assert set(saved) == {"clip_l"}
    torch.testing.assert_close(saved["clip_l"], tokens.tokens["l"][1])
    with pytest.raises(FileExistsError):
        save.execute(tokens, "my_sound", 0, False)
    with pytest.raises(ValueError, match="batch_index 5"):
        save.execute(tokens, "other", 5, True)
    assert "not usable" in save.validate_inputs(name="bad name")
