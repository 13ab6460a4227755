"""Precision: the names every command line and node takes, the dtypes they mean, and the one rule for "auto".

The rule, for the nodes, the trainer, `train.generate` and `train.evaluate` alike:

- `auto` is fp32 on the CPU; on an accelerator it is bf16 where the device supports it, else fp16, else fp32.
  bf16 first: the transformer families publish bf16 weights and training wants its range. BEATs' tokens lose
  a little more mantissa in bf16 than in fp16 (the GPU suite's goals against fp32: bf16 5e-2, fp16 2e-2,
  docs/benchmarks.md); `fp16` asks for it.
- A name is that precision, except fp16 on the CPU, which is fp32 (half-precision convolutions there are
  unsupported or very slow).

What the device supports is torch's answer unless the caller knows better: ComfyUI's nodes pass the host's own
answers (its --force-fp32 / --force-fp16 flags and device checks) as `bf16_ok` / `fp16_ok`.

torch is imported only when a dtype is asked for, so command lines can list these names in `--help` without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

AUTO = "auto"
# The one spelling every command line and node takes (--mixed-precision, --cache-dtype, --dtype, `precision`).
NAMES = ("fp32", "fp16", "bf16")
CHOICES = (AUTO, *NAMES)
# Older spellings still read from saved settings files and scripts: accelerate's "no" and torch's own names.
_ALIASES = {"no": "fp32", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# The rule in one line, for help texts and tooltips.
RULE = "auto: fp32 on the CPU; on a GPU bf16 where it is supported, else fp16, else fp32 (fp16 on the CPU runs as fp32)"
_TORCH_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def respelled(name: str) -> str:
    """An older spelling in the one of NAMES it means; any other name unchanged."""
    return _ALIASES.get(name, name)


def canonical(name: str) -> str:
    """One of NAMES, from it or an older spelling; anything else is refused (`auto` too: `resolve` it first)."""
    name = respelled(name)
    if name not in NAMES:
        raise ValueError(f"unknown precision {name!r}: one of {', '.join(NAMES)}")
    return name


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return getattr(torch, _TORCH_NAMES[canonical(name)])


def name_of(dtype: torch.dtype) -> str:
    """The one of NAMES for a torch dtype."""
    for name, attr in _TORCH_NAMES.items():
        if str(dtype) == f"torch.{attr}":
            return name
    raise ValueError(f"no precision name for {dtype}")


def resolve(requested: str, device: Any, *, bf16_ok: bool | None = None, fp16_ok: bool | None = None) -> str:
    """The one of NAMES that `requested` (one of CHOICES, or an older spelling) means on `device`.

    `bf16_ok` / `fp16_ok`: whether the device runs that precision well; None asks torch (`supports`)."""
    device = _device(device)
    if requested != AUTO:
        name = canonical(requested)
        return "fp32" if name == "fp16" and device.type == "cpu" else name
    if device.type == "cpu":
        return "fp32"  # half precision is slower there, and less accurate
    if bf16_ok if bf16_ok is not None else supports(device, "bf16"):
        return "bf16"
    if fp16_ok if fp16_ok is not None else supports(device, "fp16"):
        return "fp16"
    return "fp32"


def resolve_dtype(requested: str, device: Any, **capabilities) -> torch.dtype:
    """`resolve` as a torch dtype."""
    return torch_dtype(resolve(requested, device, **capabilities))


def supports(device: Any, name: str) -> bool:
    """torch's own answer: does `device` run `name` natively? (fp32: always.)"""
    import torch

    device, name = _device(device), canonical(name)
    if name == "fp32":
        return True
    if device.type == "cpu":
        return False
    if name == "fp16":
        return True  # every accelerator torch drives has fp16 kernels
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:  # emulated bf16 (pre-Ampere) is slower than fp16
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch before 2.3 has no including_emulation, and counts no emulation
            return bool(torch.cuda.is_bf16_supported())
    if device.type == "xpu":
        return bool(torch.xpu.is_available() and torch.xpu.is_bf16_supported())
    return False


def _device(device: Any):
    import torch

    return device if isinstance(device, torch.device) else torch.device(device)
