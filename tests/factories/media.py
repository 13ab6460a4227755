"""Tiny media files for trainer tests: WAV (any rate/channels), PNG/JPG pictures, MP4 with an audio track."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def tone(seconds: float, rate: int, freq: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (0.5 + 0.5 * c / max(1, channels)) for c in range(channels)]).astype(np.float32)


def write_wav(path, seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, channels: int = 1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (tone(seconds, rate, freq, channels).T * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def write_picture(path, color=(200, 30, 30), size=(48, 40)) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    img.paste(tuple(255 - c for c in color), (0, 0, size[0] // 2, size[1] // 2))
    img.save(path)
    return path


def write_mp4(path, seconds: float = 1.0, fps: int = 8, size=(48, 32), audio: bool = True,
              rate: int = 22050, channels: int = 2, freq: float = 330.0) -> Path:
    """An MPEG-4 video whose frames change colour over time, with an AAC track (encoders built into FFmpeg)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=rate)
            astream.layout = "stereo" if channels == 2 else "mono"
        n = int(seconds * fps)
        for i in range(n):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[..., 0] = int(255 * i / max(1, n - 1))
            img[..., 1] = 80
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            samples = tone(seconds, rate, freq, channels)
            step = 1024
            for start in range(0, samples.shape[1], step):
                chunk = np.ascontiguousarray(samples[:, start : start + step])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=astream.layout.name)
                frame.sample_rate = rate
                frame.pts = start
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path
