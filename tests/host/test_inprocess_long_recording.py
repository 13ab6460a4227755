"""A long recording into Schedule -> Text Encode: refused at once with its size, or run with progress on both nodes."""

from __future__ import annotations

import time

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS, EMBEDDER  # noqa: E402
from inprocess import pack_module, small_sd1_clip  # noqa: E402

HOUR_S = 3600


@pytest.fixture(scope="module")
def model(folders):
    return pack_module("model_loader").AudioTokenModelLoader.execute(EMBEDDER, BEATS, "auto")[0]


@pytest.fixture
def progress_calls():
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    yield calls
    comfy.utils.set_progress_bar_global_hook(None)


def an_hour(rate: int = 44100, channels: int = 2) -> dict:
    """An hour of sound as Load Audio gives it, as a zero-stride view: its size is real, its memory is not."""
    return {"waveform": torch.full((1, 1, 1), 0.1).expand(1, channels, HOUR_S * rate), "sample_rate": rate}


def test_an_hour_with_default_settings_is_refused_before_beats_naming_the_size(model, progress_calls, capsys):
    node = pack_module("schedule").AudioTokenSchedule
    began = time.perf_counter()
    with pytest.raises(ValueError) as err:
        node.execute(model, an_hour())  # every default: fps 8, frames 0 (the whole recording), hop 0.5 s
    took = time.perf_counter() - began
    text = str(err.value)
    assert type(err.value).__name__ == "ScheduleTooLarge"
    assert "28,800 frames at 8 fps (1 h of video)" in text and "14,400 frames" in text
    assert "GB" in text and "Set frames to 14,400 or fewer" in text and "lower fps" in text
    assert progress_calls == []  # no BEATs window ran
    with capsys.disabled():
        print(f"\n1 h recording, Schedule defaults: refused in {took:.3f} s")


def test_text_encode_refuses_a_long_schedule_before_the_text_encoder_runs(folders, progress_calls):
    types = pack_module("types")
    plan = pack_module("audiotoken_core.schedule").plan_schedule(float(HOUR_S), fps=8.0)  # what Schedule's defaults plan for an hour
    keys = torch.zeros(plan.n_keys, 1, 768)
    tokens = types.AudioTokens({"l": plan.interpolate(keys)}, keyframes=types.KeyframeTokens({"l": keys}, plan))
    clip = small_sd1_clip([str(folders["embeddings"])])
    clip.encode_from_tokens_scheduled = lambda *a, **k: pytest.fail("the text encoder ran before the size check")
    with pytest.raises(ValueError, match=r"28,800 frames at 8 fps \(1 h of video\).*at least 10.2 GB"):
        pack_module("text_encode").AudioTokenTextEncode.execute(clip, tokens, "a photo of <audio>")
    assert progress_calls == []


def test_text_encode_checks_the_real_conditioning_before_spreading_it_over_the_frames(folders, monkeypatch):
    """The first check assumes 77 positions of the encoders' widths; a T5 prompt gives 256 or more of 4096 (here a
    stand-in encoder with 512). Once the keyframes are encoded, their real shape is checked before the frames are
    made: the estimate passes (29 MB), the real size (80 frames + 21 keyframes of 512 x 4096 float32, 0.85 GB) is
    refused against a 600 MB machine."""
    types, limits = pack_module("types"), pack_module("limits")
    plan = pack_module("audiotoken_core.schedule").plan_schedule(10.0, fps=8.0)
    assert (plan.n_frames, plan.n_keys) == (80, 21)
    keys = torch.zeros(plan.n_keys, 1, 768)
    tokens = types.AudioTokens({"l": plan.interpolate(keys)}, keyframes=types.KeyframeTokens({"l": keys}, plan))
    clip = small_sd1_clip([str(folders["embeddings"])])
    t5_like = torch.zeros(1, 1, 1).expand(1, 512, 4096)
    clip.encode_from_tokens_scheduled = lambda *a, **k: [[t5_like, {}]]
    monkeypatch.setattr(limits, "conditioning_free_bytes", lambda: 600 * 10**6)
    spread = []
    monkeypatch.setattr(type(plan), "interpolate", lambda self, x: spread.append(x) or x)
    with pytest.raises(ValueError, match=r"80 frames at 8 fps .* would take 0.8 GB \(80 frames \+ 1 x 21 keyframes, "
                                         r"each 512 x 4096 values x 4 bytes\)"):
        pack_module("text_encode").AudioTokenTextEncode.execute(clip, tokens, "a photo of <audio>")
    assert spread == [], "the frames were made before the real size was checked"


def test_an_allowed_stretch_of_an_hour_runs_with_progress_on_both_nodes(model, folders, progress_calls, capsys):
    schedule = pack_module("schedule").AudioTokenSchedule
    encode = pack_module("text_encode").AudioTokenTextEncode
    g = torch.Generator().manual_seed(0)
    hour = {"waveform": (torch.randn(1, 1, 16000, generator=g) * 0.1).repeat(1, 1, HOUR_S), "sample_rate": 16000}
    began = time.perf_counter()
    tokens, frames = schedule.execute(model, hour, frames=240, start_seconds=1800.0)[:2]  # 30 s from the middle
    beats_calls = list(progress_calls)
    keys = tokens.keyframes.schedule.n_keys
    assert frames == 240 and keys == 61
    assert beats_calls and beats_calls[-1] == (keys, keys)  # distinct windows, all of them
    progress_calls.clear()
    clip = small_sd1_clip([str(folders["embeddings"])])
    cond = encode.execute(clip, tokens, "a photo of <audio>")[0]
    took = time.perf_counter() - began
    assert cond[0][0].shape == (240, 77, 768) and torch.isfinite(cond[0][0]).all()
    done = [c[0] for c in progress_calls]  # the host's bar passes on only some updates
    assert len(done) >= 2 and done == sorted(done) and done[-1] > keys // 2 and {c[1] for c in progress_calls} == {keys}
    with capsys.disabled():
        print(f"\n30 s stretch of a 1 h recording (240 frames, {keys} keyframes), Schedule + Text Encode: {took:.1f} s")
