"""Trainer data layouts: detection, decoding through Clip, corrupt files, exclusion, resize policies."""

import pytest
import torch

from factories.media import write_mp4, write_picture, write_wav
from factories.train_world import write_pairs
from train.data import DecodeError, detect_format, open_dataset, read_id_list
from train.data.frames import image_to_tensor, parse_size, resize_frame
from train.data.sampling import item_rng, make_view, try_view
from train.data.vggsound import parse_stem


def test_pairs_folder_with_labels_and_lonely_sound(tmp_path):
    write_pairs(tmp_path, n=3, broken=False)
    write_wav(tmp_path / "no_picture.wav")
    ds = open_dataset(tmp_path)
    assert ds.kind == "pairs" and len(ds) == 3
    assert ds.left_out["sounds_without_picture"] == 1
    by_id = {c.id: c for c in ds}
    assert by_id["s0"].label == "dog" and by_id["s1"].label == "cat" and by_id["s2"].label == "dog"
    wave, rate = by_id["s1"].load_audio()
    assert rate == 22050 and wave.shape[0] == 2 and wave.dtype == torch.float32
    assert by_id["s0"].load_frame().size == (48, 40)


def test_video_folder_audio_track_and_frame_by_time(tmp_path):
    write_mp4(tmp_path / "a" / "clip.mp4", seconds=1.0, fps=8)
    ds = open_dataset(tmp_path)
    assert ds.kind == "videos" and [c.id for c in ds] == ["a/clip"]
    clip = ds[0]
    wave, rate = clip.load_audio()
    assert rate == 22050 and wave.shape[0] == 2 and wave.shape[1] > 20000
    early, late = clip.load_frame(0.0), clip.load_frame(0.9)
    assert early.getpixel((40, 20))[0] < 40 < late.getpixel((40, 20))[0]  # red ramps up over time


def test_vggsound_layout_headerless_csv_stems_and_split(tmp_path):
    # stems in both official spellings, one clip with pre-extracted audio, one row without files
    write_mp4(tmp_path / "video" / "abcdefghijk_000030.mp4", seconds=0.5)
    write_mp4(tmp_path / "video" / "zyxwvutsrqp_12000_22000.mp4", seconds=0.5)
    write_wav(tmp_path / "audio" / "zyxwvutsrqp_12000_22000.wav", seconds=0.5, rate=44100, channels=2)
    (tmp_path / "vggsound.csv").write_text(
        "abcdefghijk,30,dog barking,train\nzyxwvutsrqp,12,cat meowing,test\nmissing0000,5,rain,train\n"
    )
    assert detect_format(tmp_path) == "vggsound"
    every = open_dataset(tmp_path, split=None)
    assert sorted(c.id for c in every) == ["abcdefghijk_000030", "zyxwvutsrqp_000012"]
    assert every.left_out["missing_files"] == 1
    train = open_dataset(tmp_path / "vggsound.csv", split="train")
    assert [c.label for c in train] == ["dog barking"] and train[0].group == "abcdefghijk"
    test = open_dataset(tmp_path, split="test")
    assert test[0].audio_path.suffix == ".wav" and test[0].load_audio()[1] == 44100
    assert parse_stem("abcdefghijk") == ("abcdefghijk", None)
    assert parse_stem("a_b-c_d-e_f_1500_11500") == ("a_b-c_d-e_f", 1.5)


def test_jsonl_manifest(tmp_path):
    write_wav(tmp_path / "snd.wav", seconds=2.0)
    write_picture(tmp_path / "pic.jpg")
    write_mp4(tmp_path / "v.mp4", seconds=1.0)
    (tmp_path / "m.jsonl").write_text(
        '{"audio": "snd.wav", "image": "pic.jpg", "label": "bell", "start": 0.5, "duration": 1.0}\n'
        '{"audio": "v.mp4", "id": "vid"}\n'
        "not json\n"
        '{"audio": "snd.wav"}\n'
    )
    ds = open_dataset(tmp_path / "m.jsonl")
    assert ds.kind == "manifest" and len(ds) == 2 and ds.left_out["malformed_lines"] == 2
    wave, rate = ds[0].load_audio()
    assert wave.shape[1] == rate * 1  # cut to start 0.5 s, duration 1 s
    assert ds[1].id == "vid" and ds[1].frame_is_video


def test_corrupt_files_are_skipped_not_fatal(tmp_path):
    write_pairs(tmp_path, n=1)
    (tmp_path / "badimg.wav").write_bytes((tmp_path / "s0.wav").read_bytes())
    (tmp_path / "badimg.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = open_dataset(tmp_path)
    views = {c.id: try_view(c, item_rng(0, 1), 1.0, (32, 24), "squash") for c in ds}
    assert views["s0"] is not None and views["broken"] is None and views["badimg"] is None
    with pytest.raises(DecodeError):
        next(c for c in ds if c.id == "broken").load_audio()


def test_view_window_frame_and_tiling(tmp_path):
    write_pairs(tmp_path, n=2, broken=False)
    clip = open_dataset(tmp_path)[1]  # 1.25 s at 22.05 kHz stereo
    view = make_view(clip, item_rng(3, 0, 1), 1.0, (32, 24), "squash")
    assert view.wave.shape == (16000,) and view.pixels.shape == (3, 24, 32)
    assert 0.0 <= view.window_start_s <= 0.25 and view.window_start_s <= view.frame_time_s
    again = make_view(clip, item_rng(3, 0, 1), 1.0, (32, 24), "squash")
    assert torch.equal(view.wave, again.wave)  # seeded per item
    long = make_view(clip, item_rng(0), 3.0, (32, 24), "squash")  # shorter clip than window: tiled
    assert long.wave.shape == (48000,) and torch.allclose(long.wave[:1000], long.wave[20000:21000], atol=1e-5)


def test_resize_policies():
    from PIL import Image

    img = Image.new("RGB", (100, 50), (255, 0, 0))
    for policy in ("squash", "center-crop", "pad"):
        out = resize_frame(img, (32, 32), policy)
        assert out.size == (32, 32)
    assert resize_frame(img, (32, 32), "pad").getpixel((16, 0)) == (0, 0, 0)  # letterbox
    assert resize_frame(img, (32, 32), "center-crop").getpixel((16, 0))[0] > 200
    t = image_to_tensor(img)
    assert t.shape == (3, 50, 100) and float(t.max()) == 1.0 and float(t.min()) == -1.0
    assert parse_size("512x320") == (512, 320)
    with pytest.raises(ValueError):
        parse_size("500x320")
    with pytest.raises(ValueError):
        resize_frame(img, (32, 32), "stretch")


def test_exclusion_lists(tmp_path):
    write_pairs(tmp_path / "d", n=3, broken=False)
    (tmp_path / "ids.txt").write_text("# unmatched\ns1\n")
    (tmp_path / "ids.json").write_text('["s2"]')
    ids = read_id_list(tmp_path / "ids.txt") | read_id_list(tmp_path / "ids.json")
    ds = open_dataset(tmp_path / "d", exclude=ids)
    assert [c.id for c in ds] == ["s0"] and ds.left_out["excluded"] == 2
    (tmp_path / "ids.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="not a readable pickled id list"):
        read_id_list(tmp_path / "ids.pkl")


def test_empty_folder_message(tmp_path):
    with pytest.raises(ValueError, match="no training data found"):
        open_dataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "nope")


def test_view_from_a_video_takes_the_frame_inside_the_window(tmp_path):
    write_mp4(tmp_path / "v.mp4", seconds=2.0, fps=8)
    clip = open_dataset(tmp_path)[0]
    view = make_view(clip, item_rng(0, 0, 0), 0.5, (32, 24), "center-crop")
    assert view.wave.shape == (8000,) and view.pixels.shape == (3, 24, 32)
    assert view.window_start_s <= view.frame_time_s <= view.window_start_s + 0.5
    red = float(view.pixels[0].mean() + 1) / 2  # the red channel ramps 0 -> 1 over the 2 s video
    assert abs(red - view.frame_time_s / 2.0) < 0.2
