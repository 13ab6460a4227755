"""Reading LoRA files of any common layout, and mapping their keys onto a diffusers UNet's attention layers.

Formats (`read_lora_file`): safetensors, torch files, peft adapter folders. Key layouts (`lora_layers`): ours (kohya
names, what ComfyUI maps), the official AudioToken file (diffusers attention processors), diffusers/peft adapters
and ComfyUI's original-UNet (LDM) names.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from audiotoken_core.sources import official

log = logging.getLogger("train.lora")


@dataclass
class LoraLayer:
    down: torch.Tensor
    up: torch.Tensor
    alpha: float


def read_lora_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors of a LoRA file, by its content rather than its extension, and defaults a side file gives.

    `.safetensors` is read as such; a torch checkpoint (zip or legacy pickle: the official `.bin`) with
    `weights_only` loading. A peft `adapter_config.json` beside the file supplies `lora_alpha`.
    """
    from audiotoken_core.embedder.formats import sniff_format
    from audiotoken_core.safeload import load_torch_checkpoint, read_safetensors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file {path} not found")
    try:
        if sniff_format(path) == "torch":
            state = load_torch_checkpoint(path)
            state = state["state_dict"] if isinstance(state.get("state_dict"), dict) else state
        else:
            state, _ = read_safetensors(path)
    except ValueError as exc:
        raise ValueError(
            f"{path.name}: not a LoRA file that can be read, neither a torch checkpoint nor a .safetensors file "
            f"({exc}). Expected the official {official('lora').name}, a ComfyUI/kohya or AudioToken "
            ".safetensors, or a peft adapter_model.safetensors") from exc
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path.name}: holds no tensors, so it is no LoRA")
    return tensors, _peft_defaults(path)


def _peft_defaults(path: Path) -> dict:
    config = path.with_name("adapter_config.json")
    if not config.is_file():
        return {}
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {"alpha": float(data["lora_alpha"])} if "lora_alpha" in data else {}


_LAYOUTS = [
    ("official AudioToken / diffusers attention processors",
     re.compile(r"(?P<module>.+)\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<part>down|up)\.weight")),
    ("diffusers attention processors",
     re.compile(r"(?P<module>.+)\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<part>down|up)\.weight")),
    ("diffusers LoRA-compatible layers", re.compile(r"(?P<module>.+)\.lora\.(?P<part>down|up)\.weight")),
    ("peft", re.compile(r"(?P<module>.+)\.lora_(?P<part>A|B)(?:\.[A-Za-z0-9_]+)?\.weight")),
    ("ComfyUI / kohya", re.compile(r"(?P<module>.+)\.lora_(?P<part>down|up)\.weight")),
]


_ALPHA = re.compile(r"(?P<module>.+)\.alpha")


_PREFIXES = ("base_model.model.", "unet.", "model.diffusion_model.", "diffusion_model.", "lora_unet_")


_TEXT_ENCODER = ("lora_te", "text_encoder", "te_", "te1_", "te2_", "transformer.text_model", "cond_stage_model")


_PARTS = {"down": "down", "up": "up", "A": "down", "B": "up"}


def lora_layers(state: dict[str, torch.Tensor], unet, default_alpha: float | None = None):
    """`({UNet module name: LoraLayer}, layout name, text-encoder tensors skipped)` for any known layout."""
    names = _module_aliases(unet)
    found: dict[str, dict] = {}
    layouts, skipped, unknown = set(), 0, []
    alphas: dict[str, float] = {}
    for key, tensor in state.items():
        if key.startswith(_TEXT_ENCODER):
            skipped += 1
            continue
        bare = _strip(key)
        m = _ALPHA.fullmatch(bare)
        if m and tensor.numel() == 1:
            alphas[m.group("module")] = float(tensor)
            continue
        layout, module, part = _match(bare)
        if layout is None:
            unknown.append(key)
            continue
        layouts.add(layout)
        found.setdefault(module, {})[part] = tensor
    if unknown and not found:
        raise ValueError(f"no UNet LoRA layers found; keys such as {unknown[0]!r} are of no LoRA layout known here "
                         "(official AudioToken, ComfyUI/kohya lora_unet_*, peft lora_A/lora_B, diffusers)")
    if unknown:
        raise ValueError(f"unknown LoRA key {unknown[0]!r} ({len(unknown)} such keys)")
    layers = {}
    for module, parts in found.items():
        if set(parts) != {"down", "up"}:
            raise ValueError(f"LoRA layer {module} lacks its {'up' if 'down' in parts else 'down'} weight")
        target = names.get(module)
        if target is None:
            raise ValueError(f"LoRA layers do not match this UNet (e.g. {module}); was it trained for another "
                             "base model?")
        rank = int(parts["down"].shape[0])
        alpha = alphas.get(module, default_alpha if default_alpha is not None else float(rank))
        layers[target] = LoraLayer(parts["down"], parts["up"], float(alpha))
    return layers, " + ".join(sorted(layouts)), skipped


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _match(bare: str):
    for layout, pattern in _LAYOUTS:
        m = pattern.fullmatch(bare)
        if m:
            module = m.group("module")
            proj = m.groupdict().get("proj")
            if proj:
                module = f"{module}.{proj}.0" if proj == "to_out" else f"{module}.{proj}"
            return layout, module, _PARTS[m.group("part")]
    return None, None, None


def _module_aliases(unet) -> dict[str, str]:
    """Every spelling a file may use for a UNet layer -> its diffusers module name.

    Spellings: diffusers dotted, kohya (dots as underscores), and ComfyUI's original-UNet (ldm) names for the
    attention blocks, dotted or underscored.
    """
    out = {}
    ldm = _ldm_names(unet)
    for name, module in unet.named_modules():
        name = name.replace("_orig_mod.", "").removeprefix("module.")
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and not hasattr(module, "lora_A"):
            continue
        if ".lora_" in name or name.endswith(".base_layer") or ".base_layer." in name:
            continue
        for alias in (name, ldm(name)):
            if alias:
                out[alias] = name
                out[alias.replace(".", "_")] = name
    return out


def _ldm_names(unet):
    """diffusers module name -> the original SD UNet name (`input_blocks.1.1.…`), for attention blocks only."""
    config = getattr(unet, "config", None)
    per_block = getattr(config, "layers_per_block", 2)
    per_block = per_block if isinstance(per_block, int) else None

    def convert(name: str) -> str | None:
        if per_block is None:
            return None
        m = re.match(r"(down_blocks|up_blocks|mid_block)\.(?:(\d+)\.)?attentions\.(\d+)\.(.+)", name)
        if not m:
            return None
        kind, block, index, rest = m.group(1), int(m.group(2) or 0), int(m.group(3)), m.group(4)
        if kind == "down_blocks":
            return f"input_blocks.{1 + block * (per_block + 1) + index}.1.{rest}"
        if kind == "up_blocks":
            return f"output_blocks.{block * (per_block + 1) + index}.1.{rest}"
        return f"middle_block.1.{rest}"

    return convert
