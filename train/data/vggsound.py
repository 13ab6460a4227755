"""VGGSound layout: `vggsound.csv` (ytid, start, label, split; no header in the official file) and
video clips named `<ytid>_<startms>_<endms>`, `<ytid>_<start:06d>` or `<ytid>`, with optional
pre-extracted audio of the same stem (`audio/` folder).

On the train split the official AudioToken filters apply by default, as in the official loader: the clips
whose sound and picture do not match and those with poor pictures (`unmatch_videos.txt` and
`low_quality_videos.txt` here, plain-text copies of the official pickles; see README.md).
`AUDIOTOKEN_OFFICIAL_FILTERS=0` turns them off; the dataset's `left_out` counts what each removed, and the
training log shows it.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import re
from pathlib import Path

from .clip import AUDIO_SUFFIXES, VIDEO_SUFFIXES, Clip, ClipDataset, read_id_list

log = logging.getLogger(__name__)

YTID_LEN = 11
CLIP_SECONDS = 10.0
FILTERS_ENV = "AUDIOTOKEN_OFFICIAL_FILTERS"
FILTERS_DIR = Path(__file__).parent  # shipped as package data next to this module
# left_out key -> list file: the official loader's --filter_unmatch_videos and --filter_low_quality_imgs
OFFICIAL_FILTERS = {"official_unmatched": "unmatch_videos.txt", "official_low_quality": "low_quality_videos.txt"}
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


def filters_enabled(requested: bool | None = None) -> bool:
    """An explicit choice wins; otherwise on unless AUDIOTOKEN_OFFICIAL_FILTERS is 0/off/false/no."""
    if requested is not None:
        return bool(requested)
    return os.environ.get(FILTERS_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


@functools.lru_cache(maxsize=1)
def official_filter_ids() -> dict[str, frozenset[str]]:
    """The official id lists by left_out key (read once per process: 90 k ids)."""
    missing = [name for name in OFFICIAL_FILTERS.values() if not (FILTERS_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the official VGGSound filter lists {', '.join(missing)} are missing from "
                                f"{FILTERS_DIR} (an install without the trainer's data files): reinstall, or set "
                                f"{FILTERS_ENV}=0 to train without them")
    return {key: frozenset(read_id_list(FILTERS_DIR / name)) for key, name in OFFICIAL_FILTERS.items()}


def _filtered_by(ytid: str, filters: dict[str, frozenset[str]]) -> str | None:
    return next((key for key, ids in filters.items() if ytid in ids), None)


def open_vggsound(spec: Path, split: str | None = None, official_filters: bool | None = None) -> ClipDataset:
    csv_path = find_csv(spec)
    if csv_path is None:
        raise FileNotFoundError(f"{spec}: no vggsound.csv")
    root = csv_path.parent
    rows, bad = read_rows(csv_path)
    videos = _index_media(root, _VIDEO_DIRS, VIDEO_SUFFIXES)
    audios = _index_media(root, _AUDIO_DIRS, AUDIO_SUFFIXES)
    clips: list[Clip] = []
    missing = other_split = 0
    # the official loader filters its train set only; test clips are all scored
    filters = official_filter_ids() if split == "train" and filters_enabled(official_filters) else {}
    removed = dict.fromkeys(OFFICIAL_FILTERS, 0)
    for ytid, start, label, row_split in rows:
        if split and row_split and row_split != split:
            other_split += 1
            continue
        reason = _filtered_by(ytid, filters)
        if reason:
            removed[reason] += 1
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
    if split == "train":
        _log_filters(filters, removed)
        left_out.update(removed if filters else {})
    return ClipDataset(clips, str(csv_path), "vggsound", left_out)


def _log_filters(filters: dict, removed: dict[str, int]) -> None:
    if not filters:
        log.info("official VGGSound filters are off (%s=0): no clips removed by them", FILTERS_ENV)
        return
    log.info("official VGGSound filters removed %d clips: %d with unmatched sound and picture, %d with low picture "
             "quality (%s=0 turns them off)", sum(removed.values()), removed["official_unmatched"],
             removed["official_low_quality"], FILTERS_ENV)
