"""Wav2CLIP's spectrogram in plain torch against ``torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)``,
live where torchaudio is installed and through the golden fixture everywhere (tests/fixtures/torchaudio/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train.evaluate.wav2clip_model import AudioResNet, Spectrogram, wav2clip_from_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "torchaudio" / "front_end.safetensors"
TOL = 1e-6  # max|ours - ref| / max|ref|; measured: identical (the same stft call and |X| ** 2)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.fixture(scope="module")
def reference():
    torchaudio = pytest.importorskip("torchaudio")
    return torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)


@pytest.mark.parametrize("shape", [(300,), (16001,), (2, 16000), (3, 1, 5003), (2, 160_000)])
def test_equals_torchaudio(reference, shape):
    wave = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 0.2
    ref = reference(wave)
    assert rel_err(Spectrogram()(wave), ref) <= TOL


def test_float64_and_window_equal_torchaudio(reference):
    wave = torch.randn(2, 8001, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours, ref = Spectrogram().double(), reference.double()
    assert torch.equal(ours.window, ref.window)
    assert rel_err(ours(wave), ref(wave)) <= 1e-12
    reference.float()


def test_golden(golden):
    ours = Spectrogram()(golden["wave"])
    assert ours.shape == (257, 6)
    assert rel_err(ours, golden["spectrogram"]) <= TOL


def test_batched_rows_equal_each_row_alone(golden):
    wave = golden["wave"]
    batch = torch.stack([wave, 0.5 * wave, wave.flip(0)])
    spec = Spectrogram()(batch)
    assert spec.shape == (3, 257, 6)
    for row in range(3):
        assert torch.allclose(spec[row], Spectrogram()(batch[row]), rtol=1e-6, atol=0)


def test_released_checkpoints_window_key_still_loads():
    """Wav2CLIP.pt carries the spectrogram's window buffer (audio_encoder.spectrogram.window): it must load."""
    from train.evaluate.wav2clip_model import Wav2CLIP

    torch.manual_seed(0)
    state = Wav2CLIP(width=4, mlp_units=[32, 32, 16]).state_dict()
    assert "audio_encoder.spectrogram.window" in state
    assert torch.equal(state["audio_encoder.spectrogram.window"], torch.hann_window(512))
    model = wav2clip_from_state_dict(state)
    assert isinstance(model.audio_encoder, AudioResNet)
    out = model(torch.randn(2, 16000) * 0.1)
    assert out.shape == (2, 16) and torch.isfinite(out).all()


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FIXTURES))
