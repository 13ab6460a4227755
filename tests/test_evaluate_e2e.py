"""`train.evaluate` end to end on a tiny labelled dataset.

* with an injected generator whose answers are known (the audio row returns each clip's own frame, the
  null row one grey picture), checking the numbers: IIS = 1 and FID = 0 for the copied frames, AIS/IIS =
  0.5 exactly for a constant image;
* with the trainer's real `AudioImageGenerator` on a tiny random SD + BEATs + Embedder, checking the
  whole pipeline, resumption and cache reuse;
* through the command line, with every scorer loaded from files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from factories.media import write_picture, write_wav
from test_evaluate_encoders import TinyPixelFeatures, write_tiny_clip, write_tiny_wav2clip
from train.evaluate import encoders as enc
from train.evaluate import generation as gen
from train.evaluate.images import image_path
from train.evaluate import EvalConfig, evaluate, main

CLIPS = [  # id, label, tone (Hz), picture colour
    ("c0", "dog", 220.0, (200, 30, 30)),
    ("c1", "cat", 330.0, (30, 200, 30)),
    ("c2", "dog", 440.0, (30, 30, 200)),
    ("c3", "cat", 550.0, (200, 200, 30)),
    ("c4", "cat", 660.0, (30, 200, 200)),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    lines = []
    for cid, label, freq, color in CLIPS:
        write_wav(root / f"{cid}.wav", seconds=2.0, rate=16000, freq=freq)
        write_picture(root / f"{cid}.png", color=color, size=(48, 40))
        lines.append({"id": cid, "audio": f"{cid}.wav", "image": f"{cid}.png", "label": label, "split": "test"})
    write_wav(root / "t0.wav", seconds=1.0, freq=100.0)
    write_picture(root / "t0.png")
    lines.append({"id": "t0", "audio": "t0.wav", "image": "t0.png", "label": "dog", "split": "train"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    # Three clips (two share a label) for the slow real-generator run.
    (root / "small.jsonl").write_text("\n".join(json.dumps(x) for x in lines[:3]) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def scorer_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorers")
    return {
        "clip_b32": write_tiny_clip(root / "clip-b32", seed=1),
        "clip_l14": write_tiny_clip(root / "clip-l14", seed=2),
        "wav2clip": write_tiny_wav2clip(root / "Wav2CLIP.pt", seed=3),
    }


def load_scorers(files):
    return {
        "clip_b32": enc.ClipEncoder(files["clip_b32"], source=enc.CLIP_B32_SOURCE),
        "clip_l14": enc.ClipEncoder(files["clip_l14"], source=enc.CLIP_L14_SOURCE),
        "wav2clip": enc.Wav2ClipEncoder(files["wav2clip"], clip_seconds=2.0),
        "inception": TinyPixelFeatures(),
    }


def _sound_key(wave: torch.Tensor) -> str:
    return hashlib.sha1(wave.float().numpy().round(4).tobytes()).hexdigest()


class KnownAnswers:
    """Audio row: the clip's own picture (looked up by its sound). Text row: the picture of the first clip
    with that label. Null row: one grey picture for every clip."""

    def __init__(self, dataset_root: Path):
        from train.data import open_dataset

        self.by_sound, self.by_label, self.calls = {}, {}, 0
        for clip in open_dataset(dataset_root, "test").clips:
            picture = Image.open(clip.frame_source).convert("RGB")
            self.by_sound[_sound_key(clip.load_audio()[0])] = picture
            self.by_label.setdefault(f"a photo of {clip.label}", picture)

    def audio(self, sounds, settings):
        self.calls += len(sounds)
        return [[self.by_sound[_sound_key(w)]] * len(settings.seeds) for w, _ in sounds]

    def text(self, prompts, settings):
        self.calls += len(prompts)
        return [[self.by_label[p]] * len(settings.seeds) for p in prompts]

    def null(self, clip_ids, settings):
        self.calls += len(clip_ids)
        return [[Image.new("RGB", (48, 40), (128, 128, 128))] * len(settings.seeds) for _ in clip_ids]

    embedder = "v1"

    def describe(self, row):
        return {"generator": "known-answers"} | ({"embedder": self.embedder} if row == "audio" else {})


def _cfg(dataset, out, **kw):
    base = dict(data=str(dataset), out=str(out), bootstrap=200, fid_bootstrap=10, grid_clips=3, progress=False,
                prompt="a photo of <audio>")
    base.update(kw)
    return EvalConfig(**base)


def test_known_answers(dataset, scorer_files, tmp_path):
    fake = KnownAnswers(dataset)
    report = evaluate(_cfg(dataset, tmp_path), generator=fake, scorers=load_scorers(scorer_files))
    rows = report["rows"]
    assert list(rows) == ["audio", "text", "null", "ground_truth"]
    assert report["dataset"]["n_clips"] == 5 and report["dataset"]["n_classes"] == 2  # the train clip is out
    audio, null, gt = rows["audio"]["metrics"], rows["null"]["metrics"], rows["ground_truth"]["metrics"]
    # The audio row generated exactly the reference frames.
    assert audio["iis"]["value"] == 1.0
    assert abs(audio["fid"]["value"]) < 1e-6
    for k in ("ais", "aic_top1", "aic_top5"):
        assert audio[k]["value"] == pytest.approx(gt[k]["value"])
    # One image for every clip: its rank among the references is uniform, so the win fraction is 0.5.
    assert null["ais"]["value"] == pytest.approx(0.5) and null["iis"]["value"] == pytest.approx(0.5)
    assert null["fid"]["value"] > audio["fid"]["value"]
    assert "iis" not in gt and "fid" not in gt
    assert gt["aic_top5"]["value"] == 1.0  # top-5 of two classes
    for row in rows.values():
        for m in row["metrics"].values():
            lo, hi = m["ci"]
            assert lo <= m["value"] + 1e-9 and m["value"] <= hi + 1e-9
    assert {r["label"] for r in report["per_class_aic"]["audio"]} == {"dog", "cat"}
    for name in ("metrics.json", "results.md", "per_class_aic.csv", "per_clip.csv", "grid.png"):
        assert (tmp_path / name).is_file(), name
    md = (tmp_path / "results.md").read_text()
    assert "| AudioToken (audio token) |" in md and "Per-class AIC" in md
    assert json.loads((tmp_path / "metrics.json").read_text())["rows"]["audio"]["n_images"] == 5
    grid = Image.open(tmp_path / "grid.png")
    assert grid.width > 4 * 100 and grid.height > 3 * 100  # 3 clips x (reference + 3 rows)


def test_rescoring_reuses_images_and_reference_features(dataset, scorer_files, tmp_path):
    scorers = load_scorers(scorer_files)
    fake = KnownAnswers(dataset)
    evaluate(_cfg(dataset, tmp_path, rows=("audio", "ground_truth")), generator=fake, scorers=scorers)
    first_calls, first_feats = fake.calls, scorers["inception"].calls
    # The audio row copies the references: same bytes, same cache entries, so 5 embeddings serve 10 images.
    assert first_calls == 5 and first_feats == 5
    evaluate(_cfg(dataset, tmp_path, rows=("audio", "ground_truth")), generator=fake, scorers=scorers)
    assert fake.calls == first_calls and scorers["inception"].calls == first_feats  # nothing recomputed
    # New settings for the row: regeneration is refused unless asked for...
    with pytest.raises(ValueError, match="other settings.*seeds"):
        evaluate(_cfg(dataset, tmp_path, rows=("audio",), seed=5), generator=fake, scorers=scorers)
    # ...and with --overwrite only the new images are embedded; the references come from the cache.
    fake.by_sound = {k: v.rotate(90) for k, v in fake.by_sound.items()}
    evaluate(_cfg(dataset, tmp_path, rows=("audio",), seed=5, overwrite=True), generator=fake, scorers=scorers)
    assert fake.calls == first_calls + 5
    assert scorers["inception"].calls == first_feats + 5


def test_a_new_embedder_regenerates_only_the_audio_row(dataset, scorer_files, tmp_path):
    scorers = load_scorers(scorer_files)
    fake = KnownAnswers(dataset)
    cfg = _cfg(dataset, tmp_path, rows=("audio", "text", "null"), metrics=("ais", "aic"), grid_clips=0)
    evaluate(cfg, generator=fake, scorers=scorers)
    assert fake.calls == 15
    fake.embedder = "v2"
    with pytest.raises(ValueError, match="images/audio holds images generated with other settings.*embedder"):
        evaluate(cfg, generator=fake, scorers=scorers)
    evaluate(_cfg(dataset, tmp_path, rows=("audio", "text", "null"), metrics=("ais", "aic"), grid_clips=0,
                  overwrite=True), generator=fake, scorers=scorers)
    assert fake.calls == 20  # the 5 audio images only


def test_text_row_covers_labelled_clips_and_prompt_substitution(dataset):
    assert gen.text_prompt("a photo of <audio>, 4k", "dog barking") == "a photo of dog barking, 4k"
    assert gen.text_prompt("<*> in the rain", "rain") == "rain in the rain"
    with pytest.raises(ValueError, match="placeholder"):
        gen.text_prompt("a photo", "dog")


def test_null_tokens_are_seeded_per_clip():
    seeds = [gen.clip_seed("c1"), gen.clip_seed("c2")]
    a = gen.null_tokens({"l": 8}, 1, seeds, "random", {"l": 2.0})
    b = gen.null_tokens({"l": 8}, 1, [gen.clip_seed("c2")], "random", {"l": 2.0})
    assert torch.equal(a["l"][1], b["l"][0])  # the same clip gets the same token in any batch
    assert not torch.equal(a["l"][0], a["l"][1])
    assert 1.0 < float(a["l"].norm(dim=-1).mean()) < 3.0
    z = gen.null_tokens({"l": 8, "g": 4}, 2, [0, 1, 2], "zero", {})
    assert z["l"].shape == (3, 2, 8) and z["g"].abs().sum() == 0


def test_cli_ground_truth_row_with_models_from_files(dataset, scorer_files, tmp_path, capsys):
    args = ["--data", str(dataset), "--out", str(tmp_path), "--rows", "ground_truth", "--metrics", "ais,aic",
            "--clip-b32", str(scorer_files["clip_b32"]), "--clip-l14", str(scorer_files["clip_l14"]),
            "--wav2clip", str(scorer_files["wav2clip"]), "--bootstrap", "50", "--no-progress", "--cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| Ground-truth frames |" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert set(report["rows"]["ground_truth"]["metrics"]) == {"ais", "aic_top1", "aic_top5"}


def test_cli_stops_before_generating_when_a_scorer_is_missing(dataset, tmp_path, capsys):
    args = ["--data", str(dataset), "--out", str(tmp_path), "--clip-b32", str(tmp_path / "no-clip"),
            "--no-progress", "--cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no-clip" in err and "openai/clip-vit-base-patch32" in err and "Wav2CLIP.pt" in err
    assert "pt_inception-2015-12-05-6726825d.pth" in err
    assert not (tmp_path / "images").exists()


@pytest.fixture(scope="module")
def generator_files(tmp_path_factory):
    from testkit.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_embedder
    from testkit.sd import SD1_WIDTH, write_tiny_sd

    root = tmp_path_factory.mktemp("generator")
    beats = write_tiny_official_beats(root / "beats.pt", layers=12, dim=32, heads=4)
    embedder = write_tiny_embedder(root / "embedder.safetensors", in_dim=3 * 32, widths={"l": SD1_WIDTH})
    sd = write_tiny_sd(root / "sd", "sd1")
    return {"base_model": str(sd), "embedder": str(embedder), "beats": str(beats)}


def test_real_generator_end_to_end(dataset, scorer_files, generator_files, tmp_path):
    """The trainer's AudioImageGenerator on tiny random models: every row generated and scored."""
    scorers = load_scorers(scorer_files)
    cfg = _cfg(dataset / "small.jsonl", tmp_path, steps=1, n_images=1, null_token="random", dtype="fp32",
               cpu=True, **generator_files)
    report = evaluate(cfg, scorers=scorers)
    assert report["generator"]["widths"] == {"l": 32}
    for row in ("audio", "text", "null"):
        metrics = report["rows"][row]["metrics"]
        assert report["rows"][row]["n_images"] == 3
        assert set(metrics) == {"ais", "iis", "aic_top1", "aic_top5", "fid"}
        for key in ("ais", "iis", "aic_top1", "aic_top5"):
            assert 0.0 <= metrics[key]["value"] <= 1.0
        assert metrics["fid"]["value"] >= 0.0
        files = sorted((tmp_path / "images" / row).glob("*.png"))
        assert len(files) == 3 and Image.open(files[0]).size == (32, 32)
    # Fixed seeds: c0 and c2 are both "dog", so the text row gave them the same prompt and seed, hence
    # the same picture; their audio tokens differ, and so do their audio-row pictures.
    def pixels(row, cid):
        return np.asarray(Image.open(image_path(tmp_path / "images", row, cid, 0)))

    assert np.array_equal(pixels("text", "c0"), pixels("text", "c2"))
    assert not np.array_equal(pixels("audio", "c0"), pixels("audio", "c2"))


def test_cli_stops_before_decoding_when_generator_files_are_missing(dataset, scorer_files, tmp_path, capsys):
    args = ["--data", str(dataset), "--out", str(tmp_path), "--metrics", "aic", "--clip-l14",
            str(scorer_files["clip_l14"]), "--base-model", str(tmp_path / "no-sd"), "--embedder",
            str(tmp_path / "none.safetensors"), "--beats", str(tmp_path / "none.pt"), "--no-progress", "--cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no-sd" in err and "none.safetensors" in err and "none.pt" in err
    assert not (tmp_path / "images").exists()
