"""A tiny random SD1.5 single-file checkpoint that ComfyUI detects as SD15 (host contract §8.3).

Key names and shapes come from ComfyUI's own modules, built on the meta device, so the file always
matches the host version under test: UNet with model_channels 320, channel_mult [1] and one transformer
block (context_dim 768), the full CLIP-L text encoder (its size is fixed by ComfyUI's config), and a
TAESD VAE. Norm weights are 1, biases 0, other tensors randn * 0.5 / sqrt(fan_in): finite, deterministic
numerics (images come out black through a random TAESD; do not assert on pixels).

Needs ComfyUI importable (its root on sys.path, `comfy.cli_args.args.cpu = True` on GPU-less machines).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

TINY_UNET_CONFIG = {
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [0, 0],
    "transformer_depth_middle": -1,
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_linear_in_transformer": False,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "use_temporal_attention": False,
}


def _meta_state(module_factory) -> dict[str, torch.Size]:
    with torch.device("meta"):
        module = module_factory()
    return {k: v.shape for k, v in module.state_dict().items()}


def tiny_sd15_shapes() -> dict[str, torch.Size]:
    """Checkpoint key -> shape for the tiny SD1.5 file."""
    import comfy.ops
    import comfy.sd1_clip
    import comfy.taesd.taesd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    shapes = {}
    unet = _meta_state(lambda: UNetModel(**copy.deepcopy(TINY_UNET_CONFIG), operations=comfy.ops.disable_weight_init))
    shapes.update({f"model.diffusion_model.{k}": s for k, s in unet.items()})
    clip = _meta_state(lambda: comfy.sd1_clip.SDClipModel(device="meta", dtype=torch.float32))
    shapes.update({f"cond_stage_model.{k}": s for k, s in clip.items()})
    vae = _meta_state(lambda: comfy.taesd.taesd.TAESD())
    shapes.update({f"first_stage_model.{k}": s for k, s in vae.items()})
    return shapes


def random_tensor(key: str, shape, generator: torch.Generator) -> torch.Tensor:
    if len(shape) == 0:
        # logit_scale, TAESD vae_scale / vae_shift: keep the modules' own neutral values
        return torch.tensor({"logit_scale": 4.6052, "vae_scale": 1.0}.get(key.rsplit(".", 1)[-1], 0.0))
    leaf = key.rsplit(".", 1)[-1]
    is_norm = any(n in key for n in ("norm", "ln_", "layer_norm", "in_layers.0", "out_layers.0", "out.0"))
    if leaf == "bias":
        return torch.zeros(shape)
    if leaf == "weight" and is_norm and len(shape) == 1:
        return torch.ones(shape)
    if "position_ids" in key:
        return torch.arange(shape[-1]).expand(shape).clone()
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return torch.randn(shape, generator=generator) * (0.5 / math.sqrt(fan_in))


def write_tiny_sd15_checkpoint(path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Write the tiny SD1.5 `.safetensors` (about 300 MB: CLIP-L dominates) and return its path."""
    import comfy.utils

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in tiny_sd15_shapes().items():
        t = random_tensor(key, tuple(shape), g)
        sd[key] = t if "position_ids" in key else t.to(dtype)
    comfy.utils.save_torch_file(sd, str(path))
    return path


def sd15_clip(checkpoint, embedding_directory):
    """The CLIP of a checkpoint (e.g. `write_tiny_sd15_checkpoint`'s) as ComfyUI loads it, in fp32."""
    import comfy.sd

    out = comfy.sd.load_checkpoint_guess_config(str(checkpoint), output_vae=False, output_clip=True,
                                                embedding_directory=embedding_directory,
                                                te_model_options={"dtype": torch.float32})
    return out[1]
