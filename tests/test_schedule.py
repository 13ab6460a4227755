"""Frame schedules: timing against a built recording, BEATs cost independent of fps, smoothing, loudness, errors."""

import math

import pytest
import torch

from audiotoken_core.audio import count_windows, iter_windows, take_window
from audiotoken_core.beats import load_beats
from audiotoken_core.embedder import EmbedderMeta
from audiotoken_core.pipeline import AudioTokenizer
from audiotoken_core.schedule import (
    encode_schedule,
    frame_loudness,
    plan_schedule,
    smooth_keyframes,
    window_offsets,
)
from testkit.beats import write_tiny_official_beats
from factories.embedder import make_tiny_embedder

SR = 16_000
DIM = 32
WINDOW_S = 2.0


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, one_thread):
    path = write_tiny_official_beats(tmp_path_factory.mktemp("beats") / "b.pt", layers=4, dim=DIM, heads=2)
    meta = EmbedderMeta(layers=(2, 3, 4), encoder_width=DIM, widths={"l": 24}, window_seconds=1.0)
    return AudioTokenizer(load_beats(path), make_tiny_embedder(3 * DIM, widths={"l": 24}, meta=meta))


def a_silence_b() -> torch.Tensor:
    """Class-A sound 0-3 s (a 220 Hz tone), silence 3-6 s, class-B sound 6-9 s (noise): `[1, 9 s]` at 16 kHz."""
    t = torch.arange(3 * SR) / SR
    tone = 0.5 * torch.sin(2 * math.pi * 220 * t)
    noise = 0.5 * torch.randn(3 * SR, generator=torch.Generator().manual_seed(0))
    return torch.cat([tone, torch.zeros(3 * SR), noise])[None]


def window_token(tokenizer, wave, start_s: float) -> torch.Tensor:
    """The token of the WINDOW_S window from `start_s`, encoded on its own."""
    return tokenizer.encode(wave, SR, offset_s=start_s, duration_s=WINDOW_S).tokens["l"][0].flatten()


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def frame_at(result, seconds: float) -> torch.Tensor:
    index = int(torch.argmin((result.schedule.frame_times - seconds).abs()))
    assert abs(result.schedule.frame_times[index].item() - seconds) < 1e-9
    return result.frame_tokens()["l"][index].flatten()


# --- the plan ---------------------------------------------------------------------------------------------

def test_plan_puts_frames_at_start_plus_f_over_fps_and_keys_on_their_own_grid():
    s = plan_schedule(9.0, 8, start_s=0.0, hop_s=0.5, window_s=WINDOW_S)
    assert s.n_frames == 72 and s.n_keys == 19  # frames to 8.875 s, keys 0, 0.5, ..., 9.0 cover them
    torch.testing.assert_close(s.frame_times, torch.arange(72, dtype=torch.float64) / 8)
    torch.testing.assert_close(s.key_times, torch.arange(19, dtype=torch.float64) * 0.5)
    assert s.lower[:5].tolist() == [0, 0, 0, 0, 1] and s.alpha[:5].tolist() == [0.0, 0.25, 0.5, 0.75, 0.0]
    late = plan_schedule(9.0, 8, n_frames=16, start_s=2.0)
    assert late.frame_times[0].item() == 2.0 and late.key_times[0].item() == 2.0 and late.n_keys == 5


def test_a_frame_on_a_keyframe_gets_exactly_its_value_even_with_inexact_hops():
    s = plan_schedule(3.0, 30, hop_s=0.1)  # 0.1 has no exact binary value
    on_key = torch.arange(0, s.n_frames, 3)
    assert (s.alpha[on_key] == 0).all()
    keys = torch.randn(s.n_keys, 4)
    assert torch.equal(s.interpolate(keys)[on_key], keys[s.lower[on_key]])


def test_interpolate_is_linear_and_takes_any_trailing_shape():
    s = plan_schedule(2.0, 8, hop_s=0.5)
    keys = torch.randn(s.n_keys, 77, 6, dtype=torch.float64)
    per_frame = s.interpolate(keys)
    assert per_frame.shape == (16, 77, 6) and per_frame.dtype == torch.float64
    torch.testing.assert_close(per_frame[5], 0.75 * keys[1] + 0.25 * keys[2])  # 0.625 s: between 0.5 and 1.0
    pooled = torch.randn(s.n_keys, 6)
    torch.testing.assert_close(s.interpolate(pooled)[2], (pooled[0] + pooled[1]) / 2)
    values = torch.arange(s.n_keys, dtype=torch.float32) * 0.5  # the key times themselves
    torch.testing.assert_close(s.interpolate(values), s.frame_times.float())
    with pytest.raises(ValueError, match="one row per keyframe"):
        s.interpolate(torch.zeros(s.n_keys + 1, 6))


def test_a_single_keyframe_holds_for_every_frame():
    s = plan_schedule(1.0, 4, n_frames=1)
    assert s.n_keys == 1 and s.n_frames == 1
    assert torch.equal(s.interpolate(torch.ones(1, 3)), torch.ones(1, 3))


def test_windows_are_centred_or_trailing_and_slide_inside_the_recording():
    n = 9 * SR
    centred = window_offsets(plan_schedule(9.0, 8, window_s=WINDOW_S), n)
    assert centred[:4].tolist() == [0, 0, 0, int(0.5 * SR)]  # keys at 0, 0.5, 1.0 reach before 0 s
    assert centred[-3:].tolist() == [n - 2 * SR] * 3 and centred[6].item() == 2 * SR  # key 3.0 s: [2, 4]
    trailing = window_offsets(plan_schedule(9.0, 8, window_s=WINDOW_S, align="trailing"), n)
    assert trailing[6].item() == 1 * SR and trailing[:5].tolist() == [0] * 5  # key 3.0 s: [1, 3]


# --- timing on a built recording ---------------------------------------------------------------------------

@pytest.mark.parametrize("align,window_start", [("centred", -WINDOW_S / 2), ("trailing", -WINDOW_S)])
def test_frames_carry_the_token_of_the_sound_playing_at_their_time(tokenizer, align, window_start):
    wave = a_silence_b()
    result = encode_schedule(tokenizer, wave, SR, fps=8, hop_s=0.5, window_s=WINDOW_S, align=align)
    assert result.schedule.n_frames == 72
    at = {"A": 1.5 if align == "centred" else 2.5, "B": 7.5 if align == "centred" else 8.5}
    direct = {name: window_token(tokenizer, wave, t + window_start) for name, t in at.items()}
    assert cos(direct["A"], direct["B"]) < 0.5  # the two sounds are told apart by the encoder
    for name, other in (("A", "B"), ("B", "A")):
        frame = frame_at(result, at[name])
        torch.testing.assert_close(frame, direct[name], rtol=1e-4, atol=1e-5)
        assert cos(frame, direct[name]) > cos(frame, direct[other]) + 0.4


def test_frames_between_keyframes_mix_their_neighbours(tokenizer):
    wave = a_silence_b()
    result = encode_schedule(tokenizer, wave, SR, fps=8, hop_s=0.5, window_s=WINDOW_S)
    keys = result.keyframes["l"]
    torch.testing.assert_close(frame_at(result, 1.625), (0.75 * keys[3] + 0.25 * keys[4]).flatten())
    torch.testing.assert_close(keys[3].flatten(), window_token(tokenizer, wave, 0.5), rtol=1e-4, atol=1e-5)


def test_smoothing_trades_flicker_for_reaction(tokenizer):
    wave = a_silence_b()
    sharp = encode_schedule(tokenizer, wave, SR, fps=8, hop_s=0.5, window_s=WINDOW_S)
    smooth = encode_schedule(tokenizer, wave, SR, fps=8, hop_s=0.5, window_s=WINDOW_S, smoothing_s=1.0)

    def flicker(r):
        return (r.frame_tokens()["l"].diff(dim=0).norm(dim=-1)).sum().item()

    assert flicker(smooth) < 0.8 * flicker(sharp)
    a_token = window_token(tokenizer, wave, 0.5)
    b_token = window_token(tokenizer, wave, 6.5)
    # Still on the right sound in the middle of each, but no longer equal to the window's own token.
    assert cos(frame_at(smooth, 1.5), a_token) > cos(frame_at(smooth, 1.5), b_token) + 0.4
    assert cos(frame_at(smooth, 7.5), b_token) > cos(frame_at(smooth, 7.5), a_token) + 0.4
    assert not torch.allclose(frame_at(smooth, 7.5), b_token, atol=1e-3)


def test_smoothing_keeps_constants_and_zero_is_off():
    ones = torch.ones(7, 1, 3)
    torch.testing.assert_close(smooth_keyframes(ones, 0.5, 2.0), ones)  # ends are not pulled toward zero
    keys = torch.randn(7, 1, 3)
    assert smooth_keyframes(keys, 0.5, 0.0) is keys
    with pytest.raises(ValueError, match="smoothing must be >= 0"):
        smooth_keyframes(keys, 0.5, -1.0)


# --- cost: BEATs windows follow the hop, not the fps --------------------------------------------------------

@pytest.mark.parametrize("fps", [8, 24, 60])
def test_beats_windows_follow_the_hop_not_the_fps(tokenizer, beats_rows, fps):
    duration, hop, window = 6.0, 0.5, 1.0
    progress = []
    result = encode_schedule(tokenizer, torch.randn(1, int(duration * SR)) * 0.1, SR, fps=fps, hop_s=hop,
                             window_s=window, batch_windows=4, progress=lambda d, t: progress.append((d, t)))
    assert result.schedule.n_frames == duration * fps
    assert result.schedule.n_keys == duration / hop + 1
    # The keyframes at 0 s and 6 s slide onto their neighbours' windows, which BEATs hears once: the cost is
    # exactly that of overlapping windows at the same hop.
    assert sum(beats_rows) == count_windows(int(duration * SR), window, hop) == 11
    assert max(beats_rows) <= 4 and progress[-1] == (11, 11) and len(progress) == len(beats_rows)


def test_keyframes_sharing_a_window_share_its_token(tokenizer, beats_rows):
    result = encode_schedule(tokenizer, a_silence_b(), SR, fps=8, hop_s=0.5, window_s=WINDOW_S)
    keys = result.keyframes["l"]
    # keyframes 0, 0.5 and 1 s all hear [0, 2]; 8, 8.5 and 9 s all hear [7, 9]
    assert sum(beats_rows) == result.schedule.n_keys - 4
    assert torch.equal(keys[0], keys[2]) and torch.equal(keys[-1], keys[-3])


def test_encode_windows_matches_windows_mode(tokenizer):
    wave = torch.randn(1, int(3.5 * SR))
    calls = []
    mine = tokenizer.encode_windows(iter_windows(wave, 1.0), total=4, batch_windows=3,
                                    progress=lambda d, t: calls.append((d, t)))
    theirs = tokenizer.encode(wave, SR, mode="windows", duration_s=1.0)
    torch.testing.assert_close(mine.tokens["l"], theirs.tokens["l"], rtol=1e-4, atol=1e-5)
    assert calls == [(3, 4), (4, 4)]
    with pytest.raises(ValueError, match="no windows"):
        tokenizer.encode_windows(iter([]))


def test_a_recording_shorter_than_the_window_is_repeated(tokenizer):
    wave = torch.randn(1, SR // 2)  # 0.5 s, window 2 s
    result = encode_schedule(tokenizer, wave, SR, fps=4, window_s=WINDOW_S)
    assert result.schedule.n_frames == 2 and result.schedule.n_keys == 2
    tiled = tokenizer.tokens_from_features(tokenizer.features(take_window(wave, 0.0, WINDOW_S)))["l"]
    torch.testing.assert_close(result.keyframes["l"][0], tiled[0], rtol=1e-4, atol=1e-5)


def test_the_default_window_is_the_embedders(tokenizer):
    wave = a_silence_b()[:, : 3 * SR]
    auto = encode_schedule(tokenizer, wave, SR, fps=4)  # the embedder was trained on 1 s windows
    assert tokenizer.window_seconds == auto.schedule.window_s == 1.0
    given = encode_schedule(tokenizer, wave, SR, fps=4, window_s=1.0)
    torch.testing.assert_close(auto.keyframes["l"], given.keyframes["l"])


# --- loudness ----------------------------------------------------------------------------------------------

def test_loudness_follows_the_sound_and_spans_zero_to_one():
    wave = a_silence_b()
    wave[:, 6 * SR:] *= 0.25  # B quieter than A
    s = plan_schedule(9.0, 8)
    loud = frame_loudness(wave, s)
    assert loud.shape == (72,) and loud.min() >= 0 and loud.max().item() == pytest.approx(1.0)
    t = s.frame_times
    assert (loud[(t > 3.1) & (t < 5.9)] == 0).all()
    assert (loud[t < 2.9] > 0.9).all()
    quieter = (0.5 * 0.25) / (0.5 / math.sqrt(2))  # noise RMS over tone RMS
    assert (loud[t > 6.1] - quieter).abs().max() < 0.05
    assert torch.equal(frame_loudness(torch.zeros(1, SR), plan_schedule(1.0, 8)), torch.zeros(8))


def test_trailing_loudness_reacts_after_the_sound_starts():
    wave = torch.cat([torch.zeros(SR), torch.ones(SR)])[None]  # silence, then sound from 1 s
    centred = frame_loudness(wave, plan_schedule(2.0, 4, window_s=0.5))
    trailing = frame_loudness(wave, plan_schedule(2.0, 4, window_s=0.5, align="trailing"))
    # the frame at 1.0 s: centred hears half a frame of sound, trailing only the silence before it
    assert centred[4].item() == pytest.approx(math.sqrt(0.5), abs=1e-3) and trailing[4].item() == 0.0
    assert trailing[5].item() == 1.0


# --- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [0, -8, float("nan"), float("inf")])
def test_fps_must_be_positive(fps):
    with pytest.raises(ValueError, match="fps must be a positive number"):
        plan_schedule(3.0, fps)


def test_frames_beyond_the_end_say_how_many_fit():
    with pytest.raises(ValueError, match=r"40 frames at 8 fps from 0 s reach 4\.88 s.*3\.00 s long: 24 frames fit"):
        plan_schedule(3.0, 8, n_frames=40)
    assert plan_schedule(3.0, 8, n_frames=24).n_frames == 24
    with pytest.raises(ValueError, match="8 frames fit"):
        plan_schedule(3.0, 8, n_frames=9, start_s=2.0)


def test_no_audio_means_no_frames(tokenizer):
    with pytest.raises(ValueError, match="empty"):
        plan_schedule(0.0, 8)
    with pytest.raises(ValueError, match="empty"):
        encode_schedule(tokenizer, torch.zeros(1, 0), SR, fps=8)


@pytest.mark.parametrize("kwargs,message", [
    ({"start_s": 3.0}, "starts at 3.00 s but the audio is only 3.00 s"),
    ({"start_s": -1.0}, "start must be >= 0"),
    ({"hop_s": 0.0}, "hop must be a positive number of seconds"),
    ({"window_s": -2.0}, "window must be a positive number of seconds"),
    ({"align": "centered"}, "align must be one of centred, trailing"),
    ({"n_frames": -1}, "frames must be a whole number >= 0"),
    ({"n_frames": 2.5}, "frames must be a whole number >= 0"),
])
def test_bad_plans_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_schedule(3.0, 8, **kwargs)


def test_bad_smoothing_and_batches_fail_before_beats_runs(tokenizer, beats_rows):
    with pytest.raises(ValueError, match="smoothing must be >= 0"):
        encode_schedule(tokenizer, torch.zeros(1, SR), SR, fps=8, smoothing_s=-0.5)
    with pytest.raises(ValueError, match="follows one recording, but the audio holds 2 sounds"):
        encode_schedule(tokenizer, torch.zeros(2, 1, SR), SR, fps=8)
    assert beats_rows == []


def test_heard_comes_from_the_same_beats_pass_and_equals_classify(tokenizer, beats_rows):
    wave = torch.randn(1, int(3.5 * SR), generator=torch.Generator().manual_seed(3))
    n = count_windows(wave.shape[-1], 1.0)
    out = tokenizer.encode_windows(iter_windows(wave, 1.0), total=n, batch_windows=2, heard=True)
    assert sum(beats_rows) == n  # the head reads the tokens' own BEATs pass: no second run
    torch.testing.assert_close(out.tokens["l"], tokenizer.encode_windows(iter_windows(wave, 1.0)).tokens["l"])
    alone = torch.cat([tokenizer.beats.classify(w) for w in iter_windows(wave, 1.0)])
    assert out.heard.shape == (n, tokenizer.beats.predictor.out_features)
    torch.testing.assert_close(out.heard, alone, rtol=1e-4, atol=1e-6)


def test_schedule_hears_each_keyframe_smoothed_like_its_tokens(tokenizer):
    plain = encode_schedule(tokenizer, a_silence_b(), SR, fps=8, hop_s=0.5, window_s=WINDOW_S)
    assert plain.heard is None
    result = encode_schedule(tokenizer, a_silence_b(), SR, fps=8, hop_s=0.5, window_s=WINDOW_S, heard=True)
    torch.testing.assert_close(result.keyframes["l"], plain.keyframes["l"])
    offsets = window_offsets(result.schedule, a_silence_b().shape[-1])
    for k in (0, 3, 14):
        window = a_silence_b()[:, int(offsets[k]) : int(offsets[k]) + int(WINDOW_S * SR)]
        torch.testing.assert_close(result.heard[k], tokenizer.beats.classify(window)[0], rtol=1e-4, atol=1e-6)
    smoothed = encode_schedule(tokenizer, a_silence_b(), SR, fps=8, hop_s=0.5, window_s=WINDOW_S, heard=True,
                               smoothing_s=1.0)
    torch.testing.assert_close(smoothed.heard, smooth_keyframes(result.heard, 0.5, 1.0))


def test_hearing_needs_the_audioset_head(tmp_path):
    path = write_tiny_official_beats(tmp_path / "pre.pt", layers=2, dim=DIM, heads=2, finetuned=False)
    meta = EmbedderMeta(layers=(1, 2), encoder_width=DIM, widths={"l": 24}, window_seconds=1.0)
    tok = AudioTokenizer(load_beats(path), make_tiny_embedder(2 * DIM, widths={"l": 24}, meta=meta))
    with pytest.raises(ValueError, match="no AudioSet head"):
        encode_schedule(tok, a_silence_b(), SR, fps=8, window_s=WINDOW_S, heard=True)
