"""JSONL manifest: one object per line.

Keys: `audio` (sound or video file), `image` or `video` (the picture; default: `audio` when it is a
video), optional `id`, `label`, `start` (s), `duration` (s), `split`, `group`. Relative paths are
relative to the manifest's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from .clip import VIDEO_SUFFIXES, Clip, ClipDataset


def open_manifest(path: Path, split: str | None = None) -> ClipDataset:
    root = path.parent
    clips: list[Clip] = []
    bad = other_split = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            audio = root / item["audio"]
            picture = item.get("image") or item.get("video")
            if picture is None and audio.suffix.lower() in VIDEO_SUFFIXES:
                picture = item["audio"]
            if picture is None:
                raise KeyError("image")
            start = float(item.get("start", 0.0))
            duration = item.get("duration")
            duration = None if duration is None else float(duration)
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            if bad <= 3:
                import logging

                logging.getLogger(__name__).warning("%s:%d: malformed manifest line (%s)", path, lineno, exc)
            continue
        if split and item.get("split") and item["split"] != split:
            other_split += 1
            continue
        cid = str(item.get("id") or f"{Path(item['audio']).with_suffix('').as_posix()}@{start:g}")
        clips.append(
            Clip(
                id=cid,
                audio_path=audio,
                frame_source=root / picture,
                label=item.get("label") or None,
                start_s=start,
                duration_s=duration,
                group=str(item.get("group") or Path(item["audio"]).stem),
            )
        )
    return ClipDataset(clips, str(path), "manifest", {"malformed_lines": bad, "other_split": other_split})
