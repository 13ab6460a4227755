"""What BEATs heard: AudioSet probabilities for sounds of any length, one row per window or one per sound.

BEATs was fine-tuned on 10 s AudioSet clips, so long audio is cut into windows like AudioToken Encode cuts it
(same count, the same short-tail rule). Unlike Encode, a short last window is not tiled: the head scores a
clip of any length, so it runs on the real samples, padded in the batch and masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .audio import TARGET_RATE, count_windows, prepare_audio, seconds_to_samples
from .beats.fbank import min_samples

MODES = ("mean", "windows")
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Heard:
    """`probs[r]` (float32, CPU) is what BEATs heard in `spans[r] = (sound index, start s, end s)`.

    `windows` rows are sound-major (all windows of sound 0 first), as AudioToken Encode's token batches.
    """

    probs: torch.Tensor
    spans: list[tuple[int, float, float]]


def window_bounds(n_samples: int, window_s: float) -> list[tuple[int, int]]:
    """Sample ranges `[start, end)` of consecutive windows; the last may be shorter."""
    win = max(1, seconds_to_samples(window_s))
    return [(i * win, min((i + 1) * win, n_samples)) for i in range(count_windows(n_samples, window_s))]


@torch.no_grad()
def classify_audio(
    beats,
    waveform,
    sample_rate: int,
    mode: str = "mean",
    window_s: float = 10.0,
    batch_windows: int = 8,
    progress: ProgressFn | None = None,
) -> Heard:
    """AudioSet probabilities of each sound (`mean` over its windows) or of each window (`windows`).

    `waveform` is anything `prepare_audio` takes. At most `batch_windows` windows (of any sounds) run in one
    BEATs pass; `progress(done, total)` counts them and may raise to interrupt.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch_windows < 1:
        raise ValueError("batch_windows must be >= 1")
    wave = prepare_audio(waveform, sample_rate)
    _check_long_enough(wave.shape[-1], window_s, beats.cfg.input_patch_size)
    bounds = window_bounds(wave.shape[-1], window_s)
    rows = [(sound, start, end) for sound in range(wave.shape[0]) for start, end in bounds]  # sound-major
    probs = []
    for first in range(0, len(rows), batch_windows):
        probs.append(_classify_rows(beats, wave, rows[first : first + batch_windows]))
        if progress is not None:
            progress(min(first + batch_windows, len(rows)), len(rows))
    probs = torch.cat(probs)
    if mode == "mean":
        end = bounds[-1][1] / TARGET_RATE
        per_sound = probs.view(wave.shape[0], len(bounds), -1).mean(dim=1)
        return Heard(per_sound, [(sound, 0.0, end) for sound in range(wave.shape[0])])
    return Heard(probs, [(sound, start / TARGET_RATE, end / TARGET_RATE) for sound, start, end in rows])


def _classify_rows(beats, wave: torch.Tensor, rows: list[tuple[int, int, int]]) -> torch.Tensor:
    """`[len(rows), C]` for windows `(sound, start, end)`, run as one zero-padded, masked batch."""
    lengths = [end - start for _, start, end in rows]
    longest = max(lengths)
    batch = torch.stack([F.pad(wave[sound, start:end], (0, longest - (end - start))) for sound, start, end in rows])
    mask = None
    if min(lengths) < longest:
        mask = torch.arange(longest)[None, :] >= torch.tensor(lengths)[:, None]
    device = next(beats.parameters()).device
    return beats.classify(batch.to(device), None if mask is None else mask.to(device)).cpu()


def _check_long_enough(n_samples: int, window_s: float, patch_size: int) -> None:
    need = min_samples(patch_size)
    if n_samples < need:
        raise ValueError(f"The audio is {n_samples / TARGET_RATE:.3f} s long; BEATs needs at least "
                         f"{need / TARGET_RATE:.3f} s to hear anything.")
    # A tail window is kept from half a window on (count_windows), so half a window must hold one patch.
    if not math.isfinite(window_s) or seconds_to_samples(window_s) < 2 * need:
        raise ValueError(f"window_seconds must be at least {2 * need / TARGET_RATE:.2f} s, got {window_s}")
