"""`train.lora.load_lora` and `python -m train.generate --lora`: the official AudioToken LoRA, ComfyUI/kohya,
peft and diffusers layouts, clear errors for unreadable files, and the official file changing a picture drawn by
a full-size SD1.5 UNet (random weights)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from factories.official import LORA as OFFICIAL_LORA

pytestmark = pytest.mark.usefixtures("one_thread")

SD15_UNET = {
    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "layers_per_block": 2,
    "attention_head_dim": 8, "sample_size": 64, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


@pytest.fixture(scope="module")
def tiny_unet():
    from testkit.sd import _tiny_unet

    torch.manual_seed(0)
    return _tiny_unet(32).eval()


@pytest.fixture(scope="module")
def trained_state(tiny_unet):
    """Our own kohya-style state of a random LoRA (rank 4, alpha 2: a scale other than 1 is visible)."""
    from train.lora import add_lora, lora_state

    unet = copy.deepcopy(tiny_unet)
    torch.manual_seed(1)
    for p in add_lora(unet, rank=4, alpha=2.0):
        torch.nn.init.normal_(p, std=0.2)
    return lora_state(unet), _output(unet)


def _output(unet) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    sample, context = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 5, 32, generator=g)
    with torch.no_grad():
        return unet(sample, 10, context).sample


def _kohya_to(state: dict, layout: str, unet) -> dict:
    """Our kohya state rewritten in another layout (to_out.0 etc. from the UNet's own module names)."""
    from train.lora_files import _module_aliases

    names = _module_aliases(unet)
    out = {}
    for key, value in state.items():
        stem, part = key.split(".", 1)
        module = names[stem.removeprefix("lora_unet_")]
        if part == "alpha":
            if layout in ("kohya_ldm",):
                out[f"lora_unet_{_ldm(module, unet).replace('.', '_')}.alpha"] = value
            continue
        kind = "down" if part.startswith("lora_down") else "up"
        if layout == "official":
            base, proj = module.rsplit(".to_", 1)
            proj = "to_" + proj.removesuffix(".0")
            out[f"{base}.processor.{proj}_lora.{kind}.weight"] = value
        elif layout == "peft":
            out[f"base_model.model.{module}.lora_{'A' if kind == 'down' else 'B'}.weight"] = value
        elif layout == "diffusers":
            out[f"unet.{module}.lora.{kind}.weight"] = value
        elif layout == "comfy_ldm":
            out[f"diffusion_model.{_ldm(module, unet)}.lora_{kind}.weight"] = value
        elif layout == "kohya_ldm":
            out[f"lora_unet_{_ldm(module, unet).replace('.', '_')}.lora_{kind}.weight"] = value
    return out


def _ldm(module: str, unet) -> str:
    from train.lora_files import _ldm_names

    return _ldm_names(unet)(module)


@pytest.mark.parametrize("layout", ["kohya", "official", "peft", "diffusers", "comfy_ldm", "kohya_ldm"])
def test_every_layout_gives_the_same_unet(layout, tiny_unet, trained_state, tmp_path):
    from safetensors.torch import save_file

    from train.lora import load_lora

    state, want = trained_state
    converted = dict(state) if layout == "kohya" else _kohya_to(state, layout, tiny_unet)
    if layout == "official":
        path = tmp_path / "lora.bin"
        torch.save(converted, path)
        scale_alpha = None
    else:
        path = tmp_path / "adapter_model.safetensors"
        save_file({k: v.contiguous() for k, v in converted.items()}, str(path))
        scale_alpha = 2.0
    if layout in ("peft", "diffusers", "comfy_ldm"):  # alpha from a side file (peft) or not stored at all
        (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 2.0}))
    unet = copy.deepcopy(tiny_unet)
    n = load_lora(unet, path)
    assert n == sum(1 for k in state if k.endswith("lora_down.weight"))
    got = _output(unet)
    if scale_alpha is None:
        # the official format stores no alpha: scale 1 (diffusers' LoRAAttnProcessor), i.e. ours with alpha = rank
        assert not torch.allclose(got, want)
        scale_one = copy.deepcopy(tiny_unet)
        load_lora(scale_one, {k: torch.tensor(4.0) if k.endswith(".alpha") else v for k, v in state.items()})
        assert torch.allclose(got, _output(scale_one), atol=1e-5)
    else:
        assert torch.allclose(got, want, atol=1e-5)


def test_official_file_maps_all_128_pairs_on_sd15(caplog):
    from diffusers import UNet2DConditionModel

    from train.lora_files import lora_layers, read_lora_file

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD15_UNET)
    state, defaults = read_lora_file(OFFICIAL_LORA)
    assert len(state) == 256 and defaults == {}
    layers, layout, skipped = lora_layers(state, unet)
    assert len(layers) == 128 and skipped == 0 and layout.startswith("official AudioToken")
    assert "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0" in layers
    attn2_k = layers["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"]
    assert tuple(attn2_k.down.shape) == (4, 768) and attn2_k.alpha == 4.0  # no alpha stored: scale 1


def test_official_file_on_another_unet_says_so(tiny_unet):
    from train.lora import load_lora

    with pytest.raises(ValueError, match="do not match this UNet|another base model"):
        load_lora(copy.deepcopy(tiny_unet), OFFICIAL_LORA)


def test_text_encoder_layers_are_skipped_with_a_warning(tiny_unet, trained_state, tmp_path, caplog):
    from safetensors.torch import save_file

    from train.lora import load_lora

    state = dict(trained_state[0])
    state["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = torch.zeros(4, 32)
    save_file(state, str(tmp_path / "both.safetensors"))
    with caplog.at_level("WARNING", logger="train.lora"):
        load_lora(copy.deepcopy(tiny_unet), tmp_path / "both.safetensors")
    assert "1 text-encoder LoRA tensors are not applied" in caplog.text


@pytest.mark.parametrize("content", [b"", b"\xff" * 64, b"PK\x03\x04 not really a zip", b"hello world, no tensors"],
                         ids=["empty", "garbage", "broken_zip", "text"])
def test_unreadable_file_gets_a_clear_error(content, tiny_unet, tmp_path):
    from train.lora import load_lora

    path = tmp_path / "lora.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="lora.safetensors: not a LoRA file that can be read") as err:
        load_lora(copy.deepcopy(tiny_unet), path)
    assert "SafetensorError" not in type(err.value).__name__


def test_generate_cli_reports_an_unreadable_lora(tmp_path_factory, tmp_path, capsys):
    from factories.media import write_wav
    from factories.train_world import get_world
    from factories.embedder import write_tiny_embedder
    from train.generate import main

    world = get_world(tmp_path_factory.getbasetemp() / "train_world", ("sd1",))
    embedder = write_tiny_embedder(tmp_path / "emb.safetensors", in_dim=3 * 32, widths={"l": 32})
    bad = tmp_path / "lora_layers_learned_embeds.bin"
    bad.write_bytes(b"\x00" * 100)
    rc = main(["--audio", str(write_wav(tmp_path / "a.wav")), "--base-model", str(world["sd1"]),
               "--embedder", str(embedder), "--beats", str(world["beats"]), "--lora", str(bad), "--no-download",
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot load models: lora_layers_learned_embeds.bin: not a LoRA file that can be read" in err


# ------------------------------------------------------------------------------------ full-size SD1.5 UNet

def _write_full_size_sd15(folder: Path) -> Path:
    """The tiny SD folder with a full-size SD1.5 UNet (random fp16 weights, 860 M parameters) and a 768-wide
    two-layer text encoder, so the official LoRA's every layer fits."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    from testkit.comfy import random_tensor
    from testkit.sd import _text_config, write_tiny_sd

    write_tiny_sd(folder, "sd1")
    text_config = json.loads((folder / "text_encoder" / "config.json").read_text())
    torch.manual_seed(0)
    CLIPTextModel(_text_config(768, text_config["vocab_size"])).save_pretrained(folder / "text_encoder")
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD15_UNET)
    g = torch.Generator().manual_seed(0)
    state = {k: random_tensor(k, tuple(v.shape), g).to(torch.float16) for k, v in unet.state_dict().items()}
    for p in (folder / "unet").iterdir():
        p.unlink()
    unet.save_config(folder / "unet")
    save_file(state, str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    return folder


@pytest.mark.slow
def test_official_lora_changes_the_picture_of_a_full_size_sd15(tmp_path, capsys, caplog):
    from testkit.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_official_embedder
    from factories.media import write_wav
    from train.generate import main

    sd = _write_full_size_sd15(tmp_path / "sd15")
    beats = write_tiny_official_beats(tmp_path / "beats.pt", layers=12, dim=32, heads=4)
    embedder = write_tiny_official_embedder(tmp_path / "embedder_learned_embeds.bin", in_dim=96, out_dim=768)
    audio = write_wav(tmp_path / "dog.wav", seconds=1.0, freq=300.0)
    common = ["--audio", str(audio), "--base-model", str(sd), "--embedder", str(embedder), "--beats", str(beats),
              "--steps", "2", "--height", "32", "--width", "32", "--no-download"]
    with caplog.at_level("INFO", logger="train.lora"):
        assert main(common + ["--out", str(tmp_path / "with"), "--lora", str(OFFICIAL_LORA)]) == 0
    assert "LoRA lora_layers_learned_embeds.bin: 128 UNet layers (official AudioToken" in caplog.text
    assert main(common + ["--out", str(tmp_path / "without")]) == 0
    from PIL import Image

    a = np.asarray(Image.open(tmp_path / "with" / "dog_seed0.png"), dtype=np.float32)
    b = np.asarray(Image.open(tmp_path / "without" / "dog_seed0.png"), dtype=np.float32)
    assert a.shape == b.shape == (32, 32, 3)
    diff = float(np.abs(a - b).mean())
    print(f"mean |with LoRA - without| = {diff:.2f} of 255")
    assert diff > 0.5 and math.isfinite(diff)
