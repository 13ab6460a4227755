"""`train.evaluate` scores with and without a UNet LoRA: `--lora` changes the audio row's pictures and the
report says which LoRA (or none) it scored."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from factories.media import write_picture, write_wav
from test_evaluate_encoders import write_tiny_clip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from testkit.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_embedder
    from testkit.sd import SD1_WIDTH, write_tiny_sd
    from train.lora import add_lora, save_lora
    from train.models import load_base_model

    root = tmp_path_factory.mktemp("eval_lora")
    lines = []
    for i, (label, freq) in enumerate((("dog", 220.0), ("cat", 550.0))):
        write_wav(root / f"c{i}.wav", seconds=1.0, freq=freq)
        write_picture(root / f"c{i}.png", color=(60 + 100 * i, 90, 200 - 100 * i))
        lines.append({"id": f"c{i}", "audio": f"c{i}.wav", "image": f"c{i}.png", "label": label, "split": "test"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    sd = write_tiny_sd(root / "sd", "sd1")
    unet = load_base_model(sd).unet
    torch.manual_seed(0)
    for p in add_lora(unet, rank=4):
        torch.nn.init.normal_(p, std=0.3)
    return {
        "data": root / "manifest.jsonl", "base_model": str(sd),
        "beats": str(write_tiny_official_beats(root / "beats.pt", layers=12, dim=32, heads=4)),
        "embedder": str(write_tiny_embedder(root / "emb.safetensors", in_dim=96, widths={"l": SD1_WIDTH})),
        "lora": str(save_lora(unet, root / "audiotoken-lora.safetensors")),
        "clip_l14": str(write_tiny_clip(root / "clip-l14", seed=2)),
    }


def run(files, out, lora):
    from train.evaluate import main

    args = ["--data", str(files["data"]), "--out", str(out), "--rows", "audio", "--metrics", "aic",
            "--clip-l14", files["clip_l14"], "--base-model", files["base_model"], "--embedder", files["embedder"],
            "--beats", files["beats"], "--steps", "1", "--dtype", "fp32", "--bootstrap", "20", "--grid-clips", "0",
            "--no-progress", "--cpu"] + (["--lora", lora] if lora else [])
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text()), (out / "results.md").read_text()


def test_scores_with_and_without_the_lora(files, tmp_path):
    without, md_without = run(files, tmp_path / "without", None)
    with_lora, md_with = run(files, tmp_path / "with", files["lora"])
    assert "lora" not in without["generator"] and with_lora["generator"]["lora"].startswith("audiotoken-lora.safetensors:")
    assert "UNet LoRA: none" in md_without and "UNet LoRA: `audiotoken-lora.safetensors:" in md_with

    def pixels(out):
        (png,) = sorted((out / "images" / "audio").glob("c0*.png"))
        return np.asarray(Image.open(png), dtype=np.float32)

    assert np.abs(pixels(tmp_path / "with") - pixels(tmp_path / "without")).mean() > 0.5
