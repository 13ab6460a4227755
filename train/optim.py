"""The optimiser and lr recipe, once: the trainer and the toy-world benchmark both build theirs here.

The original code's recipe: AdamW over the trainable parameters, the base lr multiplied by the samples
per optimiser step (`--scale-lr`), and a diffusers lr schedule over `max_steps`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .config import TrainConfig


@dataclass
class Optimization:
    optimizer: torch.optim.Optimizer
    lr_scheduler: object  # torch LambdaLR from diffusers' get_scheduler
    lr: float  # the effective (scaled) peak lr
    params: list[torch.nn.Parameter]  # every trainable parameter, for clipping and zero backward passes


def effective_lr(config: TrainConfig, world: int = 1) -> float:
    """Base lr x batch x grad-accum x processes when `scale_lr` (the original's default), else the base lr."""
    if not config.scale_lr:
        return config.learning_rate
    return config.learning_rate * config.batch_size * config.grad_accum * world


def build_optimization(config: TrainConfig, groups: Iterable[Iterable[torch.nn.Parameter]],
                       world: int = 1) -> Optimization:
    """AdamW with one parameter group per entry of `groups` (empty groups are left out) and its schedule."""
    from diffusers.optimization import get_scheduler

    lr = effective_lr(config, world)
    param_groups = [{"params": ps} for ps in (list(g) for g in groups) if ps]
    optimizer = torch.optim.AdamW(param_groups, lr=lr, betas=(config.adam_beta1, config.adam_beta2),
                                  weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    lr_scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps,
                                 num_training_steps=config.max_steps)
    return Optimization(optimizer, lr_scheduler, lr, [p for g in param_groups for p in g["params"]])
