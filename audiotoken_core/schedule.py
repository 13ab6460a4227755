"""Audio -> one token set per video frame (prompt travel driven by sound).

BEATs runs at most once per *keyframe*, on a hop grid of its own (about duration / hop windows), never once
per frame: 60 fps costs the same BEATs time as 8 fps, and frames only add a linear interpolation between
neighbouring keyframes. `FrameSchedule.interpolate` is the one place that interpolation lives, so tokens,
CLIP conditionings and pooled outputs all travel between keyframes the same way.

Timing rules (the node's documentation repeats them):
- frame f is at `start + f / fps` seconds; keyframe k at `start + k * hop`, as many as needed to reach the
  last frame, so every frame lies on a keyframe or between two;
- the keyframe at t hears `[t - w/2, t + w/2]` (`centred`) or `[t - w, t]` (`trailing`: only what was
  already heard). A window reaching past either end of the recording slides back inside it, so every window
  holds `w` seconds of real sound and frames near the ends hold the edge window's token; keyframes whose
  windows land on the same place share one BEATs run. A recording shorter than the window is repeated to
  fill it, as AudioToken Encode does;
- asking for frames beyond the end of the audio is an error that says how many frames fit (a held last
  frame would be a silent freeze in the video).

Plain torch: nothing here imports ComfyUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .audio import TARGET_RATE, WINDOW_SECONDS, prepare_audio, seconds_to_samples, take_window
from .pipeline import AudioTokenizer, ProgressFn, WindowTokens
from .resample import output_length

ALIGNS = ("centred", "trailing")
# Seconds between keyframes: the Schedule node's default too. The window's default is the embedder's own
# (`AudioTokenizer.window_seconds`): keyframe tokens are then the ones the embedder learned to give.
DEFAULT_HOP_S = 0.5
# Frame and keyframe times are computed in float64; positions this close to a keyframe count as on it,
# so a frame that sits on a keyframe gets exactly that keyframe's token (0.1 s hops are not exact binary).
_ON_KEY = 1e-9
_INTERPOLATE_CHUNK = 256  # frames


@dataclass(frozen=True)
class FrameSchedule:
    """When each frame is and which two keyframes it lies between.

    - `key_times [K]`, `frame_times [F]`: float64 seconds from the start of the recording.
    - `lower [F]` int64: the keyframe at or before the frame (0..K-2; 0 when K = 1).
    - `alpha [F]` float32 in [0, 1]: the weight of keyframe `lower + 1` (clamped at the ends).
    - `fps`, `hop_s`, `window_s`, `align`: how it was planned; the keyframe windows are cut from them.
    """

    key_times: torch.Tensor
    frame_times: torch.Tensor
    lower: torch.Tensor
    alpha: torch.Tensor
    fps: float
    hop_s: float
    window_s: float
    align: str

    def __post_init__(self):
        k, f = self.key_times.shape, self.frame_times.shape
        if len(k) != 1 or len(f) != 1 or k[0] < 1 or f[0] < 1:
            raise ValueError(f"a schedule needs >= 1 keyframe and >= 1 frame as 1-D tensors; got {k} and {f}")
        if self.lower.shape != f or self.alpha.shape != f:
            raise ValueError(f"lower {tuple(self.lower.shape)} and alpha {tuple(self.alpha.shape)} must match "
                             f"the {f[0]} frames")
        if int(self.lower.min()) < 0 or int(self.lower.max()) > max(k[0] - 2, 0):
            raise ValueError(f"lower must index keyframes 0..{max(k[0] - 2, 0)}")
        if self.align not in ALIGNS:
            raise ValueError(f"align must be one of {ALIGNS}, got {self.align!r}")

    @property
    def n_frames(self) -> int:
        return self.frame_times.shape[0]

    @property
    def n_keys(self) -> int:
        return self.key_times.shape[0]

    def interpolate(self, keys: torch.Tensor) -> torch.Tensor:
        """`[K, ...]` -> `[F, ...]`, linear between neighbouring keyframes, on `keys`' device and dtype.

        Any trailing shape: token sets `[K, n, D]`, CLIP conditionings `[K, 77, D]`, pooled `[K, D]`.
        """
        if not isinstance(keys, torch.Tensor) or keys.ndim < 1 or keys.shape[0] != self.n_keys:
            shape = tuple(keys.shape) if isinstance(keys, torch.Tensor) else type(keys).__name__
            raise ValueError(f"interpolate needs one row per keyframe ({self.n_keys}), got {shape}")
        if not keys.dtype.is_floating_point:
            raise ValueError(f"interpolate needs floating-point values, got {keys.dtype}")
        lower = self.lower.to(keys.device)
        upper = (lower + 1).clamp(max=self.n_keys - 1)
        alpha = self.alpha.to(keys.device, keys.dtype).view(-1, *([1] * (keys.ndim - 1)))
        out = keys.new_empty((self.n_frames, *keys.shape[1:]))
        # In chunks of frames: per-frame CLIP conditionings are large ([1440, 77, 2048] is 0.9 GB), so only
        # the output and one chunk's second neighbour exist at once.
        for a in range(0, self.n_frames, _INTERPOLATE_CHUNK):
            b = min(a + _INTERPOLATE_CHUNK, self.n_frames)
            torch.index_select(keys, 0, lower[a:b], out=out[a:b])
            out[a:b].lerp_(keys.index_select(0, upper[a:b]), alpha[a:b])
        return out


@dataclass(frozen=True)
class ScheduledTokens:
    """What `encode_schedule` returns: the plan, keyframe tokens (after smoothing) and per-frame loudness."""

    schedule: FrameSchedule
    keyframes: dict[str, torch.Tensor]
    loudness: torch.Tensor
    # [K, C] AudioSet probabilities of the keyframe windows (smoothed like the tokens), when asked for
    heard: torch.Tensor | None = None

    def frame_tokens(self) -> dict[str, torch.Tensor]:
        """`{clip: [F, n_tokens, D]}`: the keyframe tokens interpolated to every frame."""
        return {name: self.schedule.interpolate(t) for name, t in self.keyframes.items()}


def plan_schedule(duration_s: float, fps: float, n_frames: int = 0, start_s: float = 0.0,
                  hop_s: float = DEFAULT_HOP_S, window_s: float = WINDOW_SECONDS,
                  align: str = ALIGNS[0]) -> FrameSchedule:
    """Frame times, keyframe times and the interpolation between them for a recording `duration_s` long.

    `n_frames = 0` takes every frame from `start_s` to the end of the recording.
    """
    _check_positive("fps", fps)
    _check_positive("hop", hop_s, "seconds")
    _check_positive("window", window_s, "seconds")
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError("the audio is empty (0 s long), so there are no frames to schedule; check the file or "
                         "the trim settings upstream")
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 0:
        raise ValueError(f"frames must be a whole number >= 0 (0 = the whole recording), got {n_frames!r}")
    if start_s is None or not math.isfinite(start_s) or start_s < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start_s!r}")
    if start_s >= duration_s:
        raise ValueError(f"the schedule starts at {start_s:.2f} s but the audio is only {duration_s:.2f} s long")
    fitting = frames_in(duration_s, fps, start_s)
    count = fitting if n_frames == 0 else n_frames
    if count > fitting:
        raise ValueError(
            f"{n_frames} frames at {fps:g} fps from {start_s:g} s reach {start_s + (n_frames - 1) / fps:.2f} s, "
            f"but the audio is only {duration_s:.2f} s long: {fitting} frames fit. Set frames to {fitting} or "
            "fewer (0 = the whole recording), or lengthen the audio upstream.")
    frame_times = start_s + torch.arange(count, dtype=torch.float64) / fps
    n_keys = 1 + math.ceil((count - 1) / fps / hop_s - _ON_KEY)
    key_times = start_s + torch.arange(n_keys, dtype=torch.float64) * hop_s
    lower, alpha = _neighbours((frame_times - start_s) / hop_s, n_keys)
    return FrameSchedule(key_times, frame_times, lower, alpha, float(fps), float(hop_s), float(window_s), align)


def frames_in(duration_s: float, fps: float, start_s: float = 0.0) -> int:
    """How many frames `start + f / fps` lie inside a recording `duration_s` long (at least 1 when start is)."""
    return max(1, math.ceil((duration_s - start_s) * fps - _ON_KEY))


def window_offsets(schedule: FrameSchedule, n_samples: int) -> torch.Tensor:
    """`[K]` int64 sample offsets of the keyframe windows, slid inside a recording of `n_samples`."""
    lead = schedule.window_s / 2 if schedule.align == "centred" else schedule.window_s
    return _slide_inside(schedule.key_times - lead, seconds_to_samples(schedule.window_s), n_samples)


def cut_windows(wave16k: torch.Tensor, offsets: torch.Tensor, window_s: float) -> Iterator[torch.Tensor]:
    """The `[B, window]` audio at each sample offset, lazily (an hour at a 0.5 s hop is 7,200 windows)."""
    for offset in offsets.tolist():
        # take_window repeats a recording shorter than the window, as Encode does; otherwise it is a slice.
        yield take_window(wave16k, offset / TARGET_RATE, window_s)


def keyframe_tokens(tokenizer: AudioTokenizer, wave16k: torch.Tensor, schedule: FrameSchedule,
                    batch_windows: int | None = None, progress: ProgressFn | None = None,
                    heard: bool = False) -> WindowTokens:
    """`{clip: [K, n_tokens, D]}` for one prepared recording `[1, T]`, through the tokenizer's own path, and
    with `heard` what BEATs's AudioSet head hears at each keyframe `[K, C]` (same BEATs pass).

    Keyframes whose windows slid to the same place at the ends of the recording share one BEATs run, so
    the cost is that of the distinct windows (at most what windows mode pays at the same hop, plus one).
    """
    offsets, which = torch.unique_consecutive(window_offsets(schedule, wave16k.shape[-1]), return_inverse=True)
    out = tokenizer.encode_windows(cut_windows(wave16k, offsets, schedule.window_s), total=offsets.shape[0],
                                   batch_windows=batch_windows, progress=progress, heard=heard)
    return WindowTokens({name: t[which.to(t.device)] for name, t in out.tokens.items()},
                        None if out.heard is None else out.heard[which])


def smooth_keyframes(keys: torch.Tensor, hop_s: float, sigma_s: float) -> torch.Tensor:
    """Gaussian smoothing of `[K, ...]` along the keyframe axis, sigma in seconds (0 = off).

    More smoothing means less flicker between frames but a slower reaction to a change in the sound. The
    weights are renormalised at the ends, so the first and last keyframes are not pulled toward zero.
    """
    _check_non_negative("smoothing", sigma_s)
    n_keys = keys.shape[0]
    if sigma_s == 0 or n_keys == 1:
        return keys
    sigma = sigma_s / hop_s  # in keyframes
    radius = min(n_keys - 1, math.ceil(3 * sigma))
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=keys.device)
    kernel = torch.exp(-0.5 * (steps / sigma) ** 2).view(1, 1, -1)
    rows = keys.float().reshape(n_keys, -1).T.unsqueeze(1)  # [values, 1, K]: one signal per vector entry
    total = F.conv1d(rows, kernel, padding=radius)
    weight = F.conv1d(torch.ones(1, 1, n_keys, device=keys.device), kernel, padding=radius)
    return (total / weight).squeeze(1).T.reshape(keys.shape).to(keys.dtype)


def frame_loudness(wave16k: torch.Tensor, schedule: FrameSchedule) -> torch.Tensor:
    """`[F]` float32 in [0, 1]: the RMS of each frame's stretch of sound over the loudest frame's.

    A frame's stretch is one frame long, placed like the keyframe windows (around the frame when centred,
    just before it when trailing) and slid inside the recording the same way. Silence gives all zeros.
    """
    mono = wave16k.reshape(-1)
    length = max(1, seconds_to_samples(1.0 / schedule.fps))
    lead = 0.5 / schedule.fps if schedule.align == "centred" else 1.0 / schedule.fps
    first = _slide_inside(schedule.frame_times - lead, length, mono.shape[0])
    last = (first + length).clamp(max=mono.shape[0])
    # float64 running sum: a float32 one loses the quiet frames of a long recording in rounding
    energy = F.pad(torch.cumsum(mono.double() ** 2, 0), (1, 0))
    rms = ((energy[last] - energy[first]).clamp(min=0) / (last - first)).sqrt()
    peak = rms.max()
    return (rms / peak if peak > 0 else torch.zeros_like(rms)).float()


def encode_schedule(tokenizer: AudioTokenizer, waveform, sample_rate: int, fps: float, n_frames: int = 0,
                    start_s: float = 0.0, hop_s: float = DEFAULT_HOP_S, window_s: float | None = None,
                    align: str = ALIGNS[0], smoothing_s: float = 0.0, batch_windows: int | None = None,
                    progress: ProgressFn | None = None, heard: bool = False,
                    check: Callable[[FrameSchedule], None] | None = None) -> ScheduledTokens:
    """One recording -> its frame schedule, smoothed keyframe tokens (model device) and per-frame loudness;
    with `heard`, also the keyframes' AudioSet probabilities, smoothed the same way. `window_s=None` is the
    tokenizer's window (the embedder's).

    `check(schedule)` sees the plan before the audio is resampled or BEATs runs, and may raise: a refusal of
    an hour-long schedule (`limits.check_schedule`) then costs a moment, not the hour.
    """
    _check_non_negative("smoothing", smoothing_s)  # before BEATs runs, not after
    # planned from the length resampling will give, so nothing is resampled before the check
    n_samples = output_length(int(waveform.shape[-1]), sample_rate, TARGET_RATE)
    window_s = tokenizer.window_seconds if window_s is None else window_s
    schedule = plan_schedule(n_samples / TARGET_RATE, fps, n_frames, start_s, hop_s, window_s, align)
    if check is not None:
        check(schedule)
    wave = _one_recording(prepare_audio(waveform, sample_rate))
    keys = keyframe_tokens(tokenizer, wave, schedule, batch_windows, progress, heard)
    tokens = {name: smooth_keyframes(t, schedule.hop_s, smoothing_s) for name, t in keys.tokens.items()}
    probs = None if keys.heard is None else smooth_keyframes(keys.heard, schedule.hop_s, smoothing_s)
    return ScheduledTokens(schedule, tokens, frame_loudness(wave, schedule), probs)


def _neighbours(position: torch.Tensor, n_keys: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower keyframe, weight of the next one) for positions measured in keyframes."""
    snapped = position.round()
    position = torch.where((position - snapped).abs() < _ON_KEY, snapped, position)
    lower = position.floor().clamp(0, max(n_keys - 2, 0))
    alpha = (position - lower).clamp(0, 1) if n_keys > 1 else torch.zeros_like(position)
    return lower.long(), alpha.float()


def _slide_inside(starts_s: torch.Tensor, length: int, n_samples: int) -> torch.Tensor:
    """Sample offsets of `length`-long stretches starting at `starts_s`, moved to lie inside the recording."""
    ideal = torch.round(starts_s * TARGET_RATE).long()
    return ideal.clamp(0, max(0, n_samples - length))


def _one_recording(wave16k: torch.Tensor) -> torch.Tensor:
    if wave16k.shape[0] != 1:
        raise ValueError(f"a frame schedule follows one recording, but the audio holds {wave16k.shape[0]} sounds; "
                         "pick one of the batch upstream")
    return wave16k


def _check_positive(what: str, value, unit: str = "") -> None:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number{' of ' + unit if unit else ''}, got {value!r}")


def _check_non_negative(what: str, value) -> None:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 seconds (0 = off), got {value!r}")


__all__ = ["ALIGNS", "DEFAULT_HOP_S", "FrameSchedule", "ScheduledTokens", "cut_windows", "encode_schedule",
           "frame_loudness", "frames_in", "keyframe_tokens", "plan_schedule", "smooth_keyframes", "window_offsets"]
