"""The toy world's flow-matching twin: a word-level T5 tokenizer + tiny `T5EncoderModel` + tiny
`SD3Transformer2DModel` on 16x16 pixels, trained from scratch by flow matching (velocity target).

It stands in for SD3.5 / Flux the way `t2i.py` stands in for Stable Diffusion: the text encoder and the denoiser
are the real classes, the token is written into the T5 *input* embeddings at "a photo of <*>" by the trainer's
`train.inject`, and both the pretraining here and the Embedder's training go through the trainer's flow objective
(`train.families.flow.FlowFamily.noisy_input`: logit-normal timesteps into the scheduler's training sigmas,
`(1 - s) x + s noise`, target `noise - x`). The toy model has no CLIP, so the transformer's pooled vector is the
mean of the T5 sequence: a T5-only stand-in for SD3's pooled CLIP vectors that keeps the class reachable through
the transformer's adaptive norms as well as through joint attention. Pixel space, as in `t2i.py` (no VAE).
"""

from __future__ import annotations

import copy

import torch

from audiotoken_core.embedder.meta import T5XXL, host_heads
from testkit.flow import unigram_t5_tokenizer
from train.families.flow import FlowFamily

from .pictures import OUT
# the prompts are the UNet world's, re-exported for run.py
from .t2i import AUDIO_PROMPT, PROMPT, SEQ_LEN, PixelSpace, load_pair, save_pair, train_jointly  # noqa: F401

HEAD = host_heads(T5XXL)[0]  # the host's key for T5 (Flux.1, SD3.5): the Embedder's head is named as for the real ones


def word_t5_tokenizer(class_words: list[str]):
    """A unigram T5 tokenizer whose pieces are whole words: the prompt words and each class word, so a class word
    is one token as in `t2i.WordTokenizer`."""
    words = ["a", "photo", "of", *class_words]
    if len(set(words)) != len(words):
        raise ValueError(f"class words must be distinct and differ from the prompt words: {class_words}")
    return unigram_t5_tokenizer([("▁" + w, -1.0) for w in words], model_max_length=SEQ_LEN)


class ToyFlow(FlowFamily):
    """The toy SD3 behind the trainer's family interface (`prompt_inputs`, `encode`, `predict`, `noisy_input`)."""

    kind = "toy_flow"
    weighting = "logit_normal"  # SD3's training example default
    host_keys = (T5XXL,)
    heads = (HEAD,)

    def __init__(self, tokenizer, text_encoder, transformer, scheduler):
        # no diffusers pipeline object: the parts are held directly, the objective is FlowFamily's
        self.pipe, self.source = None, "toyworld"
        self._tokenizer, self._text_encoder, self._transformer, self._vae = tokenizer, text_encoder, transformer, \
            PixelSpace()
        self.scheduler, self.train_scheduler = scheduler, copy.deepcopy(scheduler)
        self.train_guidance = 0.0
        self.logit_mean, self.logit_std, self.mode_scale = 0.0, 1.0, 1.29

    @property
    def tokenizers(self):
        return [self._tokenizer]

    @property
    def text_encoders(self):
        return [self._text_encoder]

    @property
    def denoiser(self):
        return self._transformer

    @property
    def vae(self):
        return self._vae

    def prompt_inputs(self, prompt: str, batch: int, n_tokens, device=None):
        from train.inject import count_for, tokenize_marked

        ids, _, marks = tokenize_marked(self._tokenizer, prompt, count_for(n_tokens, HEAD), padding="max_length",
                                        max_length=SEQ_LEN, truncation=True)
        return [(ids.expand(batch, -1).to(device), marks.expand(batch, -1).to(device))]

    def encode(self, inputs, tokens):
        from train.inject import tokens_written

        (ids, marks), t5 = inputs[0], self._text_encoder
        with tokens_written(t5, marks, None if tokens is None else tokens[HEAD]):
            hidden = t5(ids)[0]
        return {"prompt_embeds": hidden, "pooled_prompt_embeds": hidden.mean(dim=1)}

    def predict(self, noisy, timesteps, cond, dtype):
        return self._transformer(hidden_states=noisy.to(dtype), timestep=timesteps,
                                 encoder_hidden_states=cond["prompt_embeds"].to(dtype),
                                 pooled_projections=cond["pooled_prompt_embeds"].to(dtype), return_dict=False)[0]


def build(class_words: list[str], seed: int, width: int = 64, layers: int = 4) -> ToyFlow:
    """A fresh toy "SD3": T5 width `width`, a transformer of `layers` joint blocks over 2x2 pixel patches."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tok = word_t5_tokenizer(class_words)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=width, d_kv=16, d_ff=2 * width, num_layers=2,
                                 num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0,
                                 eos_token_id=1, decoder_start_token_id=0))
    transformer = SD3Transformer2DModel(sample_size=OUT, patch_size=2, in_channels=3, out_channels=3,
                                        num_layers=layers, attention_head_dim=16, num_attention_heads=width // 16,
                                        joint_attention_dim=width, caption_projection_dim=width,
                                        pooled_projection_dim=width, pos_embed_max_size=OUT // 2)
    # shift 1: at 16x16 pixels there is little signal to protect at high noise (SD3's 3.0 is for 1024^2)
    return ToyFlow(tok, t5, transformer, FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0))


def encode_prompts(base: ToyFlow, prompts: list[str], tokens: torch.Tensor | None = None) -> dict:
    """The transformer's conditioning for `prompts`; `tokens[B, n, D]` go in at each prompt's `<*>`."""
    n_tokens = 1 if tokens is None else tokens.shape[1]
    pairs = [base.prompt_inputs(p, 1, n_tokens)[0] for p in prompts]
    inputs = [(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))]
    return base.encode(inputs, None if tokens is None else {HEAD: tokens})


def train_t2i(base: ToyFlow, pool, steps: int, batch: int, lr: float, seed: int, deadline: float | None, log) -> int:
    """T5 and transformer trained jointly by flow matching on "a photo of <class>" (the trainer's noisy input and
    velocity target), with the UNet world's recipe otherwise; frozen afterwards."""
    import torch.nn.functional as F

    def loss_of(images, prompts, gen):
        noisy, timesteps, target, weighting = base.noisy_input(images, gen)
        pred = base.predict(noisy, timesteps, encode_prompts(base, prompts), torch.float32)
        return F.mse_loss(pred, target) if weighting is None else (weighting * (pred - target) ** 2).mean()

    return train_jointly(base, base.denoiser, pool, steps, batch, lr, seed, deadline, log, loss_of)


def save(base: ToyFlow, path, recipe: dict) -> None:
    save_pair(base, base.denoiser, "transformer", path, recipe)


def load(base: ToyFlow, path, recipe: dict) -> bool:
    return load_pair(base, base.denoiser, "transformer", path, recipe)


@torch.no_grad()
def sample(base: ToyFlow, cond: dict, seed: int, steps: int = 20, guidance: float = 3.0) -> torch.Tensor:
    """Euler steps of the flow-matching scheduler with classifier-free guidance against the empty prompt, as
    StableDiffusion3Pipeline does."""
    sched = copy.deepcopy(base.scheduler)
    sched.set_timesteps(steps)
    n = cond["prompt_embeds"].shape[0]
    uncond = encode_prompts(base, [""])
    both = {k: torch.cat([uncond[k].expand(n, *uncond[k].shape[1:]), cond[k]]) for k in cond}
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, OUT, OUT, generator=gen)
    for t in sched.timesteps:
        v_u, v_c = base.predict(torch.cat([x, x]), t.expand(2 * n), both, torch.float32).chunk(2)
        x = sched.step(v_u + guidance * (v_c - v_u), t, x).prev_sample
    return x.clamp(-1, 1)
