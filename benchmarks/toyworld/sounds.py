"""Synthetic sound classes at 16 kHz, or a user folder of real sounds, split into train and held-out clips.

Every synthetic clip draws its own pitch, phase, level, length and background noise, so a held-out clip is
never a copy of a training clip: the Embedder has to generalise within a class, not memorise waveforms.
The designs differ in where their energy sits on the mel axis or in how it moves in time, because that is
what survives a frozen encoder with random weights (its first layer is a linear map of mel patches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

RATE = 16_000
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".webm", ".mp4"}


@dataclass
class SoundSet:
    """Clips as `[T]` float tensors at 16 kHz, each with its class index."""

    names: list[str]
    train: list[tuple[torch.Tensor, int]]
    held_out: list[tuple[torch.Tensor, int]]


def _tone(t, freq, phase, harmonics=(1.0,)):
    return sum(a * torch.sin(2 * math.pi * freq * (k + 1) * t + phase * (k + 1)) for k, a in enumerate(harmonics))


def _noise(n, gen):
    return torch.randn(n, generator=gen)


def _lowpass(x, cutoff_hz):
    # a zero-phase filter with a 4th-power roll-off, applied in the frequency domain: enough to colour noise
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / RATE)
    return torch.fft.irfft(spec / (1 + (f / cutoff_hz) ** 4), n=x.shape[-1])


def _highpass(x, cutoff_hz):
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / RATE)
    return torch.fft.irfft(spec / (1 + (cutoff_hz / f.clamp(min=1.0)) ** 4), n=x.shape[-1])


def _u(gen, lo, hi):
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def low_hum(t, gen):
    """Harmonic-rich hum, 90–140 Hz: energy in the lowest mel bands."""
    return _tone(t, _u(gen, 90, 140), _u(gen, 0, 6.3), (1.0, 0.6, 0.4, 0.25))


def whistle(t, gen):
    """High whistle, 2.8–3.4 kHz, with a fast vibrato so it spans several mel bins."""
    freq = _u(gen, 2800, 3400) + 150 * torch.sin(2 * math.pi * _u(gen, 5, 8) * t + _u(gen, 0, 6.3))
    return torch.sin(2 * math.pi * torch.cumsum(freq, 0) / RATE)


def siren(t, gen):
    """Tone whose pitch wobbles 600–1400 Hz a few times a second."""
    rate, centre, depth = _u(gen, 2.0, 4.0), _u(gen, 850, 1100), _u(gen, 250, 350)
    freq = centre + depth * torch.sin(2 * math.pi * rate * t + _u(gen, 0, 6.3))
    return torch.sin(2 * math.pi * torch.cumsum(freq, 0) / RATE)


def clicks(t, gen):
    """Clock ticks: 6–9 a second, each a 2.2–2.8 kHz burst that dies within ~50 ms.

    Pulsed in time and alone in its band; plain broadband clicks look too much like hiss to a random encoder.
    """
    every, freq = 1 / _u(gen, 6, 9), _u(gen, 2200, 2800)
    since = (t + _u(gen, 0, every)) % every
    return torch.exp(-since * 60) * torch.sin(2 * math.pi * freq * t + _u(gen, 0, 6.3))


def hiss(t, gen):
    """High-passed steady noise above ~4 kHz."""
    return _highpass(_noise(t.shape[0], gen), _u(gen, 4000, 5500)) * 1.5


def rumble(t, gen):
    """Low-passed noise below ~300 Hz, slowly swelling."""
    x = _lowpass(_noise(t.shape[0], gen), _u(gen, 200, 350)) * 4
    return x * (0.6 + 0.4 * torch.sin(2 * math.pi * _u(gen, 0.5, 1.5) * t))


def chime(t, gen):
    """Bell strikes, 3–4 a second, at 1.3–1.7 kHz with inharmonic partials that decay fast."""
    freq, every = _u(gen, 1300, 1700), _u(gen, 0.25, 0.33)
    env = torch.exp(-(t % every) * 10)
    phase = _u(gen, 0, 6.3)
    partials = sum(a * torch.sin(2 * math.pi * freq * r * t + phase) for r, a in ((1.0, 1.0), (2.76, 0.6), (5.4, 0.4)))
    return env * partials


def buzz(t, gen):
    """Square-ish buzz at 400–550 Hz, amplitude-modulated at 20–30 Hz."""
    base = torch.sign(torch.sin(2 * math.pi * _u(gen, 400, 550) * t + _u(gen, 0, 6.3))) * 0.5
    return base * (0.5 + 0.5 * torch.sin(2 * math.pi * _u(gen, 20, 30) * t))


# Ordered so that the first K are the most separable for any K; whistle and chime come last because a
# random-weight encoder confuses them most (pure high tones whose exact pitch decides the mel bin).
DESIGNS = [low_hum, siren, hiss, rumble, buzz, clicks, whistle, chime]
WORDS = ["engine", "siren", "rain", "thunder", "bee", "clock", "bird", "bell"]


def synth_clip(kind: int, gen: torch.Generator, min_s: float = 1.0, max_s: float = 3.0) -> torch.Tensor:
    n = int(_u(gen, min_s, max_s) * RATE)
    t = torch.arange(n) / RATE
    x = DESIGNS[kind](t, gen)
    x = x / x.abs().max().clamp(min=1e-6) * _u(gen, 0.3, 0.9)
    # background noise a listener would still hear through, different in every clip
    x = x + _noise(n, gen) * _u(gen, 0.005, 0.03)
    return x.clamp(-1, 1).float()


def synth_sounds(names: list[str], n_train: int, n_held: int, seed: int) -> SoundSet:
    if len(names) > len(DESIGNS):
        raise ValueError(f"only {len(DESIGNS)} synthetic sound designs exist; asked for {len(names)} classes")
    gen = torch.Generator().manual_seed(seed * 7919 + 11)
    train = [(synth_clip(k, gen), k) for k in range(len(names)) for _ in range(n_train)]
    held = [(synth_clip(k, gen), k) for k in range(len(names)) for _ in range(n_held)]
    return SoundSet(list(names), train, held)


def load_sound_folder(root: str | Path, held_fraction: float, seed: int) -> SoundSet:
    """`root/<class word>/<files>`: a seeded shuffle per class, the last `held_fraction` of files held out."""
    from audiotoken_core.audio import prepare_audio
    from train.data.decode import decode_audio

    root = Path(root)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"{root}: need at least two class folders (one per class word), found {len(classes)}")
    names, train, held = [], [], []
    gen = torch.Generator().manual_seed(seed)
    for k, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if len(files) < 2:
            raise ValueError(f"{folder}: need at least two audio files (one to train on, one to hold out)")
        order = torch.randperm(len(files), generator=gen).tolist()
        n_held = min(len(files) - 1, max(1, round(len(files) * held_fraction)))
        for i, idx in enumerate(order):
            wave, sr = decode_audio(files[idx])
            clip = prepare_audio(wave, sr)[0]
            (held if i >= len(files) - n_held else train).append((clip, k))
        names.append(_class_word(folder.name))
    return SoundSet(names, train, held)


def _class_word(name: str) -> str:
    word = name.strip().lower().replace(" ", "_")
    if not word:
        raise ValueError(f"class folder name {name!r} gives an empty class word")
    return word
