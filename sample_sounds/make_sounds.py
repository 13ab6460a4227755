"""Synthesise the sample sounds the example workflows load: `python sample_sounds/make_sounds.py`.

Nothing is recorded or downloaded: every sound is made here from numpy noise and oscillators with fixed seeds,
so running this again writes the same bytes. The files are 16 kHz mono (BEATs' own rate) in G.711 mu-law WAV,
one byte per sample: half the size of 16-bit PCM, still decoded by ComfyUI's Load Audio (PyAV) and played by
browsers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

RATE = 16_000
HERE = Path(__file__).resolve().parent


def resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole band-pass (a formant): y[n] = g x[n] + 2 r cos(w) y[n-1] - r^2 y[n-2]."""
    r = np.exp(-np.pi * bandwidth / RATE)
    a1, a2 = 2 * r * np.cos(2 * np.pi * freq / RATE), -r * r
    g = 1 - r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    for n, v in enumerate(x):
        y0 = g * v + a1 * y1 + a2 * y2
        y[n], y2, y1 = y0, y1, y0
    return y


def one_pole_lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    a = np.exp(-2 * np.pi * cutoff / RATE)
    y = np.zeros_like(x)
    acc = 0.0
    for n, v in enumerate(x):
        acc = (1 - a) * v + a * acc
        y[n] = acc
    return y


def bark(rng: np.random.Generator, seconds: float, f0: float) -> np.ndarray:
    """One 'woof': a buzzy glottal pulse train whose pitch jumps up and falls, through dog-like formants,
    with breath noise under the same fast-attack envelope."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pitch = f0 * (1 + 0.5 * np.exp(-t / 0.03)) * (1 - 0.35 * t / seconds)
    phase = np.cumsum(pitch) / RATE
    pulses = 2 * (phase % 1.0) - 1  # sawtooth: rich in harmonics
    pulses += 0.6 * rng.standard_normal(n) * (1 - t / seconds)  # roughness
    voiced = sum(resonator(pulses, f, bw) * gain for f, bw, gain in ((650, 180, 1.0), (1250, 250, 0.7),
                                                                     (2600, 400, 0.35)))
    envelope = (1 - np.exp(-t / 0.006)) * np.exp(-t / (seconds * 0.35))
    return voiced * envelope


def dog_barking(rng: np.random.Generator, seconds: float, starts: list[float]) -> np.ndarray:
    out = room_tone(rng, seconds, 0.004)
    for i, start in enumerate(starts):
        woof = bark(rng, 0.22 + 0.04 * (i % 2), 430 + 40 * ((i * 7) % 3))
        at = int(start * RATE)
        out[at:at + len(woof)] += woof[: len(out) - at]
        echo = 0.18 * woof  # a wall nearby
        at += int(0.045 * RATE)
        out[at:at + len(echo)] += echo[: len(out) - at]
    return out


def rain(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Steady hiss (noise with its lows taken out) plus thousands of drops: short decaying clicks at random
    times, pitches and loudness, and a few heavier plops."""
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    hiss = white - one_pole_lowpass(white, 900)
    hiss *= 0.05 * (1 + 0.25 * np.sin(2 * np.pi * 0.3 * np.arange(n) / RATE))  # gusts
    drops = np.zeros(n)
    for _ in range(int(seconds * 900)):
        at, freq = rng.integers(0, n - 400), rng.uniform(1800, 7000)
        length = rng.integers(60, 300)
        k = np.arange(length)
        drops[at:at + length] += (rng.uniform(0.01, 0.08) * np.sin(2 * np.pi * freq * k / RATE)
                                  * np.exp(-k / (length / 5)))
    for _ in range(int(seconds * 6)):
        at, length = rng.integers(0, n - 1600), 1600
        k = np.arange(length)
        freq = rng.uniform(500, 1100) * (1 + 0.5 * np.exp(-k / 300))  # a plop rises in pitch as it closes
        drops[at:at + length] += 0.15 * np.sin(2 * np.pi * np.cumsum(freq) / RATE) * np.exp(-k / 250)
    return hiss + drops


def birdsong(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Chirps: fast upward and downward whistles at 2.5-5.5 kHz in short phrases, over a quiet garden."""
    n = int(seconds * RATE)
    out = room_tone(rng, seconds, 0.006)
    at = int(0.2 * RATE)
    while at < n - RATE // 2:
        for _ in range(rng.integers(3, 7)):
            length = int(rng.uniform(0.04, 0.11) * RATE)
            k = np.arange(length) / length
            f_lo, f_hi = sorted(rng.uniform(2500, 5500, 2))
            sweep = f_lo + (f_hi - f_lo) * (k if rng.random() < 0.5 else 1 - k)
            sweep *= 1 + 0.03 * np.sin(2 * np.pi * 40 * k * length / RATE)  # warble
            chirp = 0.3 * np.sin(2 * np.pi * np.cumsum(sweep) / RATE) * np.sin(np.pi * k) ** 2
            out[at:at + length] += chirp[: n - at]
            at += length + int(rng.uniform(0.02, 0.06) * RATE)
        at += int(rng.uniform(0.4, 1.0) * RATE)
    return out


def room_tone(rng: np.random.Generator, seconds: float, level: float) -> np.ndarray:
    return level * one_pole_lowpass(rng.standard_normal(int(seconds * RATE)), 2000)


def crossfade(parts: list[np.ndarray], fade_s: float = 0.3) -> np.ndarray:
    fade = int(fade_s * RATE)
    ramp = np.linspace(0, 1, fade)
    out = parts[0].copy()
    for part in parts[1:]:
        part = part.copy()
        out[-fade:] = out[-fade:] * (1 - ramp) + part[:fade] * ramp
        out = np.concatenate([out, part[fade:]])
    return out


def normalise(x: np.ndarray, peak: float = 0.7) -> np.ndarray:
    return x * (peak / np.max(np.abs(x)))


def mu_law_bytes(x: np.ndarray) -> bytes:
    """G.711 mu-law (the table every codec uses): 14-bit magnitude, bias 0x84, segment and mantissa, inverted."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def write_mu_law_wav(path: Path, x: np.ndarray) -> None:
    data = mu_law_bytes(x)
    fmt = struct.pack("<HHIIHHH", 7, 1, RATE, RATE, 1, 8, 0)  # WAVE_FORMAT_MULAW, mono, 8 bits, no extra
    fact = struct.pack("<I", len(data))  # non-PCM WAV files carry their sample count
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", len(fact)) + fact
            + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def sounds() -> dict[str, np.ndarray]:
    return {
        # 3 s: four barks, the last two close together.
        "dog_bark.wav": dog_barking(np.random.default_rng(1), 3.0, [0.15, 0.9, 1.75, 2.15]),
        "rain.wav": rain(np.random.default_rng(2), 4.0),
        # 25 s in three scenes, so the 10 s windows of the long-recording workflow hear different things:
        # rain (0-10 s), a dog barking (10-20 s), birds (20-25 s).
        "long_recording.wav": crossfade([
            rain(np.random.default_rng(3), 10.15),
            dog_barking(np.random.default_rng(4), 10.3, [0.4, 1.3, 2.1, 2.5, 4.6, 5.4, 7.2, 7.6, 8.0, 9.4]),
            birdsong(np.random.default_rng(5), 5.15),
        ]),
    }


def main() -> None:
    for name, x in sounds().items():
        write_mu_law_wav(HERE / name, normalise(x))
        print(f"wrote {HERE / name} ({(HERE / name).stat().st_size / 1000:.0f} kB, {len(x) / RATE:.2f} s)")


if __name__ == "__main__":
    main()
