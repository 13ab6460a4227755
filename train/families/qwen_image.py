"""Qwen-Image (QwenImagePipeline): Qwen2.5-VL's last hidden layer over the pipeline's prompt template, the
template's system prefix dropped, with its attention mask. Head `qwen25_7b`. The VAE is a video VAE whose latents
are normalised per channel (`latents_mean`, `latents_std`); it is used on single frames here. Latents are packed
into 2x2 patches, as the pipeline does."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from audiotoken_core.embedder.meta import QWEN25_7B, host_heads

from ..inject import count_for, tokenize_marked, tokens_written
from .flow import FlowFamily, load_pipeline, pack_2x2, unpack_2x2

PIPELINES = ("QwenImagePipeline",)


class FrameVAE(torch.nn.Module):
    """The video VAE seen as an image VAE (`[B, C, H, W]` in and out), so the cache and sampling code stay shared."""

    def __init__(self, vae):
        super().__init__()
        self.inner = vae

    @property
    def config(self):
        return self.inner.config

    @property
    def device(self):
        return next(self.parameters()).device

    def encode(self, pixels: torch.Tensor):
        dist = self.inner.encode(pixels.unsqueeze(2)).latent_dist
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=dist.mean[:, :, 0], std=dist.std[:, :, 0]))

    def decode(self, z: torch.Tensor):
        return SimpleNamespace(sample=self.inner.decode(z.unsqueeze(2)).sample[:, :, 0])


class QwenImage(FlowFamily):
    kind = "qwen_image"
    host_keys = (QWEN25_7B,)
    heads = host_heads(*host_keys)
    encoder_names = ("text_encoder",)
    tokenizer_names = ("tokenizer",)

    def __init__(self, pipe, source):
        super().__init__(pipe, source)
        self.frame_vae = FrameVAE(pipe.vae)

    @property
    def vae(self):
        return self.frame_vae

    @property
    def vae_downsample(self) -> int:
        return int(self.pipe.vae_scale_factor)

    def _stats(self, like: torch.Tensor):
        cfg = self.frame_vae.config
        mean = torch.tensor(cfg.latents_mean, device=like.device).view(1, -1, 1, 1)
        std = torch.tensor(cfg.latents_std, device=like.device).view(1, -1, 1, 1)
        return mean, std

    def latents(self, mean, std, eps):
        self.check_size(mean)
        z = mean.float() + std.float() * eps
        m, s = self._stats(z)
        return (z - m) / s

    @torch.no_grad()
    def decode(self, latents):
        m, s = self._stats(latents)
        z = latents.float() * s + m
        return self.frame_vae.decode(z.to(self.frame_vae.device, next(self.frame_vae.parameters()).dtype)).sample

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        pipe = self.pipe
        text = pipe.prompt_template_encode.format(prompt)
        ids, mask, marks = tokenize_marked(pipe.tokenizer, text, count_for(n_tokens, self.heads[0]), truncation=True,
                                           max_length=pipe.tokenizer_max_length + pipe.prompt_template_encode_start_idx)
        return [(t.expand(batch, -1).to(device)) for t in (ids, mask, marks)]

    def encode(self, inputs, tokens):
        ids, mask, marks = inputs
        enc = self.text_encoders[0]
        with tokens_written(enc, marks, None if tokens is None else tokens[self.heads[0]]):
            hidden = enc(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
        # one prompt for the whole batch, no padding: the pipeline's masked selection is a slice
        drop = int(self.pipe.prompt_template_encode_start_idx)
        hidden = hidden[:, drop:]
        return {"prompt_embeds": hidden,
                "prompt_embeds_mask": torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)}

    def predict(self, noisy, timesteps, cond, dtype):
        b, _, h, w = noisy.shape
        mask = cond["prompt_embeds_mask"]
        # as the pipeline's encode_prompt: an all-valid mask is no mask
        out = self.denoiser(hidden_states=pack_2x2(noisy).to(dtype), timestep=timesteps / 1000, guidance=None,
                            encoder_hidden_states_mask=None if bool(mask.all()) else mask,
                            encoder_hidden_states=cond["prompt_embeds"].to(dtype),
                            img_shapes=[[(1, h // 2, w // 2)]] * b, return_dict=False)[0]
        return unpack_2x2(out, h, w)

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        # Qwen-Image has no distilled guidance: its "true CFG" against the empty prompt
        return dict(prompt_embeds=cond["prompt_embeds"].to(dtype), prompt_embeds_mask=cond["prompt_embeds_mask"],
                    negative_prompt_embeds=uncond["prompt_embeds"].to(dtype),
                    negative_prompt_embeds_mask=uncond["prompt_embeds_mask"], true_cfg_scale=guidance)

    def unpack(self, latents, h, w):
        return unpack_2x2(latents, h, w)


def load(path, dtype=None, config=None) -> QwenImage:
    from diffusers import QwenImagePipeline

    return QwenImage(load_pipeline(QwenImagePipeline, path, dtype), str(path)).freeze()
