"""Encode, Describe and Schedule at their defaults hear the window the embedder records, and say so."""

from __future__ import annotations

import math

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS, BEATS_DIM  # noqa: E402
from inprocess import pack_module  # noqa: E402

RATE = 16000
RECORDED_S = 4.0


@pytest.fixture(scope="module")
def model(host_assets, tmp_path_factory):
    """The tiny BEATs (with its AudioSet head) and an embedder whose file records 4 s windows."""
    from factories.embedder import write_tiny_embedder

    from audiotoken_core.embedder import EmbedderMeta

    meta = EmbedderMeta(encoder_width=BEATS_DIM, widths={"l": 768}, window_seconds=RECORDED_S)
    path = write_tiny_embedder(tmp_path_factory.mktemp("window") / "embedder_4s.safetensors", 3 * BEATS_DIM,
                               meta=meta)
    return pack_module("runtime").get_model(str(path), str(host_assets["audio_encoders"] / BEATS), "auto")


@pytest.fixture(scope="module")
def sound() -> dict:
    """10 s whose first 4 s (a tone) differ from the rest (noise), so 4 s and 10 s windows hear different things."""
    t = torch.arange(int(RECORDED_S * RATE)) / RATE
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t)
    noise = 0.3 * torch.randn(int((10 - RECORDED_S) * RATE), generator=torch.Generator().manual_seed(0))
    return {"waveform": torch.cat([tone, noise]).view(1, 1, -1), "sample_rate": RATE}


def core_tokens(model, sound, seconds):
    return model.tokenizer.encode(sound["waveform"], RATE, duration_s=seconds).tokens["l"].cpu()


def test_encode_at_its_defaults_gives_the_tokens_of_the_embedders_window(model, sound):
    node = pack_module("encode").AudioTokenEncode
    widget = node.define_schema().inputs[-1]
    assert (widget.id, widget.default) == ("window_seconds", 0.0)
    assert model.window_seconds == RECORDED_S
    for out in (node.execute(model, sound), node.execute(model, sound, "first", 0.0, widget.default)):
        assert torch.equal(out[0].tokens["l"], core_tokens(model, sound, RECORDED_S))
        assert not torch.allclose(out[0].tokens["l"], core_tokens(model, sound, 10.0))
        assert out[0].info["window_seconds"] == RECORDED_S
        assert out.ui.as_dict()["text"][0].splitlines()[-1] == "window 4 s (embedder's)"
    # a workflow that holds 10 means 10 s
    ten = node.execute(model, sound, window_seconds=10.0)
    assert torch.equal(ten[0].tokens["l"], core_tokens(model, sound, 10.0))
    assert ten.ui.as_dict()["text"][0].splitlines()[-1] == "window 10 s"


def test_a_window_below_the_shortest_is_refused_with_the_way_out(model, sound):
    with pytest.raises(ValueError, match=r"window_seconds 0.2 is too short: set 0 for the embedder's window \(4 s\)"):
        pack_module("encode").AudioTokenEncode.execute(model, sound, window_seconds=0.2)


def test_describe_hears_the_embedders_windows(model, sound):
    node = pack_module("describe").AudioTokenDescribe
    out = node.execute(model, sound, mode="windows")
    *lines, window = out.ui.as_dict()["text"][0].splitlines()
    assert window == "window 4 s (embedder's)"
    assert len(out[0]) == 3 and lines[0].startswith("sound 1, 0.0-4.0 s:")
    assert lines[2].startswith("sound 1, 8.0-10.0 s:")
    encoded = pack_module("encode").AudioTokenEncode.execute(model, sound, mode="windows")[0]
    assert out[0] == encoded.heard.words  # Encode's windows, Encode's words


def test_schedule_keyframes_hear_the_embedders_window(model, sound):
    node = pack_module("schedule").AudioTokenSchedule
    out = node.execute(model, sound, fps=2.0, frames=3)
    keys = out[0].keyframes
    assert keys.schedule.window_s == RECORDED_S and out[0].info["window_seconds"] == RECORDED_S
    assert "centred windows of 4 s (embedder's)" in out.ui.as_dict()["text"][0]
    core = model.encode_schedule(sound["waveform"], RATE, fps=2.0, n_frames=3, window_s=RECORDED_S)
    assert torch.equal(keys.tokens["l"], core.keyframes["l"].cpu())
    ten = node.execute(model, sound, fps=2.0, frames=3, window_seconds=10.0)
    assert "centred windows of 10 s\n" in ten.ui.as_dict()["text"][0]
    assert not torch.allclose(ten[0].keyframes.tokens["l"], keys.tokens["l"])
