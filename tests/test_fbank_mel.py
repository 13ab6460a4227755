"""BEATs' fbank without torchaudio: our Kaldi mel banks and features against torchaudio's ``compliance.kaldi``,
live where torchaudio is installed and through the golden fixtures everywhere
(tests/fixtures/torchaudio/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiotoken_core.beats.fbank import FBANK_MEAN, FBANK_STD, NUM_MEL_BINS, compute_fbank, kaldi_mel_banks

FIXTURES = Path(__file__).parent / "fixtures" / "torchaudio" / "front_end.safetensors"
# max|ours - ref| / max|ref| per clip, on kaldi's log-mel energies; measured ~1.3e-7 (float32 rounding of |X|^2
# and of the banded mel product's summation order).
TOL = 1e-6
# Against the golden file, made on another CPU: torch's float32 log there and here can differ in the last bit,
# and a mel-bank weight is (mel - edge) / (bin width in mel), a difference of two values near 2,800 divided by
# about 20, so one bit of the mel scale (2.4e-4) moves a weight by ~1e-5. Measured on an AMD EPYC (AVX512)
# against the file: banks 1.13e-5, features 2.6e-6; torchaudio itself on that CPU equals ours bit for bit.
GOLDEN_BANK_TOL = 5e-5
GOLDEN_TOL = 1e-5
BEATS_BANKS = (NUM_MEL_BINS, 512, 16000.0, 20.0, 0.0)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def log_mel(wave: torch.Tensor) -> torch.Tensor:
    """compute_fbank's features with BEATs' normalisation undone: what kaldi.fbank returns."""
    feats, frames = compute_fbank(wave[None])
    return feats[0, : frames[0]] * (2 * FBANK_STD) + FBANK_MEAN


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FIXTURES))


@pytest.fixture(scope="module")
def kaldi():
    return pytest.importorskip("torchaudio.compliance.kaldi")


def test_mel_banks_equal_torchaudios_bit_for_bit(kaldi):
    ref, _ = kaldi.get_mel_banks(NUM_MEL_BINS, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    ours = kaldi_mel_banks(*BEATS_BANKS)
    assert ours.dtype == torch.float32 and torch.equal(ours, ref)


@pytest.mark.parametrize("bins, fft, rate, low, high", [(23, 512, 16000.0, 20.0, 0.0), (80, 256, 8000.0, 0.0,
                         3800.0), (40, 1024, 44100.0, 60.0, -400.0)])
def test_mel_banks_equal_torchaudios_at_other_settings(kaldi, bins, fft, rate, low, high):
    ref, _ = kaldi.get_mel_banks(bins, fft, rate, low, high, 100.0, -500.0, 1.0)
    assert torch.equal(kaldi_mel_banks(bins, fft, rate, low, high), ref)


@pytest.mark.parametrize("samples", [400, 401, 2001, 16000 + 123, 10 * 16000 + 7])
@pytest.mark.parametrize("scale", [0.01, 1.0])
def test_features_equal_kaldi_fbank(kaldi, samples, scale):
    wave = torch.randn(samples, generator=torch.Generator().manual_seed(samples)) * scale
    ref = kaldi.fbank(wave[None] * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)
    assert rel_err(log_mel(wave), ref) <= TOL


def test_golden_mel_banks(golden):
    ours = kaldi_mel_banks(*BEATS_BANKS)
    ref = torch.zeros(NUM_MEL_BINS, 256)
    for row, (first, count) in enumerate(zip(golden["mel_first"].tolist(), golden["mel_count"].tolist())):
        start = int(golden["mel_count"][:row].sum())
        ref[row, first : first + count] = golden["mel_values"][start : start + count]
    assert int(golden["mel_count"].sum()) == golden["mel_values"].numel()
    assert torch.equal(ours > 0, ref > 0)  # the same triangles, bin for bin
    assert (ours - ref).abs().max() <= GOLDEN_BANK_TOL


def test_golden_features(golden):
    assert rel_err(log_mel(golden["wave"]), golden["fbank"]) <= GOLDEN_TOL


def test_golden_features_in_a_padded_batch(golden):
    """A clip padded in a batch gets the features it gets alone (kaldi.fbank on the clip)."""
    wave = golden["wave"]
    batch = torch.full((2, 3000), 0.5)
    batch[0, : wave.numel()] = wave
    batch[1] = torch.randn(3000, generator=torch.Generator().manual_seed(5)) * 0.1
    feats, frames = compute_fbank(batch, [wave.numel(), 3000])
    ref = golden["fbank"]
    assert frames[0] == ref.shape[0]
    assert rel_err(feats[0, : frames[0]] * (2 * FBANK_STD) + FBANK_MEAN, ref) <= GOLDEN_TOL


def test_triangles_cover_the_range_as_kaldi_lays_them_out():
    banks = kaldi_mel_banks(*BEATS_BANKS)
    assert banks.shape == (128, 256) and banks.min() >= 0 and banks.max() <= 1
    # Centres rise with the bin index; the last triangle reaches up to Nyquist (8 kHz = bin 256, left out).
    peaks = banks.argmax(dim=1)[banks.amax(dim=1) > 0]
    assert torch.all(peaks[1:] >= peaks[:-1])
    assert banks[:, :1].sum() == 0  # 0 Hz is below the 20 Hz low edge
    assert banks[-1, 250:].sum() > 0


def test_bad_mel_settings_are_rejected():
    with pytest.raises(ValueError, match="more than 3"):
        kaldi_mel_banks(3, 512, 16000.0, 20.0, 0.0)
    with pytest.raises(ValueError, match="even FFT"):
        kaldi_mel_banks(128, 511, 16000.0, 20.0, 0.0)
    with pytest.raises(ValueError, match="bad mel range"):
        kaldi_mel_banks(128, 512, 16000.0, 9000.0, 0.0)
