"""Tiny diffusers folders of the flow-matching families, random weights in the real classes, for tests.

* ``flux``       — FluxPipeline: CLIPTextModel (pooled) + T5EncoderModel, FluxTransformer2DModel with the guidance
                   embedding (dev), AutoencoderKL with a scaling and a shift factor;
* ``sd3``        — StableDiffusion3Pipeline: two CLIPTextModelWithProjection + T5EncoderModel, SD3Transformer2DModel;
* ``qwen_image`` — QwenImagePipeline: Qwen2_5_VLForConditionalGeneration, QwenImageTransformer2DModel,
                   AutoencoderKLQwenImage (per-channel latent mean and std);
* ``z_image``    — ZImagePipeline: Qwen3Model, ZImageTransformer2DModel;
* ``flux2_klein`` — Flux2KleinPipeline: Qwen3ForCausalLM (28 layers: the pipeline reads layers 9, 18, 27),
                   Flux2Transformer2DModel, AutoencoderKLFlux2 (2x2 patches, batch-norm statistics);
* ``flux2``       — Flux2Pipeline (Flux.2 dev): Mistral3ForConditionalGeneration (30 layers: the pipeline reads
                   10, 20, 30; a one-layer Pixtral vision tower) with a PixtralProcessor, klein's transformer (with the
                   guidance embedding) and VAE.

Tokenizers are written from scratch (a unigram T5 tokenizer, byte-level BPE Qwen and Mistral tokenizers with chat templates),
so nothing is downloaded. Every width differs from every other, so a head wired to the wrong encoder fails.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .sd import _bytes_to_unicode, _text_config, write_tiny_tokenizer

FAMILIES = ("flux", "sd3", "qwen_image", "z_image", "flux2_klein", "flux2")
CLIP_L_WIDTH, CLIP_G_WIDTH = 32, 48
T5_WIDTH = 96  # SD3 pads the CLIP sequence (32 + 48) to the T5 width, so T5 is the widest
QWEN25_WIDTH = 64
QWEN3_WIDTH = 56
KLEIN_WIDTH = 40
MISTRAL_WIDTH = 24
LATENT_CHANNELS = 4
_WORDS = ["a", "photo", "of", "dog", "cat", "bird", "in", "the", "rain", "sound", "an", "image", "with"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# tekken's first control tokens, at their ids in Mistral Small 3.x (ComfyUI pads with 11 and starts with 1)
MISTRAL_SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
                    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                    "[TOOL_CONTENT]"]
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set text = m['content'] if m['content'] is string else "
    "(m['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('')) %}"
    "{% if m['role'] == 'system' %}[SYSTEM_PROMPT]{{ text }}[/SYSTEM_PROMPT]"
    "{% elif m['role'] == 'user' %}[INST]{{ text }}[/INST]{% else %}{{ text }}{{ eos_token }}{% endif %}{% endfor %}"
)


def unigram_t5_tokenizer(pieces: list[tuple[str, float]], model_max_length: int = 512):
    """A `T5TokenizerFast` over a unigram model: `<pad>`, `</s>`, `<unk>` at T5's ids 0-2, then `pieces`
    (`(piece, log-probability)`, `▁` starting a word); `</s>` closes every text, as T5's own tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    tok = Tokenizer(models.Unigram(specials + list(pieces), unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                           extra_ids=0, model_max_length=model_max_length)


def tiny_t5_tokenizer():
    """The tests' T5 tokenizer: whole words for a few, characters for the rest."""
    words = ["▁" + w for w in _WORDS] + ["▁"]
    chars = list("abcdefghijklmnopqrstuvwxyz.,!?'0123456789<>*")
    pieces = words + chars + ["▁" + c for c in chars if "▁" + c not in words]
    return unigram_t5_tokenizer([(p, -2.0 if p[1:] in _WORDS else -5.0) for p in pieces])


def _byte_level_bpe(leading: list[str] = ()):
    """A byte-level BPE model (`Ġ` spaces) merging a few words whole; `leading` tokens take the first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    symbols = list(_bytes_to_unicode().values())
    merges = [("p", "h"), ("o", "t"), ("ph", "ot"), ("phot", "o"), ("Ġ", "photo"), ("o", "f"), ("Ġ", "of"),
              ("d", "o"), ("do", "g"), ("Ġ", "dog"), ("c", "a"), ("ca", "t"), ("Ġ", "cat")]
    vocab = {t: i for i, t in enumerate([*leading, *symbols, *("".join(m) for m in merges)])}
    model = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    model.decoder = decoders.ByteLevel()
    return model


def tiny_qwen_tokenizer():
    """A byte-level BPE tokenizer in Qwen2's form (`Ġ` spaces, `<|im_start|>` chat tokens, a chat template)."""
    from transformers import Qwen2TokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    qwen = Qwen2TokenizerFast(tokenizer_object=_byte_level_bpe(), unk_token=None, bos_token=None,
                              eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=4096)
    qwen.add_special_tokens({"additional_special_tokens": specials})
    qwen.chat_template = CHAT_TEMPLATE
    return qwen


def tiny_mistral_processor():
    """Mistral Small 3.x's processor in small: a byte-level BPE tokenizer with tekken's control tokens at their
    ids, padding on the left, and a Pixtral image processor (the text path never calls it)."""
    from transformers import PixtralImageProcessor, PixtralProcessor, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=_byte_level_bpe(MISTRAL_SPECIALS), unk_token="<unk>",
                                  bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left",
                                  model_max_length=131072)
    tok.add_special_tokens({"additional_special_tokens": MISTRAL_SPECIALS[3:11] + MISTRAL_SPECIALS[12:]})
    images = PixtralImageProcessor(size={"longest_edge": 32}, patch_size={"height": 8, "width": 8})
    return PixtralProcessor(image_processor=images, tokenizer=tok, patch_size=8, spatial_merge_size=2,
                            chat_template=MISTRAL_CHAT_TEMPLATE)


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        return CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp), local_files_only=True)


def _t5_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=T5_WIDTH, d_kv=16, d_ff=128, num_layers=2,
                                   num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0,
                                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))


def _vae(scaling: float = 0.5, shift: float = 0.1):
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                         latent_channels=LATENT_CHANNELS, norm_num_groups=4, sample_size=32,
                         scaling_factor=scaling, shift_factor=shift)


def _flow_scheduler(**kw):
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **kw)


_DYNAMIC = dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                max_image_seq_len=4096)


def _flux():
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    clip_tok, t5_tok = _clip_tokenizer(), tiny_t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=LATENT_CHANNELS * 4, num_layers=1,
                                         num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
                                         joint_attention_dim=T5_WIDTH, pooled_projection_dim=CLIP_L_WIDTH,
                                         guidance_embeds=True, axes_dims_rope=(2, 2, 4))
    return FluxPipeline(scheduler=_flow_scheduler(**_DYNAMIC), vae=_vae(),
                        text_encoder=CLIPTextModel(_text_config(CLIP_L_WIDTH, len(clip_tok))), tokenizer=clip_tok,
                        text_encoder_2=_t5_encoder(len(t5_tok)), tokenizer_2=t5_tok, transformer=transformer)


def _sd3():
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    clip_tok, t5_tok = _clip_tokenizer(), tiny_t5_tokenizer()
    vocab = len(clip_tok)
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=LATENT_CHANNELS, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=T5_WIDTH,
                                        caption_projection_dim=16, pooled_projection_dim=2 * 16,
                                        out_channels=LATENT_CHANNELS, pos_embed_max_size=16)
    return StableDiffusion3Pipeline(
        scheduler=_flow_scheduler(shift=3.0), vae=_vae(),
        text_encoder=CLIPTextModelWithProjection(_text_config(CLIP_L_WIDTH, vocab, projection_dim=16)),
        tokenizer=clip_tok,
        text_encoder_2=CLIPTextModelWithProjection(_text_config(CLIP_G_WIDTH, vocab, projection_dim=16)),
        tokenizer_2=_clip_tokenizer(), text_encoder_3=_t5_encoder(len(t5_tok)), tokenizer_3=t5_tok,
        transformer=transformer)


def _qwen_image():
    from diffusers import (
        AutoencoderKLQwenImage,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = tiny_qwen_tokenizer()
    text = dict(vocab_size=len(tok), hidden_size=QWEN25_WIDTH, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                bos_token_id=len(tok) - 3, eos_token_id=len(tok) - 1, initializer_range=0.2,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 2, 4]})
    config = Qwen2_5_VLConfig(text_config=text, vision_config=dict(depth=1, hidden_size=16, intermediate_size=32,
                                                                    num_heads=2, out_hidden_size=QWEN25_WIDTH,
                                                                    fullatt_block_indexes=[0]),
                              image_token_id=len(tok) - 1, video_token_id=len(tok) - 1,
                              vision_start_token_id=len(tok) - 1, vision_end_token_id=len(tok) - 1)
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=LATENT_CHANNELS, dim_mult=[1, 2], num_res_blocks=1,
                                 attn_scales=[], temperal_downsample=[False],
                                 latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.8, 1.2, 2.0])
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=LATENT_CHANNELS * 4,
                                              out_channels=LATENT_CHANNELS, num_layers=2, attention_head_dim=16,
                                              num_attention_heads=2, joint_attention_dim=QWEN25_WIDTH,
                                              axes_dims_rope=(4, 6, 6))
    return QwenImagePipeline(scheduler=_flow_scheduler(**_DYNAMIC), vae=vae,
                             text_encoder=Qwen2_5_VLForConditionalGeneration(config), tokenizer=tok,
                             transformer=transformer)


def _z_image():
    from diffusers import ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tok = tiny_qwen_tokenizer()
    text = Qwen3Model(Qwen3Config(vocab_size=len(tok), hidden_size=QWEN3_WIDTH, intermediate_size=64,
                                  num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=14,
                                  max_position_embeddings=2048, bos_token_id=len(tok) - 3,
                                  eos_token_id=len(tok) - 1))
    transformer = ZImageTransformer2DModel(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=LATENT_CHANNELS,
                                           dim=32, n_layers=1, n_refiner_layers=1, n_heads=2, n_kv_heads=2,
                                           cap_feat_dim=QWEN3_WIDTH, axes_dims=[4, 6, 6], axes_lens=[64, 32, 32])
    return ZImagePipeline(scheduler=_flow_scheduler(shift=3.0), vae=_vae(0.36, 0.12), text_encoder=text,
                          tokenizer=tok, transformer=transformer)


def _flux2_vae():
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                             block_out_channels=(8, 16), layers_per_block=1, latent_channels=LATENT_CHANNELS,
                             norm_num_groups=4, sample_size=32, mid_block_add_attention=False)
    with torch.no_grad():  # statistics the latents are normalised by, not the identity
        vae.bn.running_mean.copy_(torch.linspace(-0.2, 0.2, vae.bn.running_mean.numel()))
        vae.bn.running_var.copy_(torch.linspace(0.5, 2.0, vae.bn.running_var.numel()))
    return vae


def _flux2_transformer(text_width: int, guidance: bool):
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(patch_size=1, in_channels=LATENT_CHANNELS * 4, num_layers=1, num_single_layers=1,
                                   attention_head_dim=8, num_attention_heads=2, joint_attention_dim=text_width,
                                   timestep_guidance_channels=16, axes_dims_rope=(2, 2, 2, 2),
                                   guidance_embeds=guidance)


def _flux2_klein():
    from diffusers import Flux2KleinPipeline
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = tiny_qwen_tokenizer()
    text = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tok), hidden_size=KLEIN_WIDTH, intermediate_size=48,
                                        num_hidden_layers=28, num_attention_heads=4, num_key_value_heads=2,
                                        head_dim=10, max_position_embeddings=2048, bos_token_id=len(tok) - 3,
                                        eos_token_id=len(tok) - 1, tie_word_embeddings=True))
    return Flux2KleinPipeline(scheduler=_flow_scheduler(**_DYNAMIC), vae=_flux2_vae(), text_encoder=text,
                              tokenizer=tok, transformer=_flux2_transformer(3 * KLEIN_WIDTH, guidance=False))


def _flux2():
    from diffusers import Flux2Pipeline
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    processor = tiny_mistral_processor()
    n = len(processor.tokenizer)
    text = dict(model_type="mistral", vocab_size=n, hidden_size=MISTRAL_WIDTH, intermediate_size=48,
                num_hidden_layers=30, num_attention_heads=4, num_key_value_heads=2, head_dim=6,
                max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=11)
    vision = dict(model_type="pixtral", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, image_size=32, patch_size=8, head_dim=8)
    encoder = Mistral3ForConditionalGeneration(Mistral3Config(text_config=text, vision_config=vision,
                                                              image_token_index=10, spatial_merge_size=2))
    vae, transformer = _flux2_vae(), _flux2_transformer(3 * MISTRAL_WIDTH, guidance=True)
    # left padding leaves the token ~15 of 512 text rows (those after it), so a random tiny transformer barely
    # reads it (a loss change near float32's resolution); text values and attention outputs x10 make it ~40x
    # stronger, still every weight random
    with torch.no_grad():
        for weight in (transformer.transformer_blocks[0].attn.add_v_proj.weight,
                       transformer.transformer_blocks[0].attn.to_out[0].weight,
                       transformer.single_transformer_blocks[0].attn.to_out.weight):
            weight.mul_(10)
    return Flux2Pipeline(scheduler=_flow_scheduler(**_DYNAMIC), vae=vae, text_encoder=encoder, tokenizer=processor,
                         transformer=transformer)


_BUILDERS = {"flux": _flux, "sd3": _sd3, "qwen_image": _qwen_image, "z_image": _z_image, "flux2_klein": _flux2_klein,
             "flux2": _flux2}


def tiny_flow_pipeline(family: str, seed: int = 0):
    """The pipeline object itself (random weights, CPU, float32)."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny flow family {family!r}; one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    return _BUILDERS[family]()


def write_tiny_flow(folder: str | Path, family: str, seed: int = 0) -> Path:
    """Write a loadable diffusers folder (model_index.json + components) of `family` and return its path."""
    folder = Path(folder)
    tiny_flow_pipeline(family, seed).save_pretrained(str(folder), safe_serialization=True)
    return folder
