"""``audiotoken_core.resample`` against torchaudio's ``functional.resample`` (defaults), live where torchaudio is
installed and through the golden fixtures everywhere (tests/fixtures/torchaudio/README.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiotoken_core.resample import output_length, resample, sinc_kernel

RATES = (8000, 11025, 22050, 32000, 44100, 48000, 96000)
FIXTURES = Path(__file__).parent / "fixtures" / "torchaudio" / "front_end.safetensors"
# max|ours - ref| / max|ref|; measured up to ~2.4e-7 in float32 (ours sums the taps in another order).
TOL = 1e-6


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def noise(*shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return (torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.3).to(dtype)


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FIXTURES))


@pytest.fixture(scope="module")
def AF():
    return pytest.importorskip("torchaudio.functional")


# Live comparisons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("samples", [1, 2, 7, 101, 1001, 4097, 48_001])
def test_equals_torchaudio_to_16k(AF, rate, samples):
    """Odd lengths, and clips shorter than one filter (every length up to 101 is, at 11.025 kHz: 455 taps)."""
    wave = noise(2, samples, seed=rate + samples)
    ref = AF.resample(wave, rate, 16000)
    ours = resample(wave, rate, 16000)
    assert ours.shape == ref.shape == (2, output_length(samples, rate, 16000))
    assert rel_err(ours, ref) <= TOL


@pytest.mark.parametrize("rate", [44100, 48000])
def test_ten_seconds_equal_torchaudio_including_the_length_quirk(AF, rate):
    wave = noise(rate * 10, seed=rate)
    ref = AF.resample(wave, rate, 16000)
    ours = resample(wave, rate, 16000)
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= TOL


@pytest.mark.parametrize("orig, new", [(16000, 22050), (16000, 44100), (16000, 48000), (22050, 44100),
                                       (44100, 48000), (48000, 44100), (16000, 8000), (37800, 16000)])
def test_other_ratios_equal_torchaudio(AF, orig, new):
    wave = noise(3, 3001, seed=orig + new)
    ref = AF.resample(wave, orig, new)
    assert rel_err(resample(wave, orig, new), ref) <= TOL


def test_batched_layouts_equal_torchaudio(AF):
    wave = noise(2, 3, 5003, seed=1)
    ref = AF.resample(wave, 44100, 16000)
    ours = resample(wave, 44100, 16000)
    assert ours.shape == ref.shape == (2, 3, output_length(5003, 44100, 16000))
    assert rel_err(ours, ref) <= TOL
    # Non-contiguous input (channels last, as a decoder may hand it over).
    interleaved = noise(5003, 2, seed=2).T
    assert rel_err(resample(interleaved, 48000, 16000), AF.resample(interleaved, 48000, 16000)) <= TOL


def test_float64_equals_torchaudio(AF):
    wave = noise(2, 4001, seed=3, dtype=torch.float64)
    for rate in (44100, 22050, 8000):
        ours, ref = resample(wave, rate, 16000), AF.resample(wave, rate, 16000)
        assert ours.dtype == torch.float64
        assert rel_err(ours, ref) <= 1e-12


def test_filter_taps_are_torchaudios(AF):
    import torchaudio.functional.functional as impl

    for orig, new in [(441, 160), (3, 1), (1, 2), (6, 1)]:
        ref, ref_width = impl._get_sinc_resample_kernel(orig, new, 1, dtype=torch.float32)
        taps, width, _ = sinc_kernel(orig, new)
        assert width == ref_width and torch.equal(taps, ref[:, 0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_closer_to_float64_than_torchaudio(AF, dtype):
    """torchaudio builds the filter in the input's dtype, which rounds away its small taps (float16: 6e-2 off,
    bfloat16: 0.9); here it is built in float32 and only applied in half precision."""
    wave = noise(44100, seed=4, dtype=dtype)
    exact = AF.resample(wave.double(), 44100, 16000)
    ours, ref = resample(wave, 44100, 16000), AF.resample(wave, 44100, 16000)
    assert ours.dtype == dtype and ours.shape == ref.shape
    assert rel_err(ours.double(), exact) < rel_err(ref.double(), exact)
    assert rel_err(ours.double(), exact) <= (2e-3 if dtype == torch.float16 else 2e-2)


# Golden fixtures (run without torchaudio too) --------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_golden_to_16k(golden, rate):
    wave = golden["wave"]
    assert rel_err(resample(wave[:1001], rate, 16000), golden[f"resample_{rate}"]) <= TOL
    # 11 samples: shorter than the filter at every rate.
    assert rel_err(resample(wave[:11], rate, 16000), golden[f"resample_short_{rate}"]) <= TOL


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_golden_from_16k(golden, rate):
    assert rel_err(resample(golden["wave"][:301], 16000, rate), golden[f"upsample_{rate}"]) <= TOL


def test_golden_batched_rows_and_float64(golden):
    wave = golden["wave"][:1001]
    batch = torch.stack([wave, -wave, 0.5 * wave])[:, None]  # [3, 1, T]
    ours = resample(batch, 44100, 16000)
    ref = golden["resample_44100"]
    assert ours.shape == (3, 1, ref.shape[0])
    for row, scale in zip(ours[:, 0], (1.0, -1.0, 0.5)):
        assert rel_err(row, scale * ref) <= TOL
    # torchaudio's float32 filter is itself computed in float32 (its taps are ~4e-6 off the float64 ones at
    # 441:160), so a float64 run agrees with the float32 reference to that, not to float32 rounding.
    wide = resample(wave.double(), 44100, 16000)
    assert wide.dtype == torch.float64 and rel_err(wide.float(), ref) <= 1e-5


# Properties ------------------------------------------------------------------------------------------------


def test_same_rate_is_the_input():
    wave = noise(2, 100)
    assert resample(wave, 16000, 16000) is wave


@pytest.mark.parametrize("rate", RATES)
def test_output_length_is_near_the_exact_ratio(rate):
    for samples in (1, 11, 1001, rate * 10, rate * 600 + 7):
        n = output_length(samples, rate, 16000)
        assert abs(n - samples * 16000 / rate) <= 1
    assert resample(noise(rate // 10 + 3), rate, 16000).shape[-1] == output_length(rate // 10 + 3, rate, 16000)


def test_a_tone_below_the_cutoff_survives_and_one_above_is_removed():
    t = torch.arange(44100 * 2, dtype=torch.float64) / 44100
    kept = resample(torch.sin(2 * math.pi * 1000 * t).float(), 44100, 16000)
    removed = resample(torch.sin(2 * math.pi * 12000 * t).float(), 44100, 16000)
    middle = slice(1000, -1000)  # away from the zero-padded edges
    assert kept[middle].abs().max() == pytest.approx(1.0, abs=2e-3)
    assert removed[middle].abs().max() < 3e-3  # measured 1.8e-3: a 6-crossing Hann sinc stops ~55 dB


def test_float_rates_that_are_integers_are_accepted():
    wave = noise(1001)
    assert torch.equal(resample(wave, 44100.0, 16000.0), resample(wave, 44100, 16000))


@pytest.mark.parametrize("bad", [0, -16000, 44100.5, True, "44100", None])
def test_bad_rates_are_rejected(bad):
    with pytest.raises(ValueError, match="positive integer"):
        resample(noise(100), bad, 16000)


def test_integer_waveforms_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        resample(torch.zeros(100, dtype=torch.int16), 44100, 16000)


def test_gradients_flow():
    wave = noise(2, 999).requires_grad_()
    resample(wave, 48000, 16000).sum().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu(golden):
    wave = golden["wave"][:1001]
    for rate in RATES:
        ours = resample(wave.cuda(), rate, 16000)
        assert ours.device.type == "cuda"
        assert rel_err(ours.cpu(), golden[f"resample_{rate}"]) <= TOL
