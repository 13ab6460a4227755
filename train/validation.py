"""Validation images during training: a few fixed sounds drawn every `validation_every` steps into one grid."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import TrainConfig
from .run_state import Run


def validation_sounds(config: TrainConfig, dataset) -> list[tuple[str, torch.Tensor, int]]:
    from .data.decode import decode_audio

    sounds = []
    if config.validation_audio:
        for path in config.validation_audio:
            samples, rate = decode_audio(path)
            sounds.append((Path(path).stem, torch.from_numpy(samples), rate))
        return sounds
    for clip in dataset.clips:
        if len(sounds) >= config.validation_count:
            break
        try:
            wave, rate = clip.load_audio()
        except ValueError:
            continue
        sounds.append((clip.id, wave, rate))
    return sounds


def save_grid(rows: list[list], path: Path) -> "object":
    from PIL import Image

    from audiotoken_core.safeload import atomic_write

    cols = max(len(r) for r in rows)
    w, h = rows[0][0].size
    grid = Image.new("RGB", (cols * w, len(rows) * h))
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid.paste(img, (j * w, i * h))
    atomic_write(path, grid.save, suffix=".tmp.png")  # PIL picks the format from the name
    return grid


def validate(run: Run, sounds, step: int, writer) -> None:
    from .data.frames import parse_size
    from .generate import AudioImageGenerator

    config, base, embedder, beats, device = run.config, run.base, run.embedder, run.beats, run.device
    was_training = embedder.training
    embedder.eval()
    try:
        beats.to(device)
        if base.vae.device != device:
            base.vae.to(device)
        gen = AudioImageGenerator(base, embedder, beats, device=device, dtype=run.weight_dtype)
        width, height = parse_size(config.validation_size) if config.validation_size else (None, None)
        rows = []
        for _, wave, rate in sounds:
            rows.extend(gen.images_for_audio(wave, rate, prompt=config.prompt, seeds=[config.seed],
                                             steps=config.validation_steps, guidance=config.validation_guidance,
                                             height=height, width=width))
        grid = save_grid([[img for row in rows for img in row]], run.out / "validation" / f"step-{step:08d}.png")
        if writer is not None:
            import numpy as np

            writer.add_image("validation", np.asarray(grid), step, dataformats="HWC")
    finally:
        if config.cache:
            beats.to("cpu")
            base.vae.to("cpu")
        embedder.train(was_training)

