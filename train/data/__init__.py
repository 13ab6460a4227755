"""Training data: four folder/file layouts read into one list of `Clip`s.

`open_dataset(spec, split=None)` detects the layout:
* a `.jsonl` file, or a folder holding `manifest.jsonl` -> JSONL manifest;
* a `.csv` file, or a folder holding `vggsound.csv` -> VGGSound layout;
* a folder with sound files that have a same-stem picture -> sound + picture pairs;
* a folder with videos -> videos with audio tracks.
"""

from __future__ import annotations

from pathlib import Path

from .clip import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, Clip, ClipDataset, read_id_list
from .decode import DecodeError
from .manifest import open_manifest
from .pairs import find_pairs, open_pairs
from .videos import find_videos, open_videos
from .vggsound import find_csv, open_vggsound

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Clip",
    "ClipDataset",
    "DecodeError",
    "detect_format",
    "open_dataset",
    "read_id_list",
]


def detect_format(spec: str | Path) -> str:
    """`manifest` | `vggsound` | `pairs` | `videos`; raises FileNotFoundError/ValueError with guidance."""
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"training data {path} does not exist")
    if path.is_file():
        if path.suffix.lower() == ".jsonl":
            return "manifest"
        if path.suffix.lower() == ".csv":
            return "vggsound"
        raise ValueError(f"{path}: a data file must be a JSONL manifest (.jsonl) or vggsound.csv")
    if (path / "manifest.jsonl").is_file():
        return "manifest"
    if find_csv(path) is not None:
        return "vggsound"
    if find_pairs(path)[0]:
        return "pairs"
    if find_videos(path):
        return "videos"
    raise ValueError(
        f"{path}: no training data found. Expected one of: vggsound.csv + videos; sound files with a "
        f"same-stem picture ({'/'.join(IMAGE_SUFFIXES)}); video files ({'/'.join(VIDEO_SUFFIXES)}); "
        "or a manifest.jsonl"
    )


def open_dataset(spec: str | Path, split: str | None = None, exclude: set[str] | None = None,
                 official_filters: bool | None = None) -> ClipDataset:
    """All clips of `spec` (a folder or file), optionally one split and minus excluded ids.

    `official_filters` applies to VGGSound only (`open_vggsound`); None leaves it to the environment.
    """
    path = Path(spec)
    kind = detect_format(path)
    if kind == "manifest":
        dataset = open_manifest(path if path.is_file() else path / "manifest.jsonl", split)
    elif kind == "vggsound":
        dataset = open_vggsound(path, split, official_filters)
    elif kind == "pairs":
        dataset = open_pairs(path)
    else:
        dataset = open_videos(path)
    if exclude:
        dataset = dataset.excluding(exclude)
    return dataset
