"""A folder of videos with audio tracks (searched recursively), labels from `labels.csv`."""

from __future__ import annotations

from pathlib import Path

from .clip import VIDEO_SUFFIXES, Clip, ClipDataset
from .labels import read_labels


def find_videos(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]


def open_videos(folder: Path) -> ClipDataset:
    labels = read_labels(folder)
    clips = []
    for video in find_videos(folder):
        rel = video.relative_to(folder).with_suffix("").as_posix()
        label = labels.get(rel) or labels.get(video.stem)
        # whether the file really has an audio track is checked when it is decoded, so that
        # listing a large folder stays cheap; files without one are skipped then and counted
        clips.append(Clip(id=rel, audio_path=video, frame_source=video, label=label, group=video.stem))
    return ClipDataset(clips, str(folder), "videos")
