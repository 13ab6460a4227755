"""Waveform preparation: any layout, rate, channel count and sample format in; mono 16 kHz float32 out.

BEATs was trained on 16 kHz mono audio, and the official loader tiles clips shorter than its window, so
both behaviours live here once for the nodes and the trainer.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from .resample import resample

TARGET_RATE = 16_000
# BEATs was fine-tuned on 10 s AudioSet clips and the official embedder on 10 s windows: the default window.
WINDOW_SECONDS = 10.0


def prepare_audio(waveform, sample_rate: int) -> torch.Tensor:
    """Return `[B, T]` float32 mono audio at 16 kHz.

    `waveform` is `[T]`, `[C, T]` or `[B, C, T]` (torch tensor or numpy array). Integer PCM is scaled to
    [-1, 1]; unsigned 8-bit is offset-binary (128 is silence) as in WAV files. Channels are averaged.
    """
    wave = _as_tensor(waveform)
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if wave.ndim == 1:
        wave = wave[None, None]
    elif wave.ndim == 2:
        wave = wave[None]
    elif wave.ndim != 3:
        raise ValueError(f"waveform must be [T], [C, T] or [B, C, T]; got shape {tuple(wave.shape)}")
    if wave.numel() == 0 or wave.shape[-1] == 0:
        raise ValueError(f"the audio is empty (shape {tuple(wave.shape)}): nothing to encode")
    wave = _to_float(wave)
    if not torch.isfinite(wave).all():
        bad = int((~torch.isfinite(wave)).sum())
        raise ValueError(f"the audio has {bad} NaN or infinite samples; clean or re-decode the file")
    # Downmix before resampling: a sixth of the work for 5.1 audio, and the result is the same (both linear).
    mono = wave.mean(dim=1) if wave.shape[1] > 1 else wave[:, 0]
    mono = mono.float()
    if sample_rate != TARGET_RATE:
        mono = resample(mono, int(sample_rate), TARGET_RATE)
    return mono.contiguous()


def seconds_to_samples(seconds: float, rate: int = TARGET_RATE) -> int:
    return int(round(float(seconds) * rate))


def take_window(wave16k: torch.Tensor, offset_s: float, duration_s: float, tile: bool = True) -> torch.Tensor:
    """The `[B, duration]` window starting at `offset_s`.

    Where the clip ends before the window does, the sound from `offset_s` on is repeated to fill it
    (`tile=True`: from 0 s this is the official loader's `np.tile`, and it is how `iter_windows` fills a
    tail) or zero-padded. A window that starts at or past the end is an error.
    """
    wave16k = _check_16k(wave16k)
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"window length must be a positive number of seconds, got {duration_s!r}")
    if offset_s is None or not math.isfinite(offset_s) or offset_s < 0:
        raise ValueError(f"window start must be >= 0 seconds, got {offset_s!r}")
    length = wave16k.shape[-1]
    start, need = seconds_to_samples(offset_s), max(1, seconds_to_samples(duration_s))
    if start >= length:
        raise ValueError(
            f"the window starts at {offset_s:.2f} s but the audio is only {length / TARGET_RATE:.2f} s long"
        )
    end = start + need
    if end <= length:
        return wave16k[:, start:end]
    if tile:
        return _repeat_to(wave16k[:, start:], need)
    out = wave16k.new_zeros(wave16k.shape[0], need)
    out[:, : length - start] = wave16k[:, start:]
    return out


def count_windows(n_samples: int, window_s: float, hop_s: float | None = None, offset_s: float = 0.0,
                  min_last_s: float | None = None) -> int:
    """How many windows `iter_windows` yields; at least one when the offset is inside the audio."""
    win, hop, start = _window_geometry(window_s, hop_s, offset_s)
    if start >= n_samples:
        raise ValueError(
            f"the window starts at {offset_s:.2f} s but the audio is only {n_samples / TARGET_RATE:.2f} s long"
        )
    usable = n_samples - start
    if usable <= win:
        return 1
    full = 1 + (usable - win) // hop
    # Sound after the last full window earns one more (tiled) window when there is enough of it to matter.
    leftover = usable - ((full - 1) * hop + win)
    return full + 1 if leftover >= max(1, seconds_to_samples(_min_last(window_s, min_last_s))) else full


def iter_windows(wave16k: torch.Tensor, window_s: float, hop_s: float | None = None, offset_s: float = 0.0,
                 min_last_s: float | None = None) -> Iterator[torch.Tensor]:
    """Consecutive `[B, window]` windows, lazily, so an hour of audio never exists twice in memory.

    The last, partial window is tiled from its own content, as a short clip would be.
    """
    wave16k = _check_16k(wave16k)
    win, hop, start = _window_geometry(window_s, hop_s, offset_s)
    n = count_windows(wave16k.shape[-1], window_s, hop_s, offset_s, min_last_s)
    for i in range(n):
        a = start + i * hop
        yield _repeat_to(wave16k[:, a : a + win], win)


def _repeat_to(seg: torch.Tensor, need: int) -> torch.Tensor:
    """`seg` repeated along time to `need` samples (the one tiling rule), or `seg` itself when long enough."""
    if seg.shape[-1] >= need:
        return seg[:, :need]
    return seg.repeat(1, math.ceil(need / seg.shape[-1]))[:, :need]


def _min_last(window_s: float, min_last_s: float | None) -> float:
    # By default a tail counts from 1 s of sound, or half a window when windows are shorter than 2 s.
    return min(1.0, window_s / 2) if min_last_s is None else min_last_s


def _window_geometry(window_s: float, hop_s: float | None, offset_s: float) -> tuple[int, int, int]:
    if window_s is None or not math.isfinite(window_s) or window_s <= 0:
        raise ValueError(f"window length must be a positive number of seconds, got {window_s!r}")
    hop_s = window_s if hop_s is None else hop_s
    if not math.isfinite(hop_s) or hop_s <= 0:
        raise ValueError(f"window hop must be a positive number of seconds, got {hop_s!r}")
    if not math.isfinite(offset_s) or offset_s < 0:
        raise ValueError(f"window start must be >= 0 seconds, got {offset_s!r}")
    return max(1, seconds_to_samples(window_s)), max(1, seconds_to_samples(hop_s)), seconds_to_samples(offset_s)


def _check_16k(wave: torch.Tensor) -> torch.Tensor:
    if not isinstance(wave, torch.Tensor) or wave.ndim != 2:
        raise ValueError("expected prepared audio of shape [B, T]; call prepare_audio first")
    if wave.shape[-1] == 0:
        raise ValueError("the audio is empty: nothing to encode")
    return wave


def _as_tensor(waveform) -> torch.Tensor:
    if isinstance(waveform, torch.Tensor):
        return waveform.detach().cpu() if waveform.device.type != "cpu" else waveform.detach()
    if isinstance(waveform, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(waveform))
    raise ValueError(f"waveform must be a torch tensor or numpy array, got {type(waveform).__name__}")


def _to_float(wave: torch.Tensor) -> torch.Tensor:
    if wave.dtype == torch.uint8:
        return (wave.float() - 128.0) / 128.0
    if wave.dtype == torch.bool:
        raise ValueError("waveform has boolean samples; expected float or integer PCM")
    if not wave.dtype.is_floating_point and not wave.dtype.is_complex:
        bits = torch.iinfo(wave.dtype).bits
        return wave.float() / float(2 ** (bits - 1))
    if wave.dtype.is_complex:
        raise ValueError("waveform has complex samples; expected real audio")
    return wave.float()
