"""Precision names and the torch dtypes they mean: one map for the trainer, generate, evaluate and benchmarks."""

from __future__ import annotations

import torch

# The one spelling every command line takes (--mixed-precision, --cache-dtype, --dtype).
PRECISIONS = ("fp32", "fp16", "bf16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Older spellings still read from saved settings files and scripts: accelerate's "no" and torch's own names.
_ALIASES = {"no": "fp32", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def respelled(name: str) -> str:
    """An older spelling in the one of PRECISIONS it means; any other name unchanged."""
    return _ALIASES.get(name, name)


def canonical(name: str) -> str:
    name = respelled(name)
    if name not in DTYPES:
        raise ValueError(f"unknown precision {name!r}: one of {', '.join(PRECISIONS)}")
    return name


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[canonical(name)]


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    """`auto` -> bf16 where the GPU has it, else fp16; fp32 on CPU. Returns one of PRECISIONS."""
    if requested != "auto":
        return canonical(requested)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"  # CPU autocast is slower than fp32 for these models


def accelerate_name(precision: str) -> str:
    """accelerate's `mixed_precision` value for one of PRECISIONS ("no" is its fp32)."""
    return "no" if canonical(precision) == "fp32" else canonical(precision)
