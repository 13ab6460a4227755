import math

import numpy as np
import pytest
import torch

from audiotoken_core.audio import (
    count_windows,
    iter_windows,
    prepare_audio,
    take_window,
)

SR = 16_000


def test_layouts_give_batch_by_time():
    t = torch.randn(SR)
    assert prepare_audio(t, SR).shape == (1, SR)
    assert prepare_audio(t[None].repeat(2, 1), SR).shape == (1, SR)
    assert prepare_audio(torch.randn(3, 2, SR), SR).shape == (3, SR)


def test_channels_are_averaged():
    left, right = torch.ones(100), -torch.ones(100) * 0.5
    out = prepare_audio(torch.stack([left, right]), SR)
    assert torch.allclose(out, torch.full((1, 100), 0.25))


def test_six_channels_downmix_then_resample_matches_reverse_order():
    from audiotoken_core.resample import resample

    wave = torch.randn(6, 48_000)
    out = prepare_audio(wave, 48_000)
    ref = resample(wave, 48_000, SR).mean(0, keepdim=True)
    assert out.shape == (1, SR)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_length(rate):
    out = prepare_audio(torch.randn(1, rate * 2), rate)
    assert abs(out.shape[-1] - 2 * SR) <= 1
    assert out.dtype == torch.float32


def test_integer_pcm_is_scaled():
    i16 = torch.tensor([0, 16384, -32768, 32767], dtype=torch.int16)
    out = prepare_audio(i16, SR)
    assert torch.allclose(out[0], torch.tensor([0.0, 0.5, -1.0, 32767 / 32768]))
    i32 = np.array([2**30, -(2**31)], dtype=np.int32)
    assert torch.allclose(prepare_audio(i32, SR)[0], torch.tensor([0.5, -1.0]))


def test_unsigned_8bit_pcm_is_offset_binary():
    u8 = torch.tensor([128, 255, 0, 192], dtype=torch.uint8)
    out = prepare_audio(u8, SR)[0]
    assert torch.allclose(out, torch.tensor([0.0, 127 / 128, -1.0, 0.5]))


def test_float64_accepted():
    out = prepare_audio(np.zeros(400, dtype=np.float64), SR)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("bad", [torch.zeros(0), torch.zeros(2, 0), torch.zeros(1, 2, 0)])
def test_empty_audio_is_an_error(bad):
    with pytest.raises(ValueError, match="empty"):
        prepare_audio(bad, SR)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_samples_are_an_error(value):
    wave = torch.zeros(1000)
    wave[10] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        prepare_audio(wave, SR)


def test_silence_is_valid():
    assert torch.count_nonzero(prepare_audio(torch.zeros(2, SR), 44100)) == 0


@pytest.mark.parametrize("rate", [0, -5, 1.5, None])
def test_bad_sample_rate(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        prepare_audio(torch.zeros(10), rate)


def test_bad_rank():
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        prepare_audio(torch.zeros(1, 1, 1, 10), SR)


def test_window_inside_the_clip():
    wave = torch.arange(5 * SR, dtype=torch.float32)[None]
    out = take_window(wave, 1.0, 2.0)
    assert torch.equal(out[0], torch.arange(SR, 3 * SR, dtype=torch.float32))


def test_short_clip_is_tiled_like_the_official_loader():
    clip = torch.randn(1, 3 * SR)
    out = take_window(clip, 0.0, 10.0)
    expected = np.tile(clip.numpy(), 4)[:, : 10 * SR]  # official: np.tile then cut to 10 s
    assert out.shape == (1, 10 * SR)
    assert np.array_equal(out.numpy(), expected)


def test_ten_millisecond_clip_is_tiled_to_the_window():
    clip = torch.randn(1, 160)
    out = take_window(clip, 0.0, 10.0)
    assert out.shape == (1, 10 * SR)
    assert torch.equal(out[0, 160:320], clip[0])


def test_zero_padding_when_not_tiling():
    clip = torch.ones(1, SR)
    out = take_window(clip, 0.5, 1.0, tile=False)
    assert out[0, : SR // 2].eq(1).all() and out[0, SR // 2 :].eq(0).all()


def test_window_past_the_end_is_an_error():
    with pytest.raises(ValueError, match="only 1.00 s long"):
        take_window(torch.zeros(1, SR), 1.0, 1.0)


@pytest.mark.parametrize("dur", [0, -1, float("nan")])
def test_bad_window_length(dur):
    with pytest.raises(ValueError, match="window length"):
        take_window(torch.zeros(1, SR), 0.0, dur)


def test_consecutive_windows():
    wave = torch.arange(25 * SR, dtype=torch.float32)[None]
    assert count_windows(wave.shape[-1], 10.0) == 3  # 10 + 10 + a 5 s tail
    wins = torch.stack(list(iter_windows(wave, 10.0)), dim=1)
    assert wins.shape == (1, 3, 10 * SR)
    assert torch.equal(wins[0, 1], wave[0, 10 * SR : 20 * SR])
    # the 5 s tail is tiled from its own content
    assert torch.equal(wins[0, 2, : 5 * SR], wins[0, 2, 5 * SR :])


def test_tiny_tail_is_dropped_and_short_audio_gives_one_window():
    assert count_windows(int(20.5 * SR), 10.0) == 2
    assert count_windows(3 * SR, 10.0) == 1
    assert count_windows(10 * SR, 10.0) == 1


def test_overlapping_windows_and_offset():
    n = 30 * SR
    assert count_windows(n, 10.0, hop_s=5.0) == 5
    assert count_windows(n, 10.0, offset_s=5.0) == 3


def test_hour_long_audio_is_windowed_lazily():
    # one hour at 16 kHz: iterating must not copy the recording, each window is a view
    wave = torch.zeros(1, 3600 * SR)
    assert count_windows(wave.shape[-1], 10.0) == 360
    first = next(iter_windows(wave, 10.0))
    assert first.untyped_storage().data_ptr() == wave.untyped_storage().data_ptr()
    assert math.isclose(first.shape[-1] / SR, 10.0)


def test_a_window_past_the_end_repeats_its_own_sound_as_a_tail_window_does():
    wave = torch.arange(int(3.5 * SR), dtype=torch.float32)[None]
    tail = list(iter_windows(wave, 1.0))[-1]
    assert torch.equal(take_window(wave, 3.0, 1.0), tail)
    assert torch.equal(tail[0, SR // 2 :], wave[0, 3 * SR :])
