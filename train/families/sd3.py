"""SD3 / SD3.5 (StableDiffusion3Pipeline): CLIP-L and CLIP-G (penultimate layers side by side, zero-padded to the
T5 width, then the T5-XXL sequence after them; pooled vectors of both CLIPs). Heads `l`, `g`, `t5xxl`. The
scheduler's static shift (3.0) is in its training sigmas; timesteps are logit-normal, as diffusers' example."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiotoken_core.embedder.meta import CLIP_G, CLIP_L, T5XXL, host_heads

from ..inject import tokens_written
from .flow import FlowFamily, load_pipeline

PIPELINES = ("StableDiffusion3Pipeline",)
T5_LENGTH = 256  # the pipeline's max_sequence_length


class SD3(FlowFamily):
    kind = "sd3"
    weighting = "logit_normal"
    host_keys = (CLIP_L, CLIP_G, T5XXL)
    heads = host_heads(*host_keys)
    encoder_names = ("text_encoder", "text_encoder_2", "text_encoder_3")
    tokenizer_names = ("tokenizer", "tokenizer_2", "tokenizer_3")

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        clip_len = int(self.pipe.tokenizer_max_length)
        return self.marked_ids(prompt, batch, n_tokens, device, (clip_len, clip_len, T5_LENGTH))

    def encode(self, inputs, tokens):
        clip_hidden, pooled = [], []
        for (ids, marks), enc, head in zip(inputs[:2], self.text_encoders[:2], self.heads[:2]):
            with tokens_written(enc, marks, None if tokens is None else tokens[head]):
                out = enc(ids, output_hidden_states=True)
            pooled.append(out[0])
            clip_hidden.append(out.hidden_states[-2])
        (ids, marks), t5 = inputs[2], self.text_encoders[2]
        with tokens_written(t5, marks, None if tokens is None else tokens[self.heads[2]]):
            t5_hidden = t5(ids)[0]
        clip = torch.cat(clip_hidden, dim=-1)
        clip = F.pad(clip, (0, t5_hidden.shape[-1] - clip.shape[-1]))
        return {"prompt_embeds": torch.cat([clip, t5_hidden], dim=-2),
                "pooled_prompt_embeds": torch.cat(pooled, dim=-1)}

    def predict(self, noisy, timesteps, cond, dtype):
        return self.denoiser(hidden_states=noisy.to(dtype), timestep=timesteps,
                             encoder_hidden_states=cond["prompt_embeds"].to(dtype),
                             pooled_projections=cond["pooled_prompt_embeds"].to(dtype), return_dict=False)[0]

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        return dict(prompt_embeds=cond["prompt_embeds"].to(dtype),
                    pooled_prompt_embeds=cond["pooled_prompt_embeds"].to(dtype),
                    negative_prompt_embeds=uncond["prompt_embeds"].to(dtype),
                    negative_pooled_prompt_embeds=uncond["pooled_prompt_embeds"].to(dtype), guidance_scale=guidance)

    @property
    def default_size(self):
        side = int(self.denoiser.config.sample_size) * self.vae_downsample
        return side, side


def load(path, dtype=None, config=None) -> SD3:
    from diffusers import StableDiffusion3Pipeline

    return SD3(load_pipeline(StableDiffusion3Pipeline, path, dtype), str(path)).freeze()
