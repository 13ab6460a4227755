"""The training-free BEATs-label rows of `train.evaluate`: `labels` (what BEATs's AudioSet head hears, written
where the token goes) and `labels_token` (the token, then those words).

* the prompt templates and the label words (Describe's defaults, with a best-label fallback);
* with an injected generator whose BEATs "hears" each clip's true label, the labels row is generated and
  scored exactly like the text row;
* with the trainer's real generator on tiny random models and a BEATs steered to hear "dog, bark";
* a BEATs without the AudioSet head stops the run before any image is made.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from testkit.beats import write_tiny_official_beats
from test_evaluate_e2e import CLIPS, KnownAnswers, _cfg, _sound_key, dataset, load_scorers, scorer_files  # noqa: F401
from train.evaluate import EvalConfig, evaluate, main
from train.evaluate import generation as gen
from train.evaluate.config import DEFAULT_ROWS
from train.evaluate.heard import label_words
from train.evaluate.images import image_path

STEERED = {"Dog": 4.0, "Bark": 3.0}


def test_prompt_templates():
    assert gen.token_and_words_prompt("a photo of <audio>, 4k", "dog, bark") == "a photo of <audio>, dog, bark, 4k"
    assert gen.token_and_words_prompt("<*> in the rain", "rain") == "<*>, rain in the rain"
    with pytest.raises(ValueError, match="placeholder"):
        gen.token_and_words_prompt("a photo", "dog")

    class Clip:
        def __init__(self, id, label):
            self.id, self.label = id, label

    clips = [Clip("a", "cat"), Clip("b", "dog")]
    words = {"a": "meow, cat", "b": "bark"}
    assert gen.row_prompts("labels", "a photo of <audio>", clips, words) == ["a photo of meow, cat", "a photo of bark"]
    assert gen.row_prompts("labels_token", "a photo of <audio>", clips, words)[1] == "a photo of <audio>, bark"
    assert gen.row_prompts("text", "a photo of <audio>", clips, words) == ["a photo of cat", "a photo of dog"]
    assert gen.row_prompts("audio", "a photo of <audio>", clips, words) is None


def test_the_label_rows_are_opt_in():
    assert "labels" not in DEFAULT_ROWS and "labels_token" not in DEFAULT_ROWS
    assert EvalConfig(data="", out="").rows == DEFAULT_ROWS


@pytest.fixture(scope="module")
def steered_beats(tmp_path_factory):
    path = tmp_path_factory.mktemp("beats") / "steered.pt"
    return write_tiny_official_beats(path, layers=12, dim=32, heads=4, head_logits=STEERED)


def test_label_words_are_describe_defaults_with_a_best_label_fallback(steered_beats, tmp_path):
    import torch

    from audiotoken_core.beats import load_beats

    beats = load_beats(steered_beats)
    wave = torch.randn(1, 16000 * 2) * 0.1
    assert label_words(beats, wave, 16000) == "dog, bark"  # the rest score ~0.0025, below the 0.1 threshold
    assert label_words(beats, wave, 16000, k=1) == "dog"
    assert label_words(beats, wave, 16000, threshold=0.999) == "dog"  # none reaches it: the best one


class HearsTheLabel(KnownAnswers):
    """BEATs 'hears' each clip's true label, so the labels row asks for exactly the text row's prompts; the
    token row records the prompts it was given."""

    def __init__(self, dataset_root):
        super().__init__(dataset_root)
        from train.data import open_dataset

        self.label_of = {_sound_key(c.load_audio()[0]): c.label for c in open_dataset(dataset_root, "test").clips}
        self.token_prompts = []

    def labels(self, sounds, settings):
        return [self.label_of[_sound_key(w)] for w, _ in sounds]

    def audio(self, sounds, settings, prompts=None):
        self.token_prompts += list(prompts or [])
        return super().audio(sounds, settings)


def test_labels_row_is_generated_and_scored_like_the_text_row(dataset, scorer_files, tmp_path):
    fake = HearsTheLabel(dataset)
    rows = ("text", "labels", "labels_token", "ground_truth")
    report = evaluate(_cfg(dataset, tmp_path, rows=rows), generator=fake, scorers=load_scorers(scorer_files))
    assert list(report["rows"]) == list(rows)
    assert report["rows"]["labels"]["metrics"] == report["rows"]["text"]["metrics"]
    assert report["rows"]["labels"]["title"] == "BEATs labels → text prompt (no training)"
    assert sorted(fake.token_prompts) == sorted(f"a photo of <audio>, {label}" for _, label, _, _ in CLIPS)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    by_id = {c["id"]: c for c in saved["per_clip"]["labels_token"]}
    assert by_id["c1"]["prompt"] == "a photo of <audio>, cat"
    assert {c["id"]: c["prompt"] for c in saved["per_clip"]["labels"]}["c0"] == "a photo of dog"
    assert "prompt" not in saved["per_clip"]["text"][0]
    md = (tmp_path / "results.md").read_text()
    assert "| BEATs labels + audio token |" in md and "BEATs labels: the AudioSet head's best 3 classes" in md
    signature = json.loads((tmp_path / "images" / "labels" / "generation.json").read_text())
    assert signature["label_k"] == 3 and signature["label_threshold"] == 0.1
    assert "label_k" not in json.loads((tmp_path / "images" / "text" / "generation.json").read_text())


@pytest.fixture(scope="module")
def generator_files(tmp_path_factory, steered_beats):
    from factories.embedder import write_tiny_embedder
    from testkit.sd import SD1_WIDTH, write_tiny_sd

    root = tmp_path_factory.mktemp("generator")
    embedder = write_tiny_embedder(root / "embedder.safetensors", in_dim=3 * 32, widths={"l": SD1_WIDTH})
    return {"base_model": str(write_tiny_sd(root / "sd", "sd1")), "embedder": str(embedder),
            "beats": str(steered_beats)}


def test_real_generator_label_rows(dataset, scorer_files, generator_files, tmp_path):
    cfg = _cfg(dataset / "small.jsonl", tmp_path, rows=("labels", "labels_token"), metrics=("ais", "aic"),
               steps=1, dtype="fp32", cpu=True, grid_clips=0, **generator_files)
    report = evaluate(cfg, scorers=load_scorers(scorer_files))
    for row in ("labels", "labels_token"):
        assert report["rows"][row]["n_images"] == 3
        assert 0.0 <= report["rows"][row]["metrics"]["aic_top1"]["value"] <= 1.0
    prompts = {row: {c["id"]: c["prompt"] for c in report["per_clip"][row]} for row in ("labels", "labels_token")}
    assert set(prompts["labels"].values()) == {"a photo of dog, bark"}
    assert set(prompts["labels_token"].values()) == {"a photo of <audio>, dog, bark"}

    def pixels(row, cid):
        return np.asarray(Image.open(image_path(tmp_path / "images", row, cid, 0)))

    # One prompt and one seed for every clip of the labels row: one picture; the token row's tokens differ.
    assert np.array_equal(pixels("labels", "c0"), pixels("labels", "c1"))
    assert not np.array_equal(pixels("labels_token", "c0"), pixels("labels_token", "c1"))
    assert json.loads((tmp_path / "images" / "labels" / "generation.json").read_text())["beats"].startswith("steered.pt:")


def test_a_beats_without_head_stops_before_any_image(dataset, scorer_files, generator_files, tmp_path, capsys):
    headless = write_tiny_official_beats(tmp_path / "pretrained.pt", layers=12, dim=32, heads=4, finetuned=False)
    out = tmp_path / "out"
    args = ["--data", str(dataset / "small.jsonl"), "--out", str(out), "--rows", "audio,labels", "--metrics", "aic",
            "--clip-l14", str(scorer_files["clip_l14"]), "--base-model", generator_files["base_model"],
            "--embedder", generator_files["embedder"], "--beats", str(headless), "--steps", "1",
            "--dtype", "fp32", "--no-progress", "--cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "need the AudioSet head" in err and "pre-trained, not fine-tuned" in err and "--rows" in err
    assert not list((out / "images").glob("*/*_s0.png"))


def test_unknown_row_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown rows.*labels_token"):
        evaluate(EvalConfig(data=str(tmp_path), out=str(tmp_path / "o"), rows=("label",)))
