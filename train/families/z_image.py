"""Z-Image (ZImagePipeline): Qwen3's second-to-last hidden layer over the tokenizer's chat template, the valid
positions only, one variable-length sequence per image. Head `qwen3_4b`. The transformer takes lists of
`[C, 1, H, W]` latents and the time `1 - sigma`, and predicts `latents - noise`, so its output is negated to the
velocity, as the pipeline does."""

from __future__ import annotations

import torch

from audiotoken_core.embedder.meta import QWEN3_4B, host_heads

from ..inject import tokens_written
from .flow import FlowFamily, load_pipeline

PIPELINES = ("ZImagePipeline",)
MAX_LENGTH = 512  # the pipeline's max_sequence_length


class ZImage(FlowFamily):
    kind = "z_image"
    host_keys = (QWEN3_4B,)
    heads = host_heads(*host_keys)
    encoder_names = ("text_encoder",)
    tokenizer_names = ("tokenizer",)

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        # padded to 512 as the pipeline does: the unpadded text means the same to a causal encoder, but its
        # attention kernels round differently, and the token must condition exactly as at drawing time
        return self.chat_inputs(prompt, batch, n_tokens, device, MAX_LENGTH, enable_thinking=True)

    def encode(self, inputs, tokens):
        ids, mask, marks = inputs
        enc = self.text_encoders[0]
        with tokens_written(enc, marks, None if tokens is None else tokens[self.heads[0]]):
            hidden = enc(input_ids=ids, attention_mask=mask.bool(), output_hidden_states=True).hidden_states[-2]
        return {"prompt_embeds": [h[m] for h, m in zip(hidden, mask.bool())]}

    def predict(self, noisy, timesteps, cond, dtype):
        x = list(noisy.to(dtype).unsqueeze(2).unbind(0))
        caps = [c.to(dtype) for c in cond["prompt_embeds"]]
        out = self.denoiser(x, (1000 - timesteps) / 1000, caps, return_dict=False)[0]
        return -torch.stack([o.float() for o in out], dim=0).squeeze(2)

    @property
    def default_size(self):
        return 1024, 1024  # the pipeline's own default

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        return dict(prompt_embeds=[c.to(dtype) for c in cond["prompt_embeds"]],
                    negative_prompt_embeds=[c.to(dtype) for c in uncond["prompt_embeds"]], guidance_scale=guidance)


def load(path, dtype=None, config=None) -> ZImage:
    from diffusers import ZImagePipeline

    return ZImage(load_pipeline(ZImagePipeline, path, dtype), str(path)).freeze()
