"""VGGSound layout: `vggsound.csv` (ytid, start, label, split; no header in the official file) and
video clips named `<ytid>_<startms>_<endms>`, `<ytid>_<start:06d>` or `<ytid>`, with optional
pre-extracted audio of the same stem (`audio/` folder)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .clip import AUDIO_SUFFIXES, VIDEO_SUFFIXES, Clip, ClipDataset

YTID_LEN = 11
CLIP_SECONDS = 10.0
_VIDEO_DIRS = ("video", "videos", "vid", "clips", ".")
_AUDIO_DIRS = ("audio", "audios", "wav")


def find_csv(spec: Path) -> Path | None:
    if spec.is_file() and spec.suffix.lower() == ".csv":
        return spec
    if spec.is_dir():
        for name in ("vggsound.csv", "VGGSound.csv"):
            if (spec / name).is_file():
                return spec / name
    return None


def parse_stem(stem: str) -> tuple[str, float | None] | None:
    """`(ytid, start_s)` from a file stem; start None for a full-length `<ytid>` video."""
    if len(stem) < YTID_LEN:
        return None
    ytid, rest = stem[:YTID_LEN], stem[YTID_LEN:]
    if not rest:
        return ytid, None
    m = re.fullmatch(r"_(\d+)_(\d+)", rest)
    if m:
        return ytid, int(m.group(1)) / 1000.0
    m = re.fullmatch(r"_(\d+)", rest)
    if m:
        return ytid, float(int(m.group(1)))
    return None


def read_rows(csv_path: Path) -> tuple[list[tuple[str, float, str, str]], int]:
    """Rows `(ytid, start_s, label, split)` and the number of malformed lines skipped."""
    rows, bad = [], 0
    with csv_path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if len(row) < 3:
                bad += row != []
                continue
            try:
                start = float(row[1])
            except ValueError:
                if i == 0:
                    continue  # a header line such as `ytid,start,class,set`
                bad += 1
                continue
            split = row[3].strip() if len(row) > 3 else ""
            rows.append((row[0].strip(), start, row[2].strip(), split))
    return rows, bad


def _index_media(root: Path, dirs: tuple[str, ...], suffixes: tuple[str, ...]) -> dict[tuple[str, float | None], Path]:
    found: dict[tuple[str, float | None], Path] = {}
    for d in dirs:
        folder = root if d == "." else root / d
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*") if d != "." else folder.glob("*")):
            if path.suffix.lower() not in suffixes or not path.is_file():
                continue
            key = parse_stem(path.stem)
            if key is not None:
                found.setdefault(_key(*key), path)
    return found


def _key(ytid: str, start: float | None) -> tuple[str, float | None]:
    return ytid, None if start is None else round(float(start), 3)


def open_vggsound(spec: Path, split: str | None = None) -> ClipDataset:
    csv_path = find_csv(spec)
    if csv_path is None:
        raise FileNotFoundError(f"{spec}: no vggsound.csv")
    root = csv_path.parent
    rows, bad = read_rows(csv_path)
    videos = _index_media(root, _VIDEO_DIRS, VIDEO_SUFFIXES)
    audios = _index_media(root, _AUDIO_DIRS, AUDIO_SUFFIXES)
    clips: list[Clip] = []
    missing = other_split = 0
    for ytid, start, label, row_split in rows:
        if split and row_split and row_split != split:
            other_split += 1
            continue
        video = videos.get(_key(ytid, start))
        offset = 0.0  # clip-cut files start at the clip
        if video is None and _key(ytid, None) in videos:
            video, offset = videos[_key(ytid, None)], float(start)  # full video: cut at the csv start
        if video is None:
            missing += 1  # without its video a sound has no picture to learn from
            continue
        # audio must be cut like the video, because one start time applies to both
        audio = audios.get(_key(ytid, start) if offset == 0.0 else _key(ytid, None)) or video
        clips.append(
            Clip(
                id=f"{ytid}_{int(round(start)):06d}",
                audio_path=audio,
                frame_source=video,
                label=label or None,
                start_s=offset,
                duration_s=CLIP_SECONDS,
                group=ytid,
            )
        )
    left_out = {"missing_files": missing, "other_split": other_split, "malformed_csv_rows": bad}
    return ClipDataset(clips, str(csv_path), "vggsound", left_out)
