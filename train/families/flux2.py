"""Flux.2 dev (Flux2Pipeline): Klein's transformer, VAE and latents (2x2 patches normalised by the VAE's batch-norm
statistics), with Mistral Small 3's hidden layers 10, 20 and 30 side by side as the text conditioning, over the
processor's chat template with the pipeline's system message, 512 positions padded as its tokenizer pads (left in
Mistral's). Head `mistral3_24b` (5120 wide), ComfyUI's key for the same encoder. Guidance-distilled: the guidance
scale goes into the transformer, and there is no negative prompt."""

from __future__ import annotations

from audiotoken_core.embedder.meta import MISTRAL3_24B

from ..inject import count_for, tokenize_marked
from .flow import load_pipeline
from .flux2_klein import MAX_LENGTH, Flux2Klein

PIPELINES = ("Flux2Pipeline",)
LAYERS = (10, 20, 30)  # the pipeline's text_encoder_out_layers


class Flux2(Flux2Klein):
    kind = "flux2"
    host_keys = (MISTRAL3_24B,)
    layers = LAYERS

    @property
    def tokenizers(self) -> list:
        return [self.pipe.tokenizer.tokenizer]  # the processor's text tokenizer: its image half never runs

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        from diffusers.pipelines.flux2.pipeline_flux2 import format_input

        messages = format_input(prompts=[prompt], system_message=self.pipe.system_message)
        text = self.pipe.tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)[0]
        # the processor tokenizes its template's text without adding special tokens (the template has them)
        ids, mask, marks = tokenize_marked(self.tokenizers[0], text, count_for(n_tokens, self.heads[0]),
                                           padding="max_length", truncation=True, max_length=MAX_LENGTH,
                                           add_special_tokens=False)
        return [t.expand(batch, -1).to(device) for t in (ids, mask, marks)]

    def sample_kwargs(self, cond, uncond, guidance, dtype):
        return dict(prompt_embeds=cond["prompt_embeds"].to(dtype), guidance_scale=guidance)

    def unpack(self, latents, h, w):
        # unlike klein's, this pipeline's latent output is the transformer's packed sequence, row by row
        b, _, c = latents.shape
        return latents.permute(0, 2, 1).reshape(b, c, h // 2, w // 2)


def load(path, dtype=None, config=None) -> Flux2:
    from diffusers import Flux2Pipeline

    return Flux2(load_pipeline(Flux2Pipeline, path, dtype), str(path)).freeze()
