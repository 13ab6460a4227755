"""A folder of `stem.wav` + `stem.jpg/png` pairs (searched recursively), labels from `labels.csv`."""

from __future__ import annotations

from pathlib import Path

from .clip import AUDIO_SUFFIXES, IMAGE_SUFFIXES, Clip, ClipDataset
from .labels import read_labels


def find_pairs(folder: Path) -> tuple[list[tuple[Path, Path]], int]:
    """`[(sound, picture)]` sorted by path, and how many sounds have no picture."""
    pictures: dict[Path, Path] = {}
    sounds: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            pictures.setdefault(path.with_suffix(""), path)
        elif suffix in AUDIO_SUFFIXES:
            sounds.append(path)
    pairs = [(s, pictures[s.with_suffix("")]) for s in sounds if s.with_suffix("") in pictures]
    return pairs, len(sounds) - len(pairs)


def open_pairs(folder: Path) -> ClipDataset:
    pairs, lonely = find_pairs(folder)
    labels = read_labels(folder)
    clips = []
    for sound, picture in pairs:
        rel = sound.relative_to(folder).with_suffix("").as_posix()
        label = labels.get(rel) or labels.get(sound.stem)
        clips.append(Clip(id=rel, audio_path=sound, frame_source=picture, label=label, group=sound.stem))
    return ClipDataset(clips, str(folder), "pairs", {"sounds_without_picture": lonely})
