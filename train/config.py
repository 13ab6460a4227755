"""Every training setting in one dataclass, so scripts can call `train.loop.train(TrainConfig(...))`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    # inputs / outputs
    data: str = ""
    base_model: str = ""
    beats: str = ""
    output_dir: str = "runs/audiotoken"
    base_config: str | None = None
    split: str | None = "train"
    exclude: list[str] = field(default_factory=list)
    # None: on unless AUDIOTOKEN_OFFICIAL_FILTERS=0 (VGGSound's train split only)
    official_filters: bool | None = None
    # the recipe (defaults = the official code's)
    prompt: str = "a photo of <*>"
    layers: tuple[int, ...] = (4, 8, 12)
    n_tokens: int = 1
    embedder_hidden_dim: int | None = None
    init_embedder: str | None = None
    window_seconds: float = 5.0
    infer_window_seconds: float = 10.0
    frame_size: str = "512x320"
    resize: str = "squash"
    learning_rate: float = 1e-5
    scale_lr: bool = True
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = None
    batch_size: int = 4
    grad_accum: int = 4
    max_steps: int = 30000
    lambda_l1: float = 0.01
    lambda_l2: float = 0.0
    lambda_class: float = 0.01
    lambda_norm: float = 0.0
    class_loss: bool = False
    faithful_dropout: bool = False
    lora: bool = False
    lora_rank: int = 4
    seed: int = 0
    # speed
    cache: bool = True
    cache_dir: str | None = None
    cache_windows: int = 2
    cache_dtype: str = "fp16"
    precompute_batch: int = 8
    precompute_only: bool = False
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    compile: bool = False
    num_workers: int = 0
    # robustness / UX
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    resume: bool = False
    max_nonfinite_steps: int = 5
    log_every: int = 10
    tensorboard: bool = True
    validation_every: int = 0
    validation_audio: list[str] = field(default_factory=list)
    validation_count: int = 4
    validation_steps: int = 25
    validation_guidance: float = 7.5
    progress: bool = True

    def __post_init__(self):
        self.layers = tuple(int(x) for x in self.layers)
        self.exclude = list(self.exclude or [])
        self.validation_audio = list(self.validation_audio or [])

    def validate(self) -> None:
        problems = []
        for name in ("data", "base_model", "beats"):
            if not getattr(self, name):
                problems.append(f"--{name.replace('_', '-')} is required")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            problems.append("batch size, grad accumulation and max steps must be >= 1")
        if self.window_seconds <= 0:
            problems.append("--window-seconds must be positive")
        if self.resize not in ("squash", "center-crop", "pad"):
            problems.append(f"--resize must be squash, center-crop or pad (got {self.resize})")
        if self.mixed_precision not in ("auto", "no", "fp16", "bf16"):
            problems.append(f"--mixed-precision must be auto, no, fp16 or bf16 (got {self.mixed_precision})")
        if self.cache_dtype not in ("fp16", "bf16", "fp32"):
            problems.append(f"--cache-dtype must be fp16, bf16 or fp32 (got {self.cache_dtype})")
        if self.checkpoint_every < 1:
            problems.append("--checkpoint-every must be >= 1")
        if problems:
            raise ValueError("invalid training settings:\n  - " + "\n  - ".join(problems))

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.output_path / "cache"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)
