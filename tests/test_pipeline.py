import pytest
import torch

from audiotoken_core.audio import take_window
from audiotoken_core.beats import load_beats
from audiotoken_core.embedder import EmbedderMeta
from audiotoken_core.pipeline import MAX_ROWS, AudioTokenizer, check_compatible, rows_per_pass
from testkit.beats import write_tiny_official_beats
from factories.embedder import make_tiny_embedder

SR = 16_000
DIM = 32  # tiny BEATs width; the embedder reads 3 layers of it


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = write_tiny_official_beats(tmp_path_factory.mktemp("beats") / "b.pt", layers=4, dim=DIM, heads=2)
    beats = load_beats(path)
    meta = EmbedderMeta(layers=(2, 3, 4), encoder_width=DIM, widths={"l": 24}, window_seconds=1.0)
    emb = make_tiny_embedder(3 * DIM, widths={"l": 24}, meta=meta)
    return AudioTokenizer(beats, emb)


def test_first_window_shape_and_determinism(tokenizer):
    wave = torch.randn(2, 3, SR * 2)  # batch of 2 stereo sounds at 16 kHz
    a = tokenizer.encode(wave, SR).tokens
    b = tokenizer.encode(wave, SR).tokens
    assert set(a) == {"l"} and a["l"].shape == (2, 1, 24)
    assert torch.equal(a["l"], b["l"])


def test_first_window_matches_manual_path(tokenizer):
    wave = torch.randn(1, SR // 2)  # shorter than the 1 s window: tiled
    got = tokenizer.encode(wave, SR).tokens["l"]
    tiled = take_window(wave, 0.0, 1.0)
    feats = tokenizer.features(tiled)
    assert feats.shape[-1] == 3 * DIM
    want = tokenizer.embedder.forward_dict(feats)["l"]
    assert torch.allclose(got, want, atol=1e-6)


def test_windows_mode_is_sound_major(tokenizer):
    wave = torch.randn(2, 1, int(SR * 3.5))
    per = tokenizer.encode(wave, SR, mode="windows", batch_windows=3).tokens["l"]
    assert per.shape == (2 * 4, 1, 24)  # 3 full windows + a 0.5 s tail
    second_sound_window_1 = tokenizer.encode(wave[1:], SR, offset_s=1.0).tokens["l"][0]
    assert torch.allclose(per[4 + 1], second_sound_window_1, atol=1e-5)


def test_mean_mode_is_the_mean_of_windows(tokenizer):
    wave = torch.randn(1, SR * 3)
    per = tokenizer.encode(wave, SR, mode="windows").tokens["l"]
    mean = tokenizer.encode(wave, SR, mode="mean", batch_windows=2).tokens["l"]
    assert torch.allclose(mean[0], per.mean(0), atol=1e-5)


def test_chunk_size_does_not_change_results(tokenizer):
    wave = torch.randn(1, SR * 5)
    one = tokenizer.encode(wave, SR, mode="windows", batch_windows=1).tokens["l"]
    many = tokenizer.encode(wave, SR, mode="windows", batch_windows=16).tokens["l"]
    assert torch.allclose(one, many, atol=1e-5)


def test_long_audio_is_processed_in_bounded_chunks(tokenizer, beats_rows):
    seen = beats_rows
    calls = []
    wave = torch.zeros(1, SR * 600)  # 10 minutes of silence at the 1 s test window = 600 windows
    out = tokenizer.encode(wave, SR, mode="mean", batch_windows=64, progress=lambda d, t: calls.append((d, t))).tokens
    assert out["l"].shape == (1, 1, 24)
    assert max(seen) <= 64 and sum(seen) == 600
    assert calls[-1] == (600, 600) and len(calls) == len(seen)


def test_progress_can_interrupt(tokenizer):
    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop

    with pytest.raises(Stop):
        tokenizer.encode(torch.zeros(1, SR * 10), SR, mode="windows", batch_windows=2, progress=stop)


def test_bad_mode_and_bad_audio(tokenizer):
    with pytest.raises(ValueError, match="mode"):
        tokenizer.encode(torch.zeros(1, SR), SR, mode="median")
    with pytest.raises(ValueError, match="empty"):
        tokenizer.encode(torch.zeros(1, 0), SR)
    with pytest.raises(ValueError, match="starts at"):
        tokenizer.encode(torch.zeros(1, SR), SR, offset_s=5.0)


def test_mismatched_pair_names_both(tokenizer):
    too_wide = make_tiny_embedder(3 * 48, widths={"l": 24},
                                  meta=EmbedderMeta(layers=(2, 3, 4), encoder_width=48, widths={"l": 24}))
    with pytest.raises(ValueError, match=r"emb\.safetensors expects 144-wide.*beats\.pt gives 32"):
        check_compatible(tokenizer.beats, too_wide, "beats.pt", "emb.safetensors")
    too_deep = make_tiny_embedder(3 * DIM, widths={"l": 24},
                                  meta=EmbedderMeta(layers=(4, 8, 12), encoder_width=DIM, widths={"l": 24}))
    with pytest.raises(ValueError, match=r"layers \[4, 8, 12\] but beats\.pt has 4 layers"):
        check_compatible(tokenizer.beats, too_deep, "beats.pt")


def test_ten_millisecond_clip_is_tiled_and_encoded(tokenizer):
    out = tokenizer.encode(torch.randn(1, 441), 44_100).tokens["l"]  # 10 ms at 44.1 kHz
    assert out.shape == (1, 1, 24) and torch.isfinite(out).all()


def test_six_channel_8bit_pcm(tokenizer):
    pcm = torch.randint(0, 256, (1, 6, 22_050), dtype=torch.uint8)
    out = tokenizer.encode(pcm, 22_050).tokens["l"]
    assert torch.isfinite(out).all()


def test_one_hour_recording_mean_of_windows(tokenizer):
    hour = torch.zeros(1, 3600 * SR)
    hour[0, ::97] = 0.1  # not silence, cheap to build
    calls = []
    out = tokenizer.encode(hour, SR, duration_s=10.0, mode="mean", batch_windows=32,
                           progress=lambda d, t: calls.append(t)).tokens
    assert out["l"].shape == (1, 1, 24) and calls[0] == 360


@pytest.mark.parametrize("mode,rows", [("first", 2), ("mean", 8), ("windows", 8)])
def test_what_beats_heard_comes_from_the_token_pass(tokenizer, beats_rows, mode, rows):
    """One BEATs row per sound in mode first and one per window otherwise, with the head or without."""
    wave = torch.randn(2, 1, int(SR * 3.5), generator=torch.Generator().manual_seed(5))  # 4 windows a sound
    out = tokenizer.encode(wave, SR, mode=mode, heard=True)
    assert sum(beats_rows) == rows
    plain = tokenizer.encode(wave, SR, mode=mode)
    assert sum(beats_rows) == 2 * rows and plain.heard is None
    torch.testing.assert_close(out.tokens["l"], plain.tokens["l"])
    # the probabilities are those of BEATs.classify on the very windows the tokens saw, sound-major
    windows = [take_window(wave[b, 0][None], s, 1.0)[0] for b in range(2) for s in (0.0, 1.0, 2.0, 3.0)]
    alone = tokenizer.beats.classify(torch.stack(windows)).view(2, 4, -1)
    want = {"first": alone[:, 0], "mean": alone.mean(1), "windows": alone.reshape(8, -1)}[mode]
    torch.testing.assert_close(out.heard, want, rtol=1e-4, atol=1e-6)
    assert out.spans[-1] == ((1, 0.0, 1.0) if mode == "first" else (1, 0.0, 3.5) if mode == "mean" else (1, 3.0, 3.5))


def test_rows_per_pass_keeps_rows_times_window_squared_bounded():
    assert rows_per_pass(10.0) == rows_per_pass(0.5) == MAX_ROWS == 8
    assert rows_per_pass(20.0) == 2
    assert rows_per_pass(30.0) == 1


@pytest.mark.parametrize("mode", ["first", "windows"])
def test_sounds_of_a_batch_split_across_passes_to_bound_the_rows(tokenizer, beats_rows, mode):
    """Three sounds at a 20 s window: passes of at most two rows, the same rows as one big pass gives."""
    wave = torch.randn(3, 1, SR * 45, generator=torch.Generator().manual_seed(6)) * 0.1
    split = tokenizer.encode(wave, SR, mode=mode, duration_s=20.0, heard=True)
    assert max(beats_rows) <= rows_per_pass(20.0) == 2
    whole = tokenizer.encode(wave, SR, mode=mode, duration_s=20.0, heard=True, batch_windows=100)
    assert beats_rows[-1] == split.heard.shape[0] == (3 if mode == "first" else 9)
    torch.testing.assert_close(split.tokens["l"], whole.tokens["l"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(split.heard, whole.heard, rtol=1e-4, atol=1e-6)
