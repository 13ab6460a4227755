"""Base model from a single-file (original LDM layout) checkpoint plus a local diffusers config folder.

The tiny checkpoint is made from the tiny diffusers folder with ComfyUI's own key maps (diffusers ->
LDM), so the test needs a ComfyUI checkout (COMFYUI_PATH) and skips visibly without one.
"""

import os
import re
import sys
from pathlib import Path

import pytest
import torch

if not os.environ.get("COMFYUI_PATH"):
    pytest.skip("needs a ComfyUI checkout for its diffusers->LDM key maps: set COMFYUI_PATH", allow_module_level=True)


def _ldm_checkpoint(folder: Path, out: Path) -> Path:
    from safetensors.torch import load_file, save_file

    root = str(Path(os.environ["COMFYUI_PATH"]).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    import comfy.diffusers_convert as dc
    import comfy.utils as cu

    unet = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    te = load_file(str(next((folder / "text_encoder").glob("*.safetensors"))))
    # the tiny UNet of tests/factories/sd.py: (CrossAttnDown, Down), (Up, CrossAttnUp), one layer per block
    unet_map = cu.unet_to_diffusers({"num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth": [1, 0],
                                     "transformer_depth_output": [1, 1, 0, 0], "transformer_depth_middle": 1})
    assert set(unet) <= set(unet_map)
    sd = {"model.diffusion_model." + unet_map[k]: v for k, v in unet.items()}
    # ComfyUI's VAE map assumes four blocks (decoder.up.{3-i}); the tiny VAE has two
    for k, v in dc.convert_vae_state_dict(vae).items():
        sd["first_stage_model." + re.sub(r"^decoder\.up\.(\d+)\.", lambda m: f"decoder.up.{int(m.group(1)) - 2}.", k)] = v
    sd.update({"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v for k, v in te.items()})
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out))
    return out


def test_single_file_with_local_config_loads_the_same_weights(tmp_path):
    from testkit.sd import write_tiny_sd
    from train.models import MissingModelError, load_base_model

    folder = write_tiny_sd(tmp_path / "sd", "sd1")
    single = _ldm_checkpoint(folder, tmp_path / "tiny-sd15.safetensors")
    with pytest.raises(MissingModelError, match="--base-config"):
        load_base_model(single)
    base = load_base_model(single, folder)
    ref = load_base_model(folder)
    assert base.kind == "sd1" and base.widths == {"l": 32}
    for mine, theirs in ((base.unet, ref.unet), (base.vae, ref.vae), (base.text_encoders[0], ref.text_encoders[0])):
        a, b = mine.state_dict(), theirs.state_dict()
        assert all(torch.equal(a[k].float(), b[k].float()) for k in b)
