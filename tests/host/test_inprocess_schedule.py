"""AudioToken Schedule called in-process: one token set per frame, keyframes for Text Encode, loudness, errors."""

from __future__ import annotations

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
    return pack_module("model_loader").AudioTokenModelLoader.execute(EMBEDDER, BEATS, "auto")[0]


def sound(seconds: float = 3.0, rate: int = 44100, channels: int = 2, batch: int = 1) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"waveform": torch.randn(batch, channels, int(seconds * rate), generator=g) * 0.1, "sample_rate": rate}


def schedule(model, audio, **kw):
    node = pack_module("schedule").AudioTokenSchedule
    return node.execute(model, audio, **{"fps": 8.0, "frames": 0, "window_seconds": 1.0, **kw})


def test_audio_tokens_have_one_row_per_frame_and_carry_the_keyframes(model):
    out = schedule(model, sound(3.0))
    tokens, frames, loudness = out[0], out[1], out[2]
    assert frames == tokens.batch_size == 24  # 3 s at 8 fps
    assert tokens.tokens["l"].shape == (24, 1, 768) and tokens.tokens["l"].dtype == torch.float32
    assert tokens.tokens["l"].device.type == "cpu" and torch.isfinite(tokens.tokens["l"]).all()
    keys = tokens.keyframes
    assert keys.schedule.n_frames == 24 and keys.schedule.n_keys == 7  # every 0.5 s up to the 2.875 s frame
    assert keys.tokens["l"].shape == (7, 1, 768) and keys.tokens["l"].device.type == "cpu"
    torch.testing.assert_close(tokens.tokens["l"], keys.schedule.interpolate(keys.tokens["l"]))
    assert len(loudness) == 24 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in loudness)
    assert max(loudness) == pytest.approx(1.0)
    text = out.ui.as_dict()["text"][0]
    assert "24 frames at 8 fps" in text and "7 keyframes every 0.5 s" in text
    assert tokens.info["mode"] == "schedule" and tokens.info["frames"] == 24


def test_frames_start_and_errors(model):
    tokens, frames = schedule(model, sound(3.0), frames=8, start_seconds=1.0)[:2]
    assert frames == tokens.batch_size == 8
    with pytest.raises(ValueError, match="16 frames fit"):
        schedule(model, sound(3.0), frames=20, start_seconds=1.0)
    with pytest.raises(ValueError, match="holds 2 sounds"):
        schedule(model, sound(3.0, batch=2))
    with pytest.raises(ValueError, match="empty"):
        schedule(model, {"waveform": torch.zeros(1, 1, 0), "sample_rate": 44100})
    node = pack_module("schedule").AudioTokenSchedule
    assert "align must be one of centred, trailing" in node.validate_inputs(align="center")
    assert node.validate_inputs(align="trailing") is True


def test_schema_has_tooltips_and_a_float_list_output():
    schema = pack_module("schedule").AudioTokenSchedule.define_schema()
    assert schema.category == "conditioning/audiotoken" and schema.display_name == "AudioToken Schedule"
    assert all(i.tooltip for i in schema.inputs) and all(o.tooltip for o in schema.outputs)
    assert [o.is_output_list for o in schema.outputs] == [False, False, True]


def test_text_encode_makes_one_conditioning_per_frame_from_one_plan(model, folders, monkeypatch):
    """One plan of the encoders' routes serves the size check, the splice and the preview."""
    splice = pack_module("splice")
    node = pack_module("text_encode").AudioTokenTextEncode
    tokens, frames = schedule(model, sound(2.0, rate=16000, channels=1), frames=6, smoothing=0.5)[:2]
    clip = small_sd1_clip([str(folders["embeddings"])])
    listed, real = [], splice.clip_encoders
    monkeypatch.setattr(splice, "clip_encoders", lambda c: listed.append(c) or real(c))
    out = node.execute(clip, tokens, "a photo of <audio>")
    cond = out[0]
    assert cond[0][0].shape == (frames, 77, 768) and cond[0][1]["pooled_output"].shape == (frames, 768)
    assert listed == [clip] and out.ui.as_dict()["text"][0].startswith("l (768): audio token (1 vector)")


def test_progress_is_reported_and_cancel_interrupts(model):
    import comfy.model_management as mm
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        schedule(model, sound(6.0, rate=16000, channels=1))  # 11 distinct 1 s windows: chunks of 8, then 11
        assert calls[-1] == (11, 11) and len(calls) >= 2
        mm.interrupt_current_processing(True)
        with pytest.raises(mm.InterruptProcessingException):
            schedule(model, sound(6.0, rate=16000, channels=1))
        assert not mm.processing_interrupted()
    finally:
        mm.interrupt_current_processing(False)
        comfy.utils.set_progress_bar_global_hook(None)


def test_keyframes_carry_what_beats_heard_and_text_encode_travels_between_the_words(model, folders):
    out = schedule(model, sound(2.0, rate=16000, channels=1), frames=6)
    tokens = out[0]
    keys = tokens.keyframes
    assert len(tokens.heard.words) == keys.schedule.n_keys == tokens.heard.probs.shape[0]
    assert "Heard:\n0" in out.ui.as_dict()["text"][0]

    # An `h` token fits no SD1 encoder, so each keyframe's words take the placeholder's place, then travel.
    types = pack_module("types")
    words = ["dog barking", "siren"][: keys.schedule.n_keys] + ["rain"] * max(0, keys.schedule.n_keys - 2)
    h_keys = torch.randn(keys.schedule.n_keys, 1, 1024) * 0.02
    scheduled = types.AudioTokens({"h": keys.schedule.interpolate(h_keys)}, heard=types.HeardRows(words),
                                  keyframes=types.KeyframeTokens({"h": h_keys}, keys.schedule))
    clip = small_sd1_clip([str(folders["embeddings"])])
    cond = pack_module("text_encode").AudioTokenTextEncode.execute(clip, scheduled, "a photo of <audio>")[0]
    per_key = torch.cat([clip.encode_from_tokens_scheduled(clip.tokenize(f"a photo of {w}"))[0][0] for w in words])
    torch.testing.assert_close(cond[0][0], keys.schedule.interpolate(per_key), rtol=1e-5, atol=1e-5)


def test_blend_keeps_a_schedule_a_schedule(model):
    blend = pack_module("blend").AudioTokenBlend
    scheduled = schedule(model, sound(2.0, rate=16000, channels=1), frames=6)[0]
    steady = pack_module("encode").AudioTokenEncode.execute(model, sound(1.0, rate=16000, channels=1))[0]
    mixed = blend.execute(scheduled, steady, 0.25, 1.1)[0]
    keys = mixed.keyframes
    assert keys is not None and keys.schedule is scheduled.keyframes.schedule
    expected = 1.1 * (0.75 * scheduled.keyframes.tokens["l"] + 0.25 * steady.tokens["l"])
    torch.testing.assert_close(keys.tokens["l"], expected)
    # mixing keyframes then travelling equals travelling then mixing: the blend is linear
    torch.testing.assert_close(mixed.tokens["l"], keys.schedule.interpolate(keys.tokens["l"]), rtol=1e-5, atol=1e-6)
    assert len(mixed.heard.words) == keys.schedule.n_keys  # each keyframe's words with the steady sound's
    assert all(steady.heard.words[0].split(", ")[0] in w for w in mixed.heard.words if steady.heard.words[0])
    both = blend.execute(scheduled, scheduled, 0.5, 1.0)[0]
    torch.testing.assert_close(both.keyframes.tokens["l"], scheduled.keyframes.tokens["l"])
    other = schedule(model, sound(2.0, rate=16000, channels=1), frames=6, hop_seconds=0.25)[0]
    assert blend.execute(scheduled, other, 0.5, 1.0)[0].keyframes is None  # different keyframes: per frame only


def test_blend_carries_what_beats_heard_on_both_sides():
    blend = pack_module("blend")
    types = pack_module("types")
    assert blend.blend_words(["dog, bark"], ["siren, dog"], 0.5) == ["dog, bark, siren"]
    assert blend.blend_words(["dog"], ["siren"], 0.0) == ["dog"] and blend.blend_words(["dog"], ["siren"], 1.0) == ["siren"]
    assert blend.blend_words(None, ["siren"], 0.3) == ["siren"]
    assert blend.blend_words(["a", "b"], ["c"], 0.5) == ["a, c", "b, c"]
    assert blend.blend_words(["a", "b"], ["c", "d", "e"], 0.5) is None
    a = types.AudioTokens({"l": torch.zeros(2, 1, 8)}, heard=types.HeardRows(["dog", "cat"]))
    b = types.AudioTokens({"l": torch.ones(1, 1, 8)}, heard=types.HeardRows(["rain"]))
    assert blend.AudioTokenBlend.execute(a, b, 0.5, 1.0)[0].heard.words == ["dog, rain", "cat, rain"]
    three = types.AudioTokens({"l": torch.ones(3, 1, 8)})
    # a single sound's words pair with every row, as its tokens do
    assert blend.AudioTokenBlend.execute(b, three, 0.5, 1.0)[0].heard.words == ["rain"] * 3
    with pytest.raises(ValueError, match="2 rows of what BEATs heard for 1 token sets"):
        types.AudioTokens({"l": torch.ones(1, 1, 8)}, heard=types.HeardRows(["a", "b"]))


def test_heard_over_time_merges_runs_and_stays_short():
    heard = pack_module("heard")
    assert heard.heard_over_time(["dog", "dog", "", "siren"], [0.0, 0.5, 1.0, 1.5]) == \
        "0–0.5 s: dog\n1 s: nothing clear\n1.5 s: siren"
    many = heard.heard_over_time(["a", "b"] * 30, [k * 0.5 for k in range(60)], most=5)
    assert many.count("\n") == 5 and many.endswith("… and 55 more changes")
