"""One random training view of a clip: an audio window and a frame from inside that window.

The original loader tiles a clip to 10 s and picks a whole-second window start in [0, 10 - window);
here the start is uniform over the clip (tiled when shorter than the window) and the frame time is
uniform inside the window, as the original picks a random frame of the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from audiotoken_core.audio import TARGET_RATE, prepare_audio, take_window

from .clip import Clip
from .decode import DecodeError
from .frames import image_to_tensor, resize_frame

log = logging.getLogger(__name__)

# What a broken file can raise while being decoded or prepared; anything else is a bug and propagates.
SKIPPABLE = (DecodeError, ValueError, OSError, RuntimeError, EOFError)


@dataclass
class View:
    wave: torch.Tensor  # [window * 16000] float32 mono 16 kHz
    pixels: torch.Tensor  # [3, H, W] in [-1, 1]
    window_start_s: float
    frame_time_s: float


def item_rng(seed: int, *keys: int) -> np.random.Generator:
    """Independent, reproducible randomness per (seed, epoch, index, ...) regardless of worker order."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]])


def make_view(clip: Clip, rng: np.random.Generator, window_s: float, size: tuple[int, int], policy: str) -> View:
    wave, rate = clip.load_audio()
    wave16k = prepare_audio(wave, rate)  # [1, T]
    length_s = wave16k.shape[-1] / TARGET_RATE
    start = float(rng.uniform(0.0, length_s - window_s)) if length_s > window_s else 0.0
    window = take_window(wave16k, start, window_s, tile=True)[0]
    frame_time = start + float(rng.uniform(0.0, min(window_s, length_s)))
    frame = clip.load_frame(None if not clip.frame_is_video else min(frame_time, max(0.0, length_s - 1e-3)))
    pixels = image_to_tensor(resize_frame(frame, size, policy))
    return View(window.float().contiguous(), pixels, start, frame_time)


def try_view(clip: Clip, rng: np.random.Generator, window_s: float, size, policy) -> View | None:
    """`make_view`, or None (with a warning naming the file) when the clip cannot be decoded."""
    try:
        return make_view(clip, rng, window_s, size, policy)
    except SKIPPABLE as exc:
        log.warning("skipping clip %s: %s", clip.id, exc)
        return None
