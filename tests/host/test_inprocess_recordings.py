"""What the core RecordAudio node gives goes through the pack as it is, like the same sound from a file.

The browser uploads a recording to temp/audio/ and RecordAudio decodes it with the host's own loader; here the
files are written as a browser writes them (WAV from the frontend's encoder, WebM/Opus from MediaRecorder's
default), at 44.1 and 48 kHz, mono and stereo, from a fraction of a second to minutes, and decoded by the host's
RecordAudio, then encoded by Encode and compared with the same sound handed over directly.
"""

from __future__ import annotations

import math

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS, EMBEDDER  # noqa: E402
from inprocess import pack_module  # noqa: E402

WINDOW_S = 2.0  # short windows: BEATs time grows with the window, not the behaviour


@pytest.fixture(scope="module")
def model(folders):
    return pack_module("model_loader").AudioTokenModelLoader.execute(EMBEDDER, BEATS, "auto")[0]


def sound(seconds: float, rate: int, channels: int) -> torch.Tensor:
    """[C, T] float: a knock-like burst train over a tone, deterministic, well above the silence floor."""
    t = torch.arange(int(seconds * rate)) / rate
    tone = 0.2 * torch.sin(2 * math.pi * 440 * t)
    g = torch.Generator().manual_seed(1)
    bursts = 0.3 * torch.randn(t.shape, generator=g) * (torch.remainder(t, 0.25) < 0.03)
    wave = (tone + bursts).clamp(-1, 1)
    return torch.stack([wave * (0.8 + 0.2 * c) for c in range(channels)])


def write_recording(path, wave: torch.Tensor, rate: int, codec: str) -> None:
    """A file as the browser uploads it: 16-bit PCM WAV, or Opus in WebM (48 kHz, as Opus always is)."""
    import av

    layout = "mono" if wave.shape[0] == 1 else "stereo"
    container = "wav" if codec == "pcm_s16le" else "webm"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate if codec == "pcm_s16le" else 48000, layout=layout)
        fmt = "s16" if codec == "pcm_s16le" else "flt"
        data = (wave * 32767).to(torch.int16) if fmt == "s16" else wave.float()
        if codec != "pcm_s16le" and rate != 48000:
            raise ValueError("write Opus at 48 kHz")
        frame_len = 960
        for start in range(0, data.shape[1], frame_len):
            chunk = data[:, start:start + frame_len].T.contiguous().reshape(1, -1).numpy()
            frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=layout)
            frame.sample_rate = stream.rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def recorded(tmp_path_name: str, wave, rate, codec) -> dict:
    """Upload as the frontend does (temp/audio/<name>) and decode with the host's RecordAudio node."""
    import folder_paths
    from comfy_extras.nodes_audio import RecordAudio

    target = folder_paths.get_temp_directory()
    import os
    os.makedirs(os.path.join(target, "audio"), exist_ok=True)
    write_recording(os.path.join(target, "audio", tmp_path_name), wave, rate, codec)
    node = RecordAudio()
    out = node.execute(f"audio/{tmp_path_name} [temp]") if hasattr(RecordAudio, "define_schema") else \
        node.load(f"audio/{tmp_path_name} [temp]")
    return out[0]


def encode(model, audio, **kw):
    out = pack_module("encode").AudioTokenEncode.execute(model, audio, **{"window_seconds": WINDOW_S, **kw})
    return out[0].tokens["l"].flatten(), out.ui.as_dict()["text"][0]


def cosine(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.mark.parametrize("codec,rate,channels", [("pcm_s16le", 44100, 1), ("pcm_s16le", 48000, 2),
                                                  ("libopus", 48000, 1), ("libopus", 48000, 2)],
                         ids=["wav-44k-mono", "wav-48k-stereo", "webm-opus-mono", "webm-opus-stereo"])
def test_a_recording_encodes_like_the_same_sound_from_a_file(model, codec, rate, channels):
    wave = sound(3.0, rate, channels)
    audio = recorded(f"recording-{codec}-{rate}-{channels}.{'wav' if codec == 'pcm_s16le' else 'webm'}",
                     wave, rate, codec)
    assert audio["sample_rate"] == rate and audio["waveform"].shape[1] == channels
    assert abs(audio["waveform"].shape[-1] / rate - 3.0) < 0.1
    tokens, _ = encode(model, audio)
    reference, _ = encode(model, {"waveform": wave[None], "sample_rate": rate})
    # WAV is the same samples up to 16-bit rounding; Opus is lossy.
    assert cosine(tokens, reference) >= (0.999 if codec == "pcm_s16le" else 0.95)


def test_a_recording_of_minutes_is_encoded_window_by_window(model):
    audio = recorded("recording-long.wav", sound(150.0, 48000, 1), 48000, "pcm_s16le")
    out = pack_module("encode").AudioTokenEncode.execute(model, audio, mode="mean", window_seconds=WINDOW_S)
    assert out[1] == 1 and torch.isfinite(out[0].tokens["l"]).all()


def test_a_recording_shorter_than_half_a_second_is_tiled_and_the_node_says_so(model):
    wave = sound(0.3, 48000, 1)
    audio = recorded("recording-short.wav", wave, 48000, "pcm_s16le")
    tokens, preview = encode(model, audio)
    assert "0.30 s, shorter than the window: repeated to fill 2 s" in preview, preview
    as_file, _ = encode(model, {"waveform": wave[None], "sample_rate": 48000})
    assert cosine(tokens, as_file) >= 0.995  # 16-bit rounding, repeated by the tiling: 0.9986 measured
    # Tiled at 16 kHz after resampling, so a clip tiled beforehand at 48 kHz differs at the seams only.
    tiled = wave.repeat(1, math.ceil(WINDOW_S / 0.3))[:, : int(WINDOW_S * 48000)]
    pre_tiled, _ = encode(model, {"waveform": tiled[None], "sample_rate": 48000})
    assert cosine(tokens, pre_tiled) >= 0.99
    describe = pack_module("describe").AudioTokenDescribe.execute(model, audio, window_seconds=WINDOW_S)
    assert "repeated to fill" in describe.ui.as_dict()["text"][0]


@pytest.mark.parametrize("kind", ["empty", "silent", "opus-silent"])
def test_an_empty_or_silent_recording_is_a_clear_message_and_the_next_one_works(model, kind):
    if kind == "empty":
        audio = {"waveform": torch.zeros(1, 1, 0), "sample_rate": 48000}
    else:
        codec = "libopus" if kind == "opus-silent" else "pcm_s16le"
        audio = recorded(f"recording-{kind}.{'webm' if codec == 'libopus' else 'wav'}",
                         torch.zeros(1, 48000 * 2), 48000, codec)
    for node in ("encode", "describe"):
        cls = getattr(pack_module(node), "AudioTokenEncode" if node == "encode" else "AudioTokenDescribe")
        with pytest.raises(ValueError, match="empty|silent") as err:
            cls.execute(model, audio, window_seconds=WINDOW_S)
        assert "record again" in str(err.value).lower()
    tokens, _ = encode(model, recorded("recording-next.wav", sound(3.0, 48000, 1), 48000, "pcm_s16le"))
    assert torch.isfinite(tokens).all()
