"""Batched ``compute_fbank`` against torchaudio's kaldi.fbank run on each clip alone (the BEATs recipe).

Needs torchaudio, the reference; without it tests/test_fbank_mel.py still checks the features against its
recorded output.
"""

import pytest
import torch

from audiotoken_core.beats.fbank import FBANK_MEAN, FBANK_STD, compute_fbank, min_samples, num_frames

kaldi = pytest.importorskip("torchaudio.compliance.kaldi")

SR = 16000
# On the normalised features; the batched path differs from kaldi.fbank by float32 rounding only (~2e-7 here).
MAX_ABS_DIFF = 1e-4


def reference(clip: torch.Tensor) -> torch.Tensor:
    """What BEATs computes for one clip: kaldi.fbank on int16-scaled float32 audio, then its normalisation."""
    feats = kaldi.fbank(
        clip.to(torch.float32)[None] * 2**15,
        num_mel_bins=128,
        sample_frequency=16000,
        frame_length=25,
        frame_shift=10,
    )
    return (feats - FBANK_MEAN) / (2 * FBANK_STD)


def clip(samples: int, seed: int, scale: float = 0.1) -> torch.Tensor:
    return torch.randn(samples, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("samples", [400, 401, 559, 560, min_samples(), SR, SR + 123, 10 * SR])
def test_single_clip_matches_kaldi(samples):
    wave = clip(samples, samples)
    feats, frames = compute_fbank(wave[None])
    ref = reference(wave)
    assert frames == [num_frames(samples)] == [ref.shape[0]]
    assert feats.shape == (1, ref.shape[0], 128) and feats.dtype == torch.float32
    assert (feats[0] - ref).abs().max().item() <= MAX_ABS_DIFF


def test_batch_of_equal_clips_matches_each_clip_alone():
    wave = torch.stack([clip(3 * SR, seed, scale) for seed, scale in enumerate([0.01, 0.1, 0.5, 1.0])])
    wave[2] += 0.3  # a DC offset, which kaldi removes per frame
    feats, frames = compute_fbank(wave)
    for i in range(len(wave)):
        assert (feats[i] - reference(wave[i])).abs().max().item() <= MAX_ABS_DIFF


def test_silence_hits_the_log_floor():
    feats, _ = compute_fbank(torch.zeros(2, SR))
    floor = (torch.log(torch.tensor(torch.finfo(torch.float32).eps)) - FBANK_MEAN) / (2 * FBANK_STD)
    assert torch.isfinite(feats).all()
    assert torch.allclose(feats, floor.expand_as(feats), rtol=0, atol=1e-6)
    assert (feats[0] - reference(torch.zeros(SR))).abs().max().item() <= MAX_ABS_DIFF


def test_silent_stretch_inside_a_clip():
    wave = clip(2 * SR, 7)
    wave[SR // 2 : SR + SR // 2] = 0.0
    feats, _ = compute_fbank(wave[None])
    assert (feats[0] - reference(wave)).abs().max().item() <= MAX_ABS_DIFF


def test_padded_batch_uses_only_each_clips_valid_samples():
    lengths = [10 * SR, 400, SR, 5 * SR + 77, min_samples()]
    wave = torch.full((len(lengths), max(lengths)), 0.7)  # loud padding: any frame that reads it would show
    for i, n in enumerate(lengths):
        wave[i, :n] = clip(n, 100 + i)
    wave[1, 400:] = float("nan")  # not even NaN padding may leak into a clip's frames
    feats, frames = compute_fbank(wave, lengths)
    assert frames == [num_frames(n) for n in lengths]
    assert feats.shape == (len(lengths), max(frames), 128)
    for i, n in enumerate(lengths):
        ref = reference(wave[i, :n])
        assert (feats[i, : frames[i]] - ref).abs().max().item() <= MAX_ABS_DIFF
        assert torch.all(feats[i, frames[i] :] == 0)


def test_padding_past_the_longest_clip_is_ignored():
    wave = clip(2 * SR, 3)
    padded = torch.cat([wave, torch.ones(1000)])[None]
    feats, frames = compute_fbank(padded, [2 * SR])
    alone, _ = compute_fbank(wave[None])
    assert frames == [num_frames(2 * SR)] and torch.equal(feats, alone)


def test_float64_input_is_computed_in_float32():
    wave = clip(SR, 11).to(torch.float64)
    feats, _ = compute_fbank(wave[None])
    assert feats.dtype == torch.float32
    assert (feats[0] - reference(wave)).abs().max().item() <= MAX_ABS_DIFF
    assert torch.equal(feats, compute_fbank(wave[None].float())[0])


def test_bad_lengths_are_rejected():
    with pytest.raises(ValueError, match="at least 400"):
        compute_fbank(torch.zeros(2, SR), [SR, 399])
    with pytest.raises(ValueError, match="do not fit"):
        compute_fbank(torch.zeros(1, SR), [SR + 1])
    with pytest.raises(ValueError, match="do not fit"):
        compute_fbank(torch.zeros(2, SR), [SR])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_kaldi_on_cpu():
    lengths = [3 * SR, SR + 5]
    wave = torch.zeros(2, 3 * SR)
    for i, n in enumerate(lengths):
        wave[i, :n] = clip(n, 20 + i)
    feats, frames = compute_fbank(wave.cuda(), lengths)
    assert feats.device.type == "cuda"
    for i, n in enumerate(lengths):
        ref = reference(wave[i, :n])
        assert (feats[i, : frames[i]].cpu() - ref).abs().max().item() <= MAX_ABS_DIFF
        assert torch.all(feats[i, frames[i] :] == 0)
