"""Flux.2 klein (Flux2KleinPipeline): Qwen3's hidden layers 9, 18 and 27 side by side over the tokenizer's chat
template (thinking off), 512 positions padded, all kept. Head `qwen3_4b` (klein 4B; `qwen3_8b` for the 8B encoder
of klein 9B). The VAE's 32-channel latents become 2x2 patches (128 channels), normalised by the VAE's batch-norm
statistics, then a sequence with 4-D position ids, as the pipeline does."""

from __future__ import annotations

import torch

from audiotoken_core.embedder.meta import QWEN3_4B, QWEN3_8B

from ..inject import tokens_written
from .flow import FlowFamily, load_pipeline

PIPELINES = ("Flux2KleinPipeline",)
MAX_LENGTH = 512  # the pipeline's max_sequence_length
LAYERS = (9, 18, 27)  # the pipeline's text_encoder_out_layers


class Flux2Klein(FlowFamily):
    kind = "flux2_klein"
    host_keys = (QWEN3_4B, QWEN3_8B)  # by the encoder's width; a tiny one is the 4B's
    encoder_names = ("text_encoder",)
    tokenizer_names = ("tokenizer",)

    layers = LAYERS

    def __init__(self, pipe, source):
        super().__init__(pipe, source)
        self.heads = (self.head_for(int(pipe.text_encoder.get_input_embeddings().weight.shape[1])),)

    def _bn(self, like: torch.Tensor):
        bn = self.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(like.device, torch.float32)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + self.vae.config.batch_norm_eps).to(like.device,
                                                                                              torch.float32)
        return mean, std

    def latents(self, mean, std, eps):
        self.check_size(mean)
        z = self.pipe._patchify_latents(mean.float() + std.float() * eps)
        m, s = self._bn(z)
        return (z - m) / s

    @torch.no_grad()
    def decode(self, latents):
        m, s = self._bn(latents)
        z = self.pipe._unpatchify_latents(latents.float() * s + m)
        return self.vae.decode(z.to(self.vae.device, next(self.vae.parameters()).dtype)).sample

    def unpack(self, latents, h, w):
        # the pipeline returns VAE latents; the interface's are the transformer's (patched, normalised)
        z = self.pipe._patchify_latents(latents.float())
        m, s = self._bn(z)
        return (z - m) / s

    @property
    def vae_downsample(self) -> int:
        return int(self.pipe.vae_scale_factor)

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        return self.chat_inputs(prompt, batch, n_tokens, device, MAX_LENGTH, enable_thinking=False)

    def encode(self, inputs, tokens):
        ids, mask, marks = inputs
        enc = self.text_encoders[0]
        with tokens_written(enc, marks, None if tokens is None else tokens[self.heads[0]]):
            out = enc(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        stacked = torch.stack([out.hidden_states[k] for k in self.layers], dim=1)  # [B, 3, L, D]
        b, n, length, d = stacked.shape
        return {"prompt_embeds": stacked.permute(0, 2, 1, 3).reshape(b, length, n * d)}

    def predict(self, noisy, timesteps, cond, dtype):
        b, c, h, w = noisy.shape
        hidden = cond["prompt_embeds"]
        transformer = self.denoiser
        guidance = None
        if transformer.config.guidance_embeds:
            guidance = torch.full((b,), self.train_guidance, device=noisy.device, dtype=torch.float32)
        out = transformer(hidden_states=self.pipe._pack_latents(noisy).to(dtype), timestep=timesteps / 1000,
                          guidance=guidance, encoder_hidden_states=hidden.to(dtype),
                          txt_ids=self.pipe._prepare_text_ids(hidden).to(noisy.device),
                          img_ids=self.pipe._prepare_latent_ids(noisy).to(noisy.device), return_dict=False)[0]
        return out.permute(0, 2, 1).reshape(b, c, h, w)

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        kwargs = dict(prompt_embeds=cond["prompt_embeds"].to(dtype), guidance_scale=guidance)
        if not self.pipe.config.is_distilled:
            kwargs["negative_prompt_embeds"] = uncond["prompt_embeds"].to(dtype)
        return kwargs


def load(path, dtype=None, config=None) -> Flux2Klein:
    from diffusers import Flux2KleinPipeline

    return Flux2Klein(load_pipeline(Flux2KleinPipeline, path, dtype), str(path)).freeze()
