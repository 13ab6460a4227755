"""Decoding with PyAV: audio at any rate, layout and sample format; single video frames by time.

Every function raises `DecodeError` (a ValueError) naming the file, so callers can skip broken files
without catching PyAV's many exception types.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DecodeError(ValueError):
    """A media file could not be opened or holds no usable stream."""


def _open(path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise DecodeError(f"{path}: cannot open ({exc})") from exc


def decode_audio(path: str | Path, start_s: float = 0.0, duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """`(samples[C, T] float32, sample_rate)` of the first audio stream, from `start_s` for `duration_s`."""
    import av

    container = _open(path)
    try:
        if not container.streams.audio:
            raise DecodeError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise DecodeError(f"{path}: audio stream has no sample rate")
        if start_s > 0:
            # seek lands on a packet at or before start_s; the exact cut happens below from frame times
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        # Resampling to planar float keeps rate and channels: one layout to concatenate, whatever the codec.
        resampler = None
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        end_s = None if duration_s is None else start_s + duration_s
        for frame in container.decode(stream):
            if first_time is None:
                first_time = float(frame.time) if frame.time is not None else 0.0
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=frame.sample_rate)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
            if end_s is not None and frame.time is not None and frame.time > end_s:
                break
        if resampler is not None:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise DecodeError(f"{path}: audio decoding failed ({exc})") from exc
    finally:
        container.close()
    if not chunks:
        raise DecodeError(f"{path}: audio stream decodes to no samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    skip = max(0, int(round((start_s - (first_time or 0.0)) * rate)))
    samples = samples[:, skip:]
    if duration_s is not None:
        samples = samples[:, : int(round(duration_s * rate))]
    if samples.shape[1] == 0:
        raise DecodeError(f"{path}: no audio after {start_s:.2f} s")
    if not np.isfinite(samples).all():
        raise DecodeError(f"{path}: audio holds NaN or infinite samples")
    return samples, int(rate)


def media_duration(path: str | Path) -> float | None:
    """Container duration in seconds, or None when the file does not state it."""
    container = _open(path)
    try:
        if container.duration:
            return container.duration / 1_000_000
        for stream in list(container.streams.video) + list(container.streams.audio):
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
        return None
    finally:
        container.close()


def decode_video_frame(path: str | Path, time_s: float):
    """The frame shown at `time_s` (the last one starting at or before it) as an RGB PIL image."""
    import av

    container = _open(path)
    try:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        if time_s > 0 and stream.time_base:
            container.seek(int(time_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        chosen = None
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else 0.0
            if chosen is not None and t > time_s + 1e-6:
                break
            chosen = frame
            if t > time_s + 1e-6:
                break  # first decodable frame already lies past the target (seek overshoot)
        if chosen is None:
            raise DecodeError(f"{path}: video stream decodes to no frames")
        return chosen.to_image().convert("RGB")
    except av.error.FFmpegError as exc:
        raise DecodeError(f"{path}: video decoding failed ({exc})") from exc
    finally:
        container.close()


def load_image(path: str | Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"{path}: cannot read image ({exc})") from exc
