"""`Clip`: one training example (a sound and where its picture comes from) and the list type holding them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .decode import DecodeError, decode_audio, decode_video_frame, load_image, media_duration

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


@dataclass(frozen=True)
class Clip:
    """A sound with its picture.

    `audio_path` is any file with an audio track (a sound file or a video); `frame_source` is an image
    or a video; `start_s` is where the clip begins inside both files and `duration_s` how long it runs
    (None: to the end). `group` is the id used by exclusion lists (the YouTube id for VGGSound).
    """

    id: str
    audio_path: Path
    frame_source: Path | None
    label: str | None = None
    start_s: float = 0.0
    duration_s: float | None = None
    group: str | None = None

    @property
    def frame_is_video(self) -> bool:
        return self.frame_source is not None and self.frame_source.suffix.lower() in VIDEO_SUFFIXES

    def load_audio(self) -> tuple[torch.Tensor, int]:
        """`(waveform[C, T] float32, sample_rate)` of this clip only, as stored (any rate/channels)."""
        samples, rate = decode_audio(self.audio_path, self.start_s, self.duration_s)
        return torch.from_numpy(samples), rate

    def load_frame(self, time_s: float | None = None):
        """The picture as an RGB PIL image; for a video the frame at `time_s` seconds into the clip
        (None: the middle of the clip)."""
        if self.frame_source is None:
            raise DecodeError(f"clip {self.id}: no picture")
        if not self.frame_is_video:
            return load_image(self.frame_source)
        if time_s is None:
            length = self.duration_s
            if length is None:
                total = media_duration(self.frame_source)
                length = (total - self.start_s) if total else 0.0
            time_s = max(0.0, length / 2)
        return decode_video_frame(self.frame_source, self.start_s + max(0.0, float(time_s)))


class ClipDataset(torch.utils.data.Dataset):
    """An indexable list of `Clip`s, plus what was left out while building it (for the log)."""

    def __init__(self, clips: list[Clip], source: str, kind: str, left_out: dict[str, int] | None = None):
        self.clips = list(clips)
        self.source = source
        self.kind = kind
        self.left_out = dict(left_out or {})

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> Clip:
        return self.clips[index]

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.left_out.items() if v)
        return f"ClipDataset({self.kind}, {len(self)} clips from {self.source}{'; left out: ' + extra if extra else ''})"

    def excluding(self, ids: set[str]) -> "ClipDataset":
        """Drop clips whose id or group is listed."""
        kept = [c for c in self.clips if c.id not in ids and (c.group is None or c.group not in ids)]
        left_out = dict(self.left_out)
        left_out["excluded"] = left_out.get("excluded", 0) + len(self.clips) - len(kept)
        return ClipDataset(kept, self.source, self.kind, left_out)


def read_id_list(path: str | Path) -> set[str]:
    """Ids to exclude: one per line (text), a JSON list, the first column of a CSV, or a pickled list (the
    official `constants/*.pkl`, read without running anything from it)."""
    import csv
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exclusion list {path} does not exist")
    if path.suffix.lower() in (".pkl", ".pickle"):
        return set(read_pickled_ids(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return {str(x).strip() for x in json.loads(text)}
    if path.suffix.lower() == ".csv":
        return {row[0].strip() for row in csv.reader(text.splitlines()) if row and row[0].strip()}
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def read_pickled_ids(path: str | Path) -> list[str]:
    """A pickled list of id strings, in its order. Every pickle global is refused (a pickle can run code when
    it loads one), so only plain lists, strings and numbers load."""
    import io
    import pickle

    path = Path(path)

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"{path.name}: refusing the pickle global {module}.{name}")

    try:
        ids = _NoGlobals(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable pickled id list ({exc})") from exc
    if not isinstance(ids, (list, tuple, set, frozenset)) or not all(isinstance(x, str) for x in ids):
        raise ValueError(f"{path.name}: expected a list of id strings, found {type(ids).__name__}")
    return list(ids)
