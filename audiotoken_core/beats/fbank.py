"""Kaldi log-mel filterbank front end of BEATs, batched over clips of different lengths."""

from __future__ import annotations

import torch
import torchaudio.compliance.kaldi as kaldi

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
# Statistics of AudioSet fbanks used by the BEATs authors; the extra factor 2 on the std is theirs.
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
# BEATs was trained on int16-scaled audio, so float waveforms in [-1, 1] are scaled back up.
PCM_SCALE = 2**15

_WINDOW = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)  # 400 samples
_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)  # 160 samples


def num_frames(num_samples: int) -> int:
    """Frames kaldi produces with ``snip_edges=True`` (0 when the clip is shorter than one window)."""
    if num_samples < _WINDOW:
        return 0
    return 1 + (num_samples - _WINDOW) // _SHIFT


def num_tokens(num_samples: int, patch_size: int = 16) -> int:
    """Patch tokens BEATs yields for a clip: whole patches over (frames x mel bins), time-major."""
    return (num_frames(num_samples) // patch_size) * (NUM_MEL_BINS // patch_size)


def min_samples(patch_size: int = 16) -> int:
    """Shortest clip that yields at least one patch token."""
    return _WINDOW + (patch_size - 1) * _SHIFT


def valid_lengths(wave: torch.Tensor, padding_mask: torch.Tensor | None) -> list[int]:
    """Per-clip valid sample counts; padding must be a suffix so a clip is a contiguous prefix."""
    batch, total = wave.shape
    if padding_mask is None:
        return [total] * batch
    if padding_mask.shape != wave.shape:
        raise ValueError(f"padding_mask shape {tuple(padding_mask.shape)} does not match waveform {tuple(wave.shape)}")
    mask = padding_mask.to(device="cpu", dtype=torch.bool)
    lengths = (~mask).sum(dim=1)
    positions = torch.arange(total)
    expected = positions[None, :] >= lengths[:, None]
    if not torch.equal(mask, expected):
        raise ValueError("padding_mask must mark a trailing run of padded samples per clip (True = padding)")
    return [int(n) for n in lengths]


def compute_fbank(wave16k: torch.Tensor, lengths: list[int] | None = None) -> tuple[torch.Tensor, list[int]]:
    """Normalised fbank features ``[B, F, 128]`` (float32) and each clip's frame count.

    Each clip is transformed on its own valid samples only: kaldi removes the DC offset and applies
    pre-emphasis per frame, so frames touching padding would differ from the unpadded clip. Frames past a
    clip's end are zero.
    """
    if wave16k.dim() != 2:
        raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(wave16k.shape)}")
    wave = wave16k.to(torch.float32)
    if lengths is None:
        lengths = [wave.shape[1]] * wave.shape[0]
    frames = [num_frames(n) for n in lengths]
    if min(frames, default=0) == 0:
        raise ValueError(f"every clip needs at least {_WINDOW} samples at 16 kHz; lengths are {lengths}")
    out = wave.new_zeros(wave.shape[0], max(frames), NUM_MEL_BINS)
    for i, n in enumerate(lengths):
        feats = kaldi.fbank(
            wave[i : i + 1, :n] * PCM_SCALE,
            num_mel_bins=NUM_MEL_BINS,
            sample_frequency=SAMPLE_RATE,
            frame_length=FRAME_LENGTH_MS,
            frame_shift=FRAME_SHIFT_MS,
        )
        out[i, : feats.shape[0]] = (feats - FBANK_MEAN) / (2 * FBANK_STD)
    return out, frames
