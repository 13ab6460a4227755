"""Record torchaudio's front-end outputs as golden fixtures: tests/fixtures/torchaudio/front_end.safetensors.

    python scripts/make_torchaudio_fixtures.py   (in a venv with torchaudio; the file was made with 2.9.1)

The pack computes resampling, Kaldi fbank and Wav2CLIP's spectrogram in plain torch; the tests compare them
with torchaudio where it is installed and with this file everywhere (the newest-torch CI leg has no
torchaudio). torchaudio is imported here only, as the reference. tests/fixtures/torchaudio/README.md lists the
tensors and the calls that made them.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torchaudio
import torchaudio.functional as AF
from safetensors.torch import save_file
from torchaudio.compliance import kaldi

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torchaudio" / "front_end.safetensors"
SEED = 17
WAVE_SAMPLES = 2001  # odd, 11 fbank frames, 6 spectrogram frames
RESAMPLE_SAMPLES = 1001  # odd, longer than every filter below
SHORT_SAMPLES = 11  # shorter than the resampling filter at every rate (15 taps at 8 kHz, 455 at 11.025 kHz)
UPSAMPLE_SAMPLES = 301
RATES = (8000, 11025, 22050, 32000, 44100, 48000, 96000)
UPSAMPLE_RATES = (22050, 44100, 48000)  # 16 kHz up to these (the GPU suite makes 44.1 kHz input this way)


def make_wave() -> torch.Tensor:
    """A 440 Hz tone in noise, at 0.35 peak-ish: int16-scaled by the fbank, so kaldi sees realistic levels."""
    gen = torch.Generator().manual_seed(SEED)
    n = torch.arange(WAVE_SAMPLES, dtype=torch.float64)
    tone = 0.3 * torch.sin(2 * math.pi * 440 * n / 16000)
    return (tone + 0.05 * torch.randn(WAVE_SAMPLES, generator=gen, dtype=torch.float64)).to(torch.float32)


def main() -> int:
    wave = make_wave()
    tensors = {"wave": wave}
    for rate in RATES:
        tensors[f"resample_{rate}"] = AF.resample(wave[:RESAMPLE_SAMPLES], rate, 16000).contiguous()
        tensors[f"resample_short_{rate}"] = AF.resample(wave[:SHORT_SAMPLES], rate, 16000).contiguous()
    for rate in UPSAMPLE_RATES:
        tensors[f"upsample_{rate}"] = AF.resample(wave[:UPSAMPLE_SAMPLES], 16000, rate).contiguous()
    # BEATs' settings; the [128, 256] banks are 98% zeros, so each row's contiguous nonzero run is stored. Some
    # low triangles are narrower than the 31.25 Hz bin spacing and hold no bin at all: a run of 0.
    banks, _ = kaldi.get_mel_banks(128, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    first, count, values = [], [], []
    for row in banks:
        nz = row.nonzero().flatten()
        lo, hi = (int(nz.min()), int(nz.max()) + 1) if len(nz) else (0, 0)
        assert bool(row[lo:hi].ne(0).all()), "a mel triangle with a zero inside"
        first.append(lo)
        count.append(hi - lo)
        values.append(row[lo:hi])
    tensors["mel_first"] = torch.tensor(first, dtype=torch.int64)
    tensors["mel_count"] = torch.tensor(count, dtype=torch.int64)
    tensors["mel_values"] = torch.cat(values).to(torch.float32)
    tensors["fbank"] = kaldi.fbank(
        wave[None] * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10
    ).contiguous()
    tensors["spectrogram"] = torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)(wave).contiguous()
    meta = {
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "seed": str(SEED),
        "made_by": "scripts/make_torchaudio_fixtures.py",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT), metadata=meta)
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(tensors)} tensors, torchaudio {torchaudio.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
