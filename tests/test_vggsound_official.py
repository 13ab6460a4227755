"""The VGGSound layout on the two real clips the official repository ships: the official filters (on by default,
counted), then decode, frame pick, cache and one training step with tiny models."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from factories.official import CLIP_IDS, VGGSOUND
from factories.train_world import get_world, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

LOW_QUALITY, KEPT = CLIP_IDS  # -_gaZzFfzDQ is on the official low-quality list, 3YOH4c9HXpo on neither


def official_layout(root: Path) -> Path:
    """video/ and audio/ as in the official repository, plus a vggsound.csv (headerless, official columns)."""
    for sub in ("video", "audio"):
        (root / sub).mkdir(parents=True)
        for f in (VGGSOUND / sub).iterdir():
            (root / sub / f.name).symlink_to(f)
    (root / "vggsound.csv").write_text("-_gaZzFfzDQ,517,airplane flyby,train\n3YOH4c9HXpo,290,train passing,train\n"
                                       "3YOH4c9HXpo,290,train passing,test\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return official_layout(tmp_path_factory.mktemp("vggsound_official"))


def test_official_lists_are_shipped_as_plain_text():
    from train.data.vggsound import official_filter_ids

    ids = official_filter_ids()
    assert {k: len(v) for k, v in ids.items()} == {"official_unmatched": 55_735, "official_low_quality": 34_153}
    assert not ids["official_unmatched"] & ids["official_low_quality"]
    assert LOW_QUALITY[:11] in ids["official_low_quality"] and not any(KEPT[:11] in v for v in ids.values())


def test_filters_apply_to_the_train_split_by_default_and_are_counted(data, monkeypatch, caplog):
    from train.data import open_dataset

    monkeypatch.delenv("AUDIOTOKEN_OFFICIAL_FILTERS", raising=False)
    with caplog.at_level("INFO", logger="train.data.vggsound"):
        train = open_dataset(data, split="train")
    assert [c.id for c in train] == ["3YOH4c9HXpo_000290"]
    assert train.left_out["official_low_quality"] == 1 and train.left_out["official_unmatched"] == 0
    assert "official VGGSound filters removed 1 clips: 0 with unmatched sound and picture, 1 with low picture" in caplog.text
    assert "official_low_quality=1" in repr(train)  # what the training log prints
    assert len(open_dataset(data, split="test")) == 1  # the official loader filters its train set only
    monkeypatch.setenv("AUDIOTOKEN_OFFICIAL_FILTERS", "0")
    assert len(open_dataset(data, split="train")) == 2
    assert len(open_dataset(data, split="train", official_filters=True)) == 1  # an explicit choice wins


def test_official_filters_is_a_training_option():
    from train.cli import config_from_args

    assert config_from_args(["--no-official-filters"]).official_filters is False
    assert config_from_args(["--official-filters"]).official_filters is True
    assert config_from_args([]).official_filters is None


def test_pickle_reader_refuses_every_global(tmp_path):
    from train.data import read_id_list as read_id_pickle

    (tmp_path / "ids.pkl").write_bytes(pickle.dumps(["KTQig7CKVHU", "-_gaZzFfzDQ"]))
    assert read_id_pickle(tmp_path / "ids.pkl") == {"KTQig7CKVHU", "-_gaZzFfzDQ"}

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ValueError, match="refusing the pickle global"):
        read_id_pickle(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="list of id strings"):
        read_id_pickle(tmp_path / "dict.pkl")


def test_two_real_clips_end_to_end(data, tmp_path_factory, tmp_path, caplog):
    from train.loop import train

    world = get_world(tmp_path_factory.getbasetemp() / "train_world", ("sd1",))
    cache = tmp_path / "cache"
    cfg = tiny_config(world, tmp_path / "run", data=str(data), split="train", cache_dir=str(cache), max_steps=1,
                      batch_size=1, checkpoint_every=1, window_seconds=1.0)
    with caplog.at_level("INFO"):
        path = train(cfg)
    assert Path(path).is_file()
    assert "official VGGSound filters removed 1 clips" in caplog.text and "official_low_quality=1" in caplog.text
    index = json.loads((cache / "index.json").read_text())
    assert [c["id"] for c in index["clips"]] == ["3YOH4c9HXpo_000290"] and index["skipped"] == []
    assert len(index["clips"][0]["windows"]) == cfg.cache_windows
    entries = [e for line in (cache / "parts" / "r0.jsonl").read_text().splitlines() for e in json.loads(line)["entries"]]
    for e in entries:  # the frame is picked inside the sound's window, within the 10 s clip
        assert e["window_start_s"] <= e["frame_time_s"] <= e["window_start_s"] + cfg.window_seconds <= 10.0
    from safetensors import safe_open

    shard, key, _ = index["clips"][0]["windows"][0]
    with safe_open(str(cache / "shards" / shard), framework="pt") as f:
        assert tuple(f.get_tensor(f"{key}.mean").shape) == (4, 12, 16)  # a 32x24 frame through the tiny VAE
        feats = f.get_tensor(f"{key}.features")
    assert feats.shape[-1] == 3 * 32 and feats.float().isfinite().all()  # BEATs layers 4, 8, 12 of real sound


def test_real_clip_decodes_as_the_official_loader_sees_it():
    from train.data.decode import decode_audio, decode_video_frame, media_duration

    wav, rate = decode_audio(VGGSOUND / "audio" / f"{KEPT}.wav")
    assert rate == 16000 and wav.shape[0] == 1 and abs(wav.shape[1] / rate - 10.0) < 0.01
    video = VGGSOUND / "video" / f"{KEPT}.mp4"
    assert abs(media_duration(video) - 10.0) < 0.05
    assert decode_video_frame(video, 5.0).size == (1280, 720)
    track, track_rate = decode_audio(video)  # the video's own audio track holds the same sound
    assert track.shape[1] / track_rate > 9.9
