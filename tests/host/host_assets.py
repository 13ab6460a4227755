"""Files the host tests need, generated at test time: tiny models in the official layouts and audio."""

from __future__ import annotations

import math
import shutil
import struct
import wave
from pathlib import Path

import torch

# The example workflows name the real files; the tiny stand-ins take the same names so they run unchanged.
CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"
BEATS = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
EMBEDDER = "embedder_learned_embeds.bin"
NARROW_BEATS = "beats_narrow_32.pt"          # 3 x 32 = 96 features: does not fit EMBEDDER (3 x 64)
SD2_EMBEDDER = "embedder_sd2_h.safetensors"  # an `h` (1024) head only: does not fit an SD1.5 CLIP
# audiotoken_flux_token.json's embedder, one the user trains: clip_l (1 vector) and t5xxl (4 vectors) heads
FLUX_EMBEDDER = "audiotoken_flux_embedder.safetensors"
FLUX_HEADS = {"l": 768, "t5xxl": 4096}
FLUX_TOKENS = {"l": 1, "t5xxl": 4}
BEATS_DIM = 64

AUDIO_FILES = {
    # name: (seconds, sample rate, channels, base frequency)
    "dog_bark.wav": (3.0, 22050, 2, 440.0),
    "rain.wav": (4.0, 48000, 1, 97.0),
    "long_recording.wav": (25.0, 16000, 1, 220.0),
}
LONG_RECORDING_WINDOWS = 3  # 25 s in 10 s windows: two full ones and a 5 s remainder


def write_wav(path: Path, seconds: float, rate: int, channels: int, freq: float) -> Path:
    """16-bit PCM: a chirp with a little noise, different per channel."""
    n = int(seconds * rate)
    g = torch.Generator().manual_seed(int(freq))
    t = torch.arange(n) / rate
    chans = [0.4 * torch.sin(2 * math.pi * (freq * (c + 1)) * t * (1 + 0.1 * t)) + 0.05 * torch.randn(n, generator=g)
             for c in range(channels)]
    pcm = (torch.stack(chans, 1).clamp(-1, 1) * 32767).round().to(torch.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{pcm.numel()}h", *pcm.flatten().tolist()))
    return path


def write_flux_embedder(path: Path) -> Path:
    """The tiny stand-in for the Flux embedder a user trains (the Flux template names it)."""
    from factories.embedder import write_tiny_embedder

    return write_tiny_embedder(path, in_dim=3 * BEATS_DIM, widths=FLUX_HEADS, n_tokens=FLUX_TOKENS, seed=2)


def build_assets(root: Path) -> dict[str, Path]:
    """models/{checkpoints,audio_encoders,audiotoken} and audio/ under `root`."""
    from testkit.beats import write_tiny_official_beats
    from testkit.comfy import write_tiny_sd15_checkpoint
    from factories.embedder import write_tiny_embedder, write_tiny_official_embedder

    dirs = {name: root / name for name in ("checkpoints", "audio_encoders", "audiotoken", "loras", "audio")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        write_tiny_sd15_checkpoint(dirs["checkpoints"] / CHECKPOINT)
        write_tiny_official_beats(dirs["audio_encoders"] / BEATS, layers=12, dim=BEATS_DIM, heads=4)
        write_tiny_official_beats(dirs["audio_encoders"] / NARROW_BEATS, layers=12, dim=32, heads=4, seed=1)
        write_tiny_official_embedder(dirs["audiotoken"] / EMBEDDER, in_dim=3 * BEATS_DIM, out_dim=768)
        write_tiny_embedder(dirs["audiotoken"] / SD2_EMBEDDER, in_dim=3 * BEATS_DIM, widths={"h": 1024})
        write_flux_embedder(dirs["audiotoken"] / FLUX_EMBEDDER)
    # The official LoRA itself (3.3 MB, committed): the LoRA example workflow loads it by its real name.
    from factories.official import LORA

    shutil.copy(LORA, dirs["loras"] / LORA.name)
    # Not a model: must stay out of the loader's list once our extensions are merged with the yaml's entry.
    (dirs["audiotoken"] / "notes.txt").write_text("not a model\n")
    for name, spec in AUDIO_FILES.items():
        write_wav(dirs["audio"] / name, *spec)
    return dirs
