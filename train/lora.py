"""Optional LoRA on the UNet attention projections (peft), saved with kohya-style keys.

Keys are `lora_unet_<diffusers module path with dots as underscores>.{lora_down.weight, lora_up.weight,
alpha}`, e.g. `lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight`.
ComfyUI's LoRA loader maps exactly this form (it derives `lora_unet_` names from the diffusers UNet
keys), and so do kohya-compatible tools.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .lora_files import lora_layers, read_lora_file

log = logging.getLogger("train.lora")

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
ADAPTER = "audiotoken"


def add_lora(unet, rank: int = 4, alpha: float | None = None, targets: list[str] | None = None,
             ranks: dict[str, int] | None = None, alphas: dict[str, float] | None = None) -> list[torch.nn.Parameter]:
    """Wrap attention projections of `unet` with a rank-`rank` LoRA; returns the new parameters.

    `targets` (full module names) replaces the default set, e.g. to match a file; `ranks`/`alphas` give
    per-module values where a file's layers differ.
    """
    import re

    from peft import LoraConfig

    config = LoraConfig(
        r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=targets or TARGETS,
        # peft reads these keys as regular expressions; escaped, a full module name matches only itself
        rank_pattern={re.escape(k): v for k, v in (ranks or {}).items()},
        alpha_pattern={re.escape(k): v for k, v in (alphas or {}).items()},
    )
    unet.add_adapter(config, adapter_name=ADAPTER)
    params = [p for n, p in unet.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
        p.data = p.data.float()  # trained weights stay fp32 under mixed precision
    return params


def _lora_layers(unet):
    for name, module in unet.named_modules():
        if hasattr(module, "lora_A") and ADAPTER in getattr(module, "lora_A", {}):
            # torch.compile and DDP wrappers add prefixes that are not part of the UNet's key names
            yield name.replace("_orig_mod.", "").removeprefix("module."), module


def kohya_name(module_name: str) -> str:
    return "lora_unet_" + module_name.replace(".", "_")


def lora_state(unet) -> dict[str, torch.Tensor]:
    out = {}
    for name, module in _lora_layers(unet):
        key = kohya_name(name)
        down = module.lora_A[ADAPTER].weight
        up = module.lora_B[ADAPTER].weight
        out[f"{key}.lora_down.weight"] = down.detach().float().cpu().contiguous()
        out[f"{key}.lora_up.weight"] = up.detach().float().cpu().contiguous()
        out[f"{key}.alpha"] = torch.tensor(float(module.lora_alpha[ADAPTER]))
    if not out:
        raise ValueError("the UNet has no AudioToken LoRA layers to save")
    return out


def save_lora(unet, path: str | Path, training: dict | None = None) -> Path:
    from audiotoken_core.safeload import write_safetensors

    state = lora_state(unet)
    rank = next(v.shape[0] for k, v in state.items() if k.endswith("lora_down.weight"))
    alpha = next(float(v) for k, v in state.items() if k.endswith(".alpha"))
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": repr(alpha),
        "audiotoken_training": json.dumps(training or {}),
    }
    write_safetensors(state, Path(path), meta)
    return Path(path)


def load_lora(unet, path_or_state) -> int:
    """Add a LoRA to `unet` (or fill the one it has); returns the number of layers.

    Reads the file formats of `read_lora_file` and the key layouts of `lora_layers`: ours (kohya names, what
    ComfyUI maps), the official AudioToken file (diffusers attention processors), peft/diffusers adapters and
    ComfyUI's original-UNet names. Text-encoder layers are skipped with a warning, as ComfyUI's
    LoraLoaderModelOnly skips them.
    """
    name = Path(path_or_state).name if isinstance(path_or_state, (str, Path)) else "LoRA state"
    if isinstance(path_or_state, (str, Path)):
        state, defaults = read_lora_file(path_or_state)
    else:
        state, defaults = dict(path_or_state), {}
    layers, layout, skipped = lora_layers(state, unet, default_alpha=defaults.get("alpha"))
    if skipped:
        log.warning("%s: %d text-encoder LoRA tensors are not applied (only the UNet part is)", name, skipped)
    existing = {n: m for n, m in _lora_layers(unet)}
    if not existing:
        ranks = {k: int(v.down.shape[0]) for k, v in layers.items()}
        alphas = {k: v.alpha for k, v in layers.items()}
        rank, alpha = _most_common(ranks.values()), _most_common(alphas.values())
        add_lora(unet, rank, alpha, targets=sorted(layers),
                 ranks={k: r for k, r in ranks.items() if r != rank},
                 alphas={k: a for k, a in alphas.items() if a != alpha})
        existing = {n: m for n, m in _lora_layers(unet)}
    missing = sorted(set(layers) - set(existing))
    if missing:
        raise ValueError(f"{name}: its layer {missing[0]} is not a LoRA layer of this UNet")
    with torch.no_grad():
        for module_name, layer in layers.items():
            module = existing[module_name]
            _copy(module.lora_A[ADAPTER].weight, layer.down, name, module_name, "down")
            _copy(module.lora_B[ADAPTER].weight, layer.up, name, module_name, "up")
    ranks = sorted({int(v.down.shape[0]) for v in layers.values()})
    log.info("LoRA %s: %d UNet layers (%s, rank %s)", name, len(layers), layout, "/".join(map(str, ranks)))
    return len(layers)


def _copy(param: torch.Tensor, value: torch.Tensor, file: str, module: str, part: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"{file}: {module} {part} weight is {tuple(value.shape)}, this UNet needs "
                         f"{tuple(param.shape)}; the LoRA was made for another base model")
    param.copy_(value.to(param.dtype))


def _most_common(values):
    values = list(values)
    return max(set(values), key=values.count)

