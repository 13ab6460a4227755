"""How large a frame schedule may be: checked before BEATs or a text encoder does any work.

A schedule grows with its recording. `frames = 0` on a 1 h recording at 8 fps asks for 28,800 frames and
7,200 keyframes, and the SD1.5 conditioning for them is 28,800 x 77 x 768 x 4 bytes = 6.8 GB. Unchecked, the
nodes work for most of an hour and fill the memory before anything says what was asked. So the size is
checked from the plan alone (a few tensors of times), and a refusal names the numbers and what to lower.

Three limits:
- frames: a sane video length. Every frame is one sampled image downstream, so 14,400 frames (10 min at
  24 fps, 30 min at 8 fps) is already hours of sampling;
- keyframes: BEATs runs once per keyframe, and Text Encode runs the text encoder once per keyframe;
- memory: the per-frame conditioning (and the per-keyframe one it is interpolated from) must fit in half of
  what is free where the host keeps conditionings; the sampler and the decoder need the rest.

Plain torch: the free memory is passed in by the caller (the nodes read it through the host's model management).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_FRAMES = 14_400
MAX_KEYFRAMES = 8_000  # over an hour of sound at the default 0.5 s hop (7,201 keyframes)
MEMORY_SHARE = 0.5
PROMPT_POSITIONS = 77  # one CLIP chunk: the fewest positions a frame's conditioning has
FLOAT32_BYTES = 4


class ScheduleTooLarge(ValueError):
    """A schedule refused for its size; the message names the numbers and what to lower."""


@dataclass(frozen=True)
class Footprint:
    """What a schedule's largest result holds per row (frame or keyframe): `positions x width` values of
    `itemsize` bytes, and how many keyframe copies exist at the peak besides the frames."""

    positions: int
    width: int
    itemsize: int = FLOAT32_BYTES
    key_copies: int = 2  # the per-keyframe conditionings, and their concatenation, before interpolation
    estimate: bool = False  # True: a lower bound (the text encoder is not known yet)

    @property
    def row_bytes(self) -> int:
        return self.positions * self.width * self.itemsize

    def rows(self, n_frames: int, n_keys: int) -> int:
        return n_frames + self.key_copies * n_keys

    def bytes(self, n_frames: int, n_keys: int) -> int:
        return self.rows(n_frames, n_keys) * self.row_bytes

    def describe(self, n_frames: int, n_keys: int) -> str:
        copies = f" + {self.key_copies} x {n_keys:,} keyframes" if self.key_copies and n_keys else ""
        about = "at least " if self.estimate else ""
        return (f"{about}{gigabytes(self.bytes(n_frames, n_keys))} ({n_frames:,} frames{copies}, each "
                f"{self.positions} x {self.width} values x {self.itemsize} bytes)")


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_schedule(n_frames: int, n_keys: int, fps: float, hop_s: float, footprint: Footprint,
                   free_bytes: int | None = None, what: str = "the conditioning") -> None:
    """Raises `ScheduleTooLarge` when `n_frames` frames and `n_keys` keyframes are beyond a sane video length,
    beyond what BEATs and the text encoder should run through in one go, or beyond half of `free_bytes`
    (None: memory not checked). `what` names the result whose bytes `footprint` describes."""
    size = footprint.describe(n_frames, n_keys)
    video = f"{n_frames:,} frames at {fps:g} fps ({duration(n_frames / fps)} of video)"
    if n_frames > MAX_FRAMES:
        raise ScheduleTooLarge(
            f"{video} is more than a schedule may have: {MAX_FRAMES:,} frames ({duration(MAX_FRAMES / fps)} at "
            f"{fps:g} fps; each frame is one sampled image downstream). {what.capitalize()} alone would take "
            f"{size}. Set frames to {MAX_FRAMES:,} or fewer (0 takes the whole recording), lower fps, or pick a "
            "stretch with start_seconds and frames.")
    if n_keys > MAX_KEYFRAMES:
        span = (n_frames - 1) / fps
        hop = span / (MAX_KEYFRAMES - 1)
        raise ScheduleTooLarge(
            f"{n_keys:,} keyframes (one every {hop_s:g} s over {duration(span)}) is more than {MAX_KEYFRAMES:,}: "
            "BEATs and the text encoder run once per keyframe. Raise hop_seconds to at least "
            f"{math.ceil(hop * 100) / 100:g}, or fewer frames (frames, fps).")
    if free_bytes is not None:
        budget = int(free_bytes * MEMORY_SHARE)
        if footprint.bytes(n_frames, n_keys) > budget:
            fit = fitting_frames(n_frames, n_keys, footprint, budget)
            lower = (f"Set frames to {fit:,} or fewer, or lower fps" if fit > 0 else
                     "Nothing of this schedule fits: free memory first (close other programs or workflows)")
            raise ScheduleTooLarge(
                f"{video}: {what} would take {size}, more than this machine can hold: "
                f"{gigabytes(free_bytes)} is free and at most half of it ({gigabytes(budget)}) may go to it, "
                f"since sampling needs the rest. {lower}.")


def fitting_frames(n_frames: int, n_keys: int, footprint: Footprint, budget: int) -> int:
    """About how many frames (with keyframes in the same proportion) fit in `budget` bytes."""
    per_frame = footprint.row_bytes * (1 + footprint.key_copies * n_keys / max(n_frames, 1))
    return max(0, int(budget // per_frame))


def duration(seconds: float) -> str:
    """`2 h 5 min`, `12 min 30 s`, `45.5 s`: how long, in words a user reads at a glance."""
    if seconds >= 3600:
        h, rest = divmod(round(seconds), 3600)
        return f"{h} h {rest // 60} min" if rest // 60 else f"{h} h"
    if seconds >= 60:
        m, s = divmod(round(seconds), 60)
        return f"{m} min {s} s" if s else f"{m} min"
    return f"{seconds:.3g} s"


__all__ = ["FLOAT32_BYTES", "Footprint", "MAX_FRAMES", "MAX_KEYFRAMES", "MEMORY_SHARE", "PROMPT_POSITIONS",
           "ScheduleTooLarge", "check_schedule", "duration", "fitting_frames", "gigabytes"]
