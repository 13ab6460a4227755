"""Load ComfyUI and the pack into the test process (host contract §9), without a server."""

from __future__ import annotations

import torch

from host_env import comfy_in_process
from testkit import comfy as tiny_comfy
from testkit import host
from testkit.host import PACK  # noqa: F401  (tests reach the pack's modules by this name)


def pack_module(name: str):
    """`nodes.<name>` of the pack, imported as a subpackage exactly as ComfyUI does (relative imports)."""
    comfy_in_process()
    return host.pack_module(name)


def fill_random(module: torch.nn.Module, seed: int = 0) -> None:
    """Deterministic finite weights in place (comfy.ops layers are created uninitialised)."""
    from testkit.comfy import random_tensor

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(random_tensor(name, tuple(p.shape), g).to(p.dtype))


def small_sd1_clip(embedding_directory):
    """An SD1.x CLIP-L (768) from comfy's sd1_clip classes with 3 layers, random: fast on a CPU."""
    comfy_in_process()
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models_base

    target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)
    clip = comfy.sd.CLIP(target=target, embedding_directory=embedding_directory,
                         model_options={"clip_l_model_config": {"num_hidden_layers": 3}, "dtype": torch.float32})
    fill_random(clip.cond_stage_model, seed=2)
    return clip


def small_sd2_clip(embedding_directory):
    """An SD2.x CLIP-H (1024) from comfy's sd2_clip classes with 3 layers, random."""
    comfy_in_process()
    import comfy.sd
    import comfy.supported_models_base
    import comfy.text_encoders.sd2_clip as sd2

    target = comfy.supported_models_base.ClipTarget(sd2.SD2Tokenizer, sd2.SD2ClipModel)
    options = {"clip_h_model_config": {"num_hidden_layers": 3, "intermediate_size": 1024}, "dtype": torch.float32}
    clip = comfy.sd.CLIP(target=target, embedding_directory=embedding_directory, model_options=options)
    fill_random(clip.cond_stage_model, seed=3)
    return clip


def small_sdxl_clip(embedding_directory):
    """An SDXL CLIP (clip_l 768 + clip_g 1280) from comfy's own sdxl_clip classes, 3 layers each, random."""
    comfy_in_process()
    import comfy.sd
    import comfy.sdxl_clip
    import comfy.supported_models_base

    target = comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel)
    options = {"clip_l_model_config": {"num_hidden_layers": 3},
               "clip_g_model_config": {"num_hidden_layers": 3, "intermediate_size": 1024}}
    # fp32: the host's default fp16 text encoder is several times slower on a CPU; equality holds either way.
    clip = comfy.sd.CLIP(target=target, embedding_directory=embedding_directory,
                         model_options={**options, "dtype": torch.float32})
    fill_random(clip.cond_stage_model, seed=1)
    return clip


def sd15_clip(checkpoint, embedding_directory):
    comfy_in_process()
    return tiny_comfy.sd15_clip(checkpoint, embedding_directory)
