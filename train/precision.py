"""Precision names and the torch dtypes they mean: one map for the trainer, generate, evaluate and benchmarks."""

from __future__ import annotations

import torch

# accelerate's mixed-precision names ("no" is fp32), the short names of --cache-dtype / --dtype, and torch's own
DTYPES: dict[str, torch.dtype] = {
    "no": torch.float32, "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def torch_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}: one of {', '.join(DTYPES)}") from None


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    """`auto` -> bf16 where the GPU has it, else fp16; fp32 ("no") on CPU. Other names pass through."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"  # CPU autocast is slower than fp32 for these models
