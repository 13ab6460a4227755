"""What every phase of a training run shares (train/loop.py builds it; validation and the step loop read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiotoken_core.precision import torch_dtype

from .config import TrainConfig


@dataclass
class Run:
    """What every phase of a run shares: settings, the process's place in it, data and models."""

    config: TrainConfig
    accelerator: object
    mixed: str  # one of audiotoken_core.precision.NAMES
    dataset: object  # train.data.ClipDataset
    base: object  # a family of train/families (train.models.load_base_model)
    beats: torch.nn.Module
    embedder: torch.nn.Module
    tokenizer: object  # AudioTokenizer(beats, embedder)
    lora_params: list = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def weight_dtype(self) -> torch.dtype:
        return torch_dtype(self.mixed)

    @property
    def out(self) -> Path:
        return self.config.output_path
