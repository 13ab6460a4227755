"""Everything one evaluation run is told: data, models, generation settings, what to compute, output.

The generator's files, precision and sampling settings are `train.generate`'s own (`train.generate_config`):
one field and one default each for both commands."""

from __future__ import annotations

from dataclasses import dataclass

from ..generate_config import GENERATION, GeneratorFiles, Sampling
from ..options import option
from . import generation as gen
from . import heard
from . import model_files as files
from .scoring import METRICS

ALL_ROWS = (*gen.ROWS_GENERATED, "ground_truth")
# The BEATs-label rows are opt-in: they need the AudioSet head and cost two more generations per clip.
DEFAULT_ROWS = ("audio", "text", "null", "ground_truth")
_DATA, _SCORERS = "data", "scoring models (local files only)"
_COMPUTE, _OUTPUT = "what to compute", "statistics and output"


@dataclass
class EvalConfig(Sampling, GeneratorFiles):
    data: str = option(help="dataset folder or file (any layout the trainer reads)", group=_DATA)
    out: str = option(help="output folder (images, feature cache, reports)", group=_DATA)
    split: str | None = option("test", "split to score ('all' for every clip)", group=_DATA)
    limit: int | None = option(None, "score a seeded random subset of this many clips", group=_DATA)
    clip_b32: str | None = option(None, f"transformers folder of {files.CLIP_B32_SOURCE} (AIS)", group=_SCORERS)
    clip_l14: str | None = option(None, f"transformers folder of {files.CLIP_L14_SOURCE} (IIS, AIC)",
                                  group=_SCORERS)
    wav2clip: str | None = option(None, "Wav2CLIP.pt checkpoint (AIS)", group=_SCORERS)
    inception: str | None = option(None, f"{files.FID_WEIGHTS_NAME} (FID)", group=_SCORERS)
    n_images: int = option(1, "images per clip (seeds seed..seed+n-1)", group=GENERATION)
    seed: int = option(0, "first seed", group=GENERATION)
    null_token: str = option("zero", "the null-token row's token", group=GENERATION, choices=("zero", "random"))
    label_k: int = option(heard.DEFAULT_K, "labels rows: at most this many BEATs AudioSet labels per prompt, best "
                          "first", group=GENERATION)
    label_threshold: float = option(
        heard.DEFAULT_THRESHOLD, "labels rows: leave out labels scoring below this probability (a clip where none "
        "reaches it gets its best label)", group=GENERATION)
    gen_batch: int = option(4, "clips per generator call", group=GENERATION)
    rows: tuple[str, ...] = option(
        DEFAULT_ROWS, f"comma list of {', '.join(ALL_ROWS)} (the labels rows need a fine-tuned BEATs, which holds "
        "the AudioSet head)", group=_COMPUTE)
    metrics: tuple[str, ...] = option(METRICS, f"comma list of {', '.join(METRICS)}", group=_COMPUTE)
    aic_template: str = option("a photo of {label}", "class prompt for zero-shot AIC", group=_COMPUTE)
    labels_file: str | None = option(
        None, "all class names, one per line (default: the labels of the scored clips)", group=_COMPUTE)
    wav2clip_rate: int = option(
        16_000, "audio rate fed to Wav2CLIP (16000 as it was trained; SonicDiffusion used 44100)", group=_COMPUTE)
    bootstrap: int = option(1000, "bootstrap resamples for AIS/IIS/AIC", group=_OUTPUT)
    fid_bootstrap: int = option(100, "bootstrap resamples for FID", group=_OUTPUT)
    confidence: float = option(0.95, "confidence level of the intervals", group=_OUTPUT)
    grid_clips: int = option(8, "clips shown in grid.png (0: none)", group=_OUTPUT)
    cache_dir: str | None = option(None, "feature cache (default OUT/feature_cache); share it across runs",
                                   group=_OUTPUT)
    clip_batch: int = option(64, "images per CLIP batch", group=_OUTPUT)
    inception_batch: int = option(50, "images per Inception batch", group=_OUTPUT)
    audio_batch: int = option(16, "clips per Wav2CLIP batch", group=_OUTPUT)
    overwrite: bool = option(False, "regenerate rows made with other settings", group=_OUTPUT)
    cpu: bool = option(False, "run on CPU even if a GPU is present", group=_OUTPUT)
    progress: bool = option(True, "show progress bars", group=_OUTPUT)

    def __post_init__(self):
        super().__post_init__()
        if self.split in ("all", ""):
            self.split = None
        self.rows, self.metrics = tuple(self.rows), tuple(self.metrics)

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
