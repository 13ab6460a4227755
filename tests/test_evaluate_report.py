"""Report writers: the paper-style table, per-class tables, CSVs and the image grid."""

import json

import pytest
from PIL import Image

from train.evaluate import report as R
from train.evaluate.grid import image_grid


def _report():
    m = lambda v, lo, hi: {"value": v, "ci": [lo, hi], "n": 10}  # noqa: E731
    return {
        "config": {"n_images": 2, "seeds": [0, 1], "steps": 50, "guidance": 7.5, "prompt": "a photo of <audio>",
                   "confidence": 0.95, "bootstrap": 1000, "fid_bootstrap": 100},
        "dataset": {"source": "vggsound.csv", "kind": "vggsound", "split": "test", "n_clips": 10, "n_classes": 3},
        "rows": {
            "audio": {"title": "AudioToken (audio token)", "metrics": {
                "fid": m(123.456, 110.0, 140.0), "ais": m(0.81234, 0.8, 0.83), "iis": m(0.7, 0.68, 0.72),
                "aic_top1": m(0.4, 0.35, 0.45), "aic_top5": m(0.7, 0.65, 0.75)}},
            "ground_truth": {"title": "Ground-truth frames", "metrics": {"ais": m(0.9, 0.88, 0.92)}},
        },
        "per_class_aic": {"audio": [{"label": "dog", "n": 4, "top1": 0.5, "top5": 1.0},
                                    {"label": "cat", "n": 6, "top1": None, "top5": 0.25}]},
        "per_clip": {"audio": [{"id": "c0", "label": "dog", "ais": 0.5, "iis": float("nan"), "predicted": "cat"}]},
    }


def test_markdown_table_has_values_cis_and_dashes():
    table = R.markdown_table(_report())
    lines = table.splitlines()
    assert lines[0].startswith("| Method | FID ↓ | AIS ↑")
    assert "| AudioToken (audio token) | 123.46 [110.00, 140.00] | 0.812 [0.800, 0.830] |" in lines[2]
    assert lines[3].startswith("| Ground-truth frames | — | 0.900 [0.880, 0.920] | — |")


def test_full_markdown_and_files(tmp_path):
    rep = _report()
    md = R.markdown_report(rep)
    assert "10 clips" in md and "Per-class AIC: AudioToken" in md and "| dog | 4 | 0.500 | 1.000 |" in md
    R.write_json(tmp_path / "m.json", rep | {"per_clip": {}})
    assert json.loads((tmp_path / "m.json").read_text())["rows"]["audio"]["metrics"]["fid"]["value"] == 123.456
    with pytest.raises(ValueError):
        R.write_json(tmp_path / "nan.json", {"x": float("nan")})  # NaN never reaches the JSON silently
    R.write_per_class_csv(tmp_path / "pc.csv", rep["per_class_aic"])
    assert (tmp_path / "pc.csv").read_text().splitlines()[2] == "audio,cat,6,,0.25"
    R.write_per_clip_csv(tmp_path / "clip.csv", rep["per_clip"])
    assert (tmp_path / "clip.csv").read_text().splitlines()[1] == "audio,c0,dog,0.5,,,,cat"


def test_grid_layout():
    red, blue = Image.new("RGB", (64, 40), "red"), Image.new("RGB", (30, 30), "blue")
    grid = image_grid([("clip a", [red, blue, None]), ("clip b", [blue, red, red])], ["ref", "s0", "s1"], cell=50)
    assert grid.size == (4 + 3 * 54, 18 + 2 * (18 + 50 + 4) + 4)
    assert grid.getpixel((4 + 25, 18 + 18 + 25)) == (255, 0, 0)
