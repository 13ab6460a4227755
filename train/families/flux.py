"""Flux.1 (FluxPipeline): the T5-XXL sequence carries the prompt, CLIP-L only its pooled vector; dev's guidance
embedding gets a fixed guidance during training. Heads: `l` (CLIP-L, pooled) and `t5xxl`. Latents are packed
into 2x2 patches, with image position ids, as the pipeline does."""

from __future__ import annotations

import torch

from audiotoken_core.embedder.meta import CLIP_L, T5XXL, host_heads

from ..inject import tokens_written
from .flow import FlowFamily, load_pipeline, pack_2x2, unpack_2x2

PIPELINES = ("FluxPipeline",)
T5_LENGTH = 512  # the pipeline's max_sequence_length


class Flux(FlowFamily):
    kind = "flux"
    host_keys = (CLIP_L, T5XXL)
    heads = host_heads(*host_keys)
    encoder_names = ("text_encoder", "text_encoder_2")
    tokenizer_names = ("tokenizer", "tokenizer_2")

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        clip_len = int(self.pipe.tokenizer_max_length)
        return self.marked_ids(prompt, batch, n_tokens, device, (clip_len, T5_LENGTH))

    def encode(self, inputs, tokens):
        (clip_ids, clip_marks), (t5_ids, t5_marks) = inputs
        (clip, t5), (clip_head, t5_head) = self.text_encoders, self.heads
        with tokens_written(clip, clip_marks, None if tokens is None else tokens[clip_head]):
            pooled = clip(clip_ids, output_hidden_states=False).pooler_output
        with tokens_written(t5, t5_marks, None if tokens is None else tokens[t5_head]):
            hidden = t5(t5_ids, output_hidden_states=False)[0]
        return {"prompt_embeds": hidden, "pooled_prompt_embeds": pooled}

    def predict(self, noisy, timesteps, cond, dtype):
        b, _, h, w = noisy.shape
        transformer = self.denoiser
        hidden = cond["prompt_embeds"]
        img_ids = self.pipe._prepare_latent_image_ids(b, h // 2, w // 2, noisy.device, dtype)
        txt_ids = torch.zeros(hidden.shape[1], 3, device=noisy.device, dtype=dtype)
        guidance = None
        if transformer.config.guidance_embeds:
            guidance = torch.full((b,), self.train_guidance, device=noisy.device, dtype=torch.float32)
        out = transformer(hidden_states=pack_2x2(noisy).to(dtype), timestep=timesteps / 1000, guidance=guidance,
                          pooled_projections=cond["pooled_prompt_embeds"].to(dtype),
                          encoder_hidden_states=hidden.to(dtype), txt_ids=txt_ids, img_ids=img_ids,
                          return_dict=False)[0]
        return unpack_2x2(out, h, w)

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        # dev is guidance-distilled: the guidance goes into the embedding, no unconditional branch
        return dict(prompt_embeds=cond["prompt_embeds"].to(dtype),
                    pooled_prompt_embeds=cond["pooled_prompt_embeds"].to(dtype), guidance_scale=guidance)

    def unpack(self, latents, h, w):
        return unpack_2x2(latents, h, w)


def load(path, dtype=None, config=None) -> Flux:
    from diffusers import FluxPipeline

    return Flux(load_pipeline(FluxPipeline, path, dtype), str(path)).freeze()
