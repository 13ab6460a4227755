"""Everything one evaluation run is told: data, models, generation settings, what to compute, output."""

from __future__ import annotations

from dataclasses import dataclass

from . import generation as gen
from . import heard
from .scoring import METRICS

ALL_ROWS = (*gen.ROWS_GENERATED, "ground_truth")
# The BEATs-label rows are opt-in: they need the AudioSet head and cost two more generations per clip.
DEFAULT_ROWS = ("audio", "text", "null", "ground_truth")


@dataclass
class EvalConfig:
    data: str
    out: str
    split: str | None = "test"
    limit: int | None = None
    # generator (the trainer's AudioImageGenerator)
    base_model: str | None = None
    embedder: str | None = None
    beats: str | None = None
    base_config: str | None = None
    lora: str | None = None
    dtype: str = "float16"
    # scorers
    clip_b32: str | None = None
    clip_l14: str | None = None
    wav2clip: str | None = None
    inception: str | None = None
    # generation
    prompt: str = "a photo of <audio>"
    n_images: int = 1
    seed: int = 0
    steps: int = 50
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None
    null_token: str = "zero"
    label_k: int = heard.DEFAULT_K
    label_threshold: float = heard.DEFAULT_THRESHOLD
    gen_batch: int = 4
    # what to compute
    rows: tuple[str, ...] = DEFAULT_ROWS
    metrics: tuple[str, ...] = METRICS
    aic_template: str = "a photo of {label}"
    labels_file: str | None = None
    wav2clip_rate: int = 16_000
    # statistics and output
    bootstrap: int = 1000
    fid_bootstrap: int = 100
    confidence: float = 0.95
    grid_clips: int = 8
    cache_dir: str | None = None
    clip_batch: int = 64
    inception_batch: int = 50
    audio_batch: int = 16
    overwrite: bool = False
    cpu: bool = False
    progress: bool = True

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + i for i in range(self.n_images))

    def settings(self) -> gen.GenerationSettings:
        return gen.GenerationSettings(
            prompt=self.prompt,
            seeds=self.seeds,
            steps=self.steps,
            guidance=self.guidance,
            height=self.height,
            width=self.width,
            null_token=self.null_token,
            label_k=self.label_k,
            label_threshold=self.label_threshold,
        )
