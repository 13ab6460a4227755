"""Every training setting in one dataclass, so scripts can call `train.loop.train(TrainConfig(...))`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from audiotoken_core import precision, sources
from audiotoken_core.audio import WINDOW_SECONDS

from .families.flow import WEIGHTING_SCHEMES
from .options import flag, option

_IO = "inputs and outputs"
_RECIPE = "the recipe (defaults: the official code's)"
_SPEED = "speed"
_RUN = "checkpoints, logs and validation"
RESIZE_MODES = ("squash", "center-crop", "pad")


@dataclass
class TrainConfig:
    data: str = option(
        "", "training data: VGGSound folder (vggsound.csv), sound+picture folder, video folder or manifest.jsonl",
        group=_IO)
    base_model: str = option(
        "", "diffusers folder (SD1.x, SD2.x, SDXL, Flux.1, SD3.5, Qwen-Image, Z-Image: the family is read from its "
        "model_index.json) or single-file checkpoint (SD1.x, SD2.x, SDXL)", group=_IO)
    beats: str = option(
        "", f"BEATs checkpoint (.pt or .safetensors), e.g. {sources.official('audio_encoder').name}",
        group=_IO)
    output_dir: str = option("runs/audiotoken", "run folder: checkpoints, cache, logs, final weights", group=_IO)
    base_config: str | None = option(None, "diffusers config folder for a single-file --base-model", group=_IO)
    split: str | None = option(
        "train", "split to use where the data names splits (VGGSound: train/test); 'all' for every row",
        group=_IO)
    exclude: list[str] = option(
        help="files of ids to leave out (one per line, .json list or .csv first column)",
        group=_IO, factory=list)
    # None: on unless AUDIOTOKEN_OFFICIAL_FILTERS=0 (VGGSound's train split only)
    official_filters: bool | None = option(
        None, "VGGSound train split: leave out the clips the official code leaves out (its unmatched and "
        "low-quality lists); unset: on unless AUDIOTOKEN_OFFICIAL_FILTERS=0", group=_IO)
    prompt: str = option("a photo of <*>", "training prompt; <*> (or <audio>) marks the audio token", group=_RECIPE)
    layers: tuple[int, ...] = option((4, 8, 12), "1-based BEATs layers concatenated as Embedder input", group=_RECIPE)
    n_tokens: int = option(1, "audio tokens per placeholder, for every head", group=_RECIPE)
    head_tokens: list[str] = option(
        help="tokens per placeholder for some heads, as HEAD=COUNT (e.g. t5xxl=4 for Flux.1's T5 with one CLIP-L "
        "token); the other heads take --n-tokens", group=_RECIPE, factory=list)
    embedder_hidden_dim: int | None = option(
        None, "MLP hidden width (default: input width, as the original)",
        group=_RECIPE)
    init_embedder: str | None = option(
        None, "start from these Embedder weights (ours or the official .bin)",
        group=_RECIPE)
    window_seconds: float = option(5.0, "training audio window (original: 5)", group=_RECIPE)
    infer_window_seconds: float = option(
        WINDOW_SECONDS, "window recorded in the weights for inference (original: 10)",
        group=_RECIPE)
    frame_size: str = option("512x320", "training frame size WxH (original: 512x320)", group=_RECIPE)
    resize: str = option("squash", "how frames meet --frame-size (squash: the original)", group=_RECIPE,
                         choices=RESIZE_MODES)
    learning_rate: float = option(1e-5, "base learning rate", group=_RECIPE)
    scale_lr: bool = option(
        True, "multiply the lr by batch x grad-accum x processes (original default: on)",
        group=_RECIPE)
    lr_scheduler: str = option(
        "constant", "diffusers scheduler name: constant, constant_with_warmup, cosine, linear, ...",
        group=_RECIPE)
    lr_warmup_steps: int = option(0, "warmup steps", group=_RECIPE)
    adam_beta1: float = option(0.9, "AdamW beta1", group=_RECIPE)
    adam_beta2: float = option(0.999, "AdamW beta2", group=_RECIPE)
    adam_weight_decay: float = option(1e-2, "AdamW weight decay", group=_RECIPE)
    adam_epsilon: float = option(1e-8, "AdamW epsilon", group=_RECIPE)
    max_grad_norm: float | None = option(
        None, "clip gradients to this norm (off by default, as the original)",
        group=_RECIPE)
    batch_size: int = option(4, "clips per process per micro-batch", group=_RECIPE)
    grad_accum: int = option(4, "micro-batches per optimizer step", group=_RECIPE)
    max_steps: int = option(30000, "optimizer steps", group=_RECIPE)
    lambda_l1: float = option(0.01, "weight of mean |token|", group=_RECIPE)
    lambda_l2: float = option(0.0, "weight of mean squared token norm", group=_RECIPE)
    lambda_class: float = option(0.01, "weight of the class loss", group=_RECIPE)
    lambda_norm: float = option(
        0.0, "weight of (|token| / mean word-embedding norm - 1)^2: keeps the token at a word's scale",
        group=_RECIPE)
    class_loss: bool = option(
        False, "add (1 - cos(token, label word embedding))^2 where clips have labels",
        group=_RECIPE)
    faithful_dropout: bool = option(
        False, "validation images with the official always-on unary dropout (training always applies it)",
        group=_RECIPE)
    weighting_scheme: str | None = option(
        None, "flow families: timestep sampling / loss weighting (default: the family's, as diffusers' training "
        "examples: logit_normal for SD3.5, none (uniform) for Flux.1, Qwen-Image, Z-Image)", group=_RECIPE,
        choices=WEIGHTING_SCHEMES)
    logit_mean: float = option(0.0, "flow families: mean of the logit-normal timestep density", group=_RECIPE)
    logit_std: float = option(1.0, "flow families: std of the logit-normal timestep density", group=_RECIPE)
    mode_scale: float = option(1.29, "flow families: scale of the 'mode' timestep density", group=_RECIPE)
    train_guidance: float = option(
        3.5, "Flux.1 dev: the guidance its guidance embedding gets during training (diffusers' example: 3.5)",
        group=_RECIPE)
    lora: bool = option(False, "also train a LoRA on the UNet attention layers (UNet families)", group=_RECIPE)
    lora_rank: int = option(4, "LoRA rank (original: 4)", group=_RECIPE)
    seed: int = option(0, "seed for data order, windows, noise and timesteps", group=_RECIPE)
    cache: bool = option(
        True, "precompute BEATs features and VAE latents once (off: the original per-step recipe)",
        group=_SPEED)
    cache_dir: str | None = option(None, "cache folder (default: <output-dir>/cache)", group=_SPEED)
    cache_windows: int = option(2, "random windows (and frames) cached per clip", group=_SPEED)
    cache_dtype: str = option("fp16", "feature storage type", group=_SPEED, choices=precision.NAMES)
    precompute_batch: int = option(8, "windows per BEATs/VAE batch in the precompute pass", group=_SPEED)
    precompute_only: bool = option(False, "build the cache and stop", group=_SPEED)
    mixed_precision: str = option("auto", f"precision of the steps; {precision.RULE}", group=_SPEED,
                                  choices=precision.CHOICES)
    gradient_checkpointing: bool = option(False, "trade compute for memory in UNet and text encoder", group=_SPEED)
    compile: bool = option(False, "torch.compile the UNet", group=_SPEED)
    num_workers: int = option(0, "DataLoader worker processes", group=_SPEED)
    checkpoint_every: int = option(1000, "save a resumable checkpoint every N steps", group=_RUN)
    keep_checkpoints: int = option(3, "checkpoints kept on disk", group=_RUN)
    resume: bool = option(False, "continue from the latest checkpoint in <output-dir>/checkpoints", group=_RUN)
    max_nonfinite_steps: int = option(5, "stop after this many consecutive NaN/Inf steps", group=_RUN)
    log_every: int = option(10, "log averaged losses every N steps", group=_RUN)
    tensorboard: bool = option(True, "write TensorBoard scalars (if tensorboard is installed)", group=_RUN)
    validation_every: int = option(0, "make validation images every N steps (0: never)", group=_RUN)
    validation_audio: list[str] = option(
        help="fixed sounds for validation images (default: the first clips)",
        group=_RUN, factory=list)
    validation_count: int = option(
        4, "validation sounds taken from the data when --validation-audio is not given",
        group=_RUN)
    validation_steps: int = option(25, "sampling steps for validation images", group=_RUN)
    validation_guidance: float = option(7.5, "guidance scale for validation images", group=_RUN)
    validation_size: str | None = option(
        None, "validation image size WxH (default: the base model's own, e.g. 512 for SD1.5, 1024 for Flux.1)",
        group=_RUN)
    progress: bool = option(True, "show tqdm progress bars", group=_RUN)

    def __post_init__(self):
        if self.split in ("all", ""):
            self.split = None
        self.mixed_precision = precision.respelled(self.mixed_precision)
        self.cache_dtype = precision.respelled(self.cache_dtype)
        self.layers = tuple(int(x) for x in self.layers)
        self.exclude = list(self.exclude or [])
        self.validation_audio = list(self.validation_audio or [])
        self.head_tokens = list(self.head_tokens or [])

    def validate(self) -> None:
        problems = []
        for name in ("data", "base_model", "beats"):
            if not getattr(self, name):
                problems.append(f"{flag(name)} is required")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            problems.append("batch size, grad accumulation and max steps must be >= 1")
        if self.window_seconds <= 0:
            problems.append("--window-seconds must be positive")
        for f in dataclasses.fields(self):
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices and value is not None and value not in choices:
                problems.append(f"{flag(f.name)} must be one of {', '.join(choices)} (got {value})")
        if self.checkpoint_every < 1:
            problems.append("--checkpoint-every must be >= 1")
        for item in self.head_tokens:
            head, _, count = item.partition("=")
            if not head or not count.isdigit() or int(count) < 1:
                problems.append(f"--head-tokens takes HEAD=COUNT with a count >= 1, got {item!r}")
        for name in ("frame_size", "validation_size"):
            if getattr(self, name):
                from .data.frames import parse_size

                try:
                    parse_size(getattr(self, name))
                except ValueError as exc:
                    problems.append(f"{flag(name)}: {exc}")
        if problems:
            raise ValueError("invalid training settings:\n  - " + "\n  - ".join(problems))

    def tokens_per_head(self, heads) -> dict[str, int]:
        """`{head: tokens per placeholder}` for a base model's heads: --n-tokens, then --head-tokens."""
        counts = {h: int(self.n_tokens) for h in heads}
        for item in self.head_tokens:
            head, _, count = item.partition("=")
            if head not in counts:
                raise ValueError(f"--head-tokens names head {head!r}; this base model's heads are {list(counts)}")
            counts[head] = int(count)
        return counts

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
