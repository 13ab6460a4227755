"""Tiny diffusers Stable Diffusion folders with random weights, for tests that must never touch a hub.

Three layouts mirror the real families the trainer supports:
* ``sd1``  — one CLIPTextModel, epsilon prediction (SD1.x);
* ``sd2``  — one wider CLIPTextModel, v-prediction (SD2.x), a different token width on purpose;
* ``sdxl`` — CLIPTextModel + CLIPTextModelWithProjection, text-time additional conditioning.

The tokenizer is a byte-level CLIP BPE written from scratch (vocab.json + merges.txt), so no
tokenizer download is needed. Models are small enough for a 2-core CPU to run a training step in
well under a second.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

# Widths of the tiny text encoders; distinct so tests notice a head wired to the wrong encoder.
SD1_WIDTH = 32
SD2_WIDTH = 48
SDXL_WIDTHS = (32, 48)
MAX_LENGTH = 77
VAE_SCALE = 2  # two encoder blocks -> latents are half the image size

_MERGES = ["p h", "o t", "ph ot", "phot o</w>", "o f</w>", "d o", "do g</w>", "c a", "ca t</w>"]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable-unicode table, the alphabet byte-level BPE works on."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def write_tiny_tokenizer(folder: str | Path) -> Path:
    """A valid CLIP tokenizer folder: 256 byte symbols, their word-final forms, a few merges, BOS/EOS."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    for merge in _MERGES:
        merged = merge.replace(" ", "")
        if merged not in vocab_list:
            vocab_list.append(merged)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            }
        ),
        encoding="utf-8",
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": MAX_LENGTH,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "do_lower_case": True,
            }
        ),
        encoding="utf-8",
    )
    return folder


def _text_config(width: int, vocab_size: int, projection_dim: int | None = None):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=projection_dim or width,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def _tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )


def _tiny_unet(cross_dim: int, sdxl: bool = False, pooled_dim: int = 0):
    from diffusers import UNet2DConditionModel

    kwargs = {}
    if sdxl:
        kwargs = dict(
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + pooled_dim,
        )
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        attention_head_dim=4,
        norm_num_groups=8,
        cross_attention_dim=cross_dim,
        **kwargs,
    )


def _scheduler(prediction_type: str):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
        clip_sample=False,
        steps_offset=1,
    )


def write_tiny_sd(folder: str | Path, variant: str = "sd1", seed: int = 0) -> Path:
    """Write a loadable diffusers folder (model_index.json + components) and return its path.

    variant: ``sd1`` | ``sd2`` | ``sdxl``.
    """
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = write_tiny_tokenizer(tmp)
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True)
        tokenizer_2 = CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True)
    vocab_size = len(tokenizer)
    torch.manual_seed(seed)
    vae = _tiny_vae()
    if variant in ("sd1", "sd2"):
        from diffusers import StableDiffusionPipeline

        width = SD1_WIDTH if variant == "sd1" else SD2_WIDTH
        text_encoder = CLIPTextModel(_text_config(width, vocab_size))
        unet = _tiny_unet(width)
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=_scheduler("epsilon" if variant == "sd1" else "v_prediction"),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    elif variant == "sdxl":
        from diffusers import StableDiffusionXLPipeline

        w1, w2 = SDXL_WIDTHS
        text_encoder = CLIPTextModel(_text_config(w1, vocab_size))
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(w2, vocab_size, projection_dim=16))
        unet = _tiny_unet(w1 + w2, sdxl=True, pooled_dim=16)
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            scheduler=_scheduler("epsilon"),
        )
    else:
        raise ValueError(f"unknown tiny SD variant {variant!r}; use sd1, sd2 or sdxl")
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder
