"""Optional LoRA on the UNet attention projections (peft), saved with kohya-style keys.

Keys are `lora_unet_<diffusers module path with dots as underscores>.{lora_down.weight, lora_up.weight,
alpha}`, e.g. `lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight`.
ComfyUI's LoRA loader maps exactly this form (it derives `lora_unet_` names from the diffusers UNet
keys), and so do kohya-compatible tools.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
ADAPTER = "audiotoken"


def add_lora(unet, rank: int = 4, alpha: float | None = None) -> list[torch.nn.Parameter]:
    """Wrap every attention projection of `unet` with a rank-`rank` LoRA; returns the new parameters."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=TARGETS)
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
    """Add a LoRA saved by `save_lora` (or its state dict) to `unet`; returns the number of layers."""
    if isinstance(path_or_state, (str, Path)):
        from safetensors.torch import load_file

        state = load_file(str(path_or_state))
    else:
        state = dict(path_or_state)
    downs = {k[: -len(".lora_down.weight")]: v for k, v in state.items() if k.endswith(".lora_down.weight")}
    if not downs:
        raise ValueError("no `lora_unet_*.lora_down.weight` keys: not an AudioToken/kohya UNet LoRA")
    rank = next(iter(downs.values())).shape[0]
    alpha = float(next((v for k, v in state.items() if k.endswith(".alpha")), torch.tensor(rank)))
    if not any(True for _ in _lora_layers(unet)):
        add_lora(unet, rank, alpha)
    names = {kohya_name(n): m for n, m in _lora_layers(unet)}
    missing = sorted(set(downs) - set(names))
    if missing:
        raise ValueError(f"LoRA layers do not match this UNet (e.g. {missing[0]}); was it trained for another base model?")
    with torch.no_grad():
        for key, down in downs.items():
            module = names[key]
            module.lora_A[ADAPTER].weight.copy_(down)
            module.lora_B[ADAPTER].weight.copy_(state[f"{key}.lora_up.weight"])
    return len(downs)
