"""The toy world's "pretrained" text-to-image model: word tokenizer + tiny CLIPTextModel + tiny 16x16 pixel UNet.

It stands in for Stable Diffusion: the text encoder is a real `transformers.CLIPTextModel` and the denoiser a
real `diffusers.UNet2DConditionModel`, so the AudioToken recipe (a token written into the CLIP *input*
embeddings, gradients through both frozen networks) runs against the same classes as on the real model.
Pixel space (no VAE) keeps a CPU able to train it from scratch in minutes.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
import torch
import torch.nn.functional as F

from .pictures import OUT

PROMPT = "a photo of {}"
AUDIO_PROMPT = "a photo of <*>"
SEQ_LEN = 8  # <bos> a photo of <word> <eos> + padding; the real model pads to 77


class WordTokenizer:
    """Whole-word vocabulary (the prompt words and each class word) behind the slice of the
    `CLIPTokenizer` interface that `train.inject` uses; the placeholder never needs an id of its own."""

    model_max_length = SEQ_LEN

    def __init__(self, class_words: list[str]):
        words = ["a", "photo", "of", *class_words]
        if len(set(words)) != len(words):
            raise ValueError(f"class words must be distinct and differ from the prompt words: {class_words}")
        self.bos_token_id, self.eos_token_id = 0, 1
        self.pad_token_id = 1  # CLIP pads with its end token
        self.vocab = {w: i + 2 for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.vocab) + 2

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        words = text.split()
        unknown = [w for w in words if w not in self.vocab]
        if unknown:
            raise ValueError(f"words {unknown} are not in the toy vocabulary")
        ids = [self.vocab[w] for w in words]
        if add_special_tokens:
            ids = [self.bos_token_id, *ids, self.eos_token_id]
        return {"input_ids": ids}


class PixelSpace(torch.nn.Module):
    """The identity autoencoder: the toy model diffuses pictures directly, so a "latent" is the picture.

    It fills the VAE slot of `train.families.unet.BaseModel` with scale 1 and no downsampling, so the trainer's
    latent arithmetic `(mean + std * eps) * scale` reduces to the picture itself when std is 0.
    """

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(scaling_factor=1.0, block_out_channels=(3,))

    def encode(self, pixels: torch.Tensor):
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=pixels, std=torch.zeros_like(pixels)))


def build(class_words: list[str], seed: int, width: int = 64):
    """A fresh toy "Stable Diffusion 1" as a `train.families.unet.BaseModel` (head `l`, epsilon prediction)."""
    from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from train.families.unet import BaseModel

    torch.manual_seed(seed)
    tok = WordTokenizer(class_words)
    text_cfg = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=SEQ_LEN,
        projection_dim=width,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_cfg)
    # cross-attention at 8x8 only: the class decides colour and shape, not pixel detail, and attention at
    # 16x16 would double the cost of a step
    unet = UNet2DConditionModel(
        sample_size=OUT,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=width,
        attention_head_dim=16,
        norm_num_groups=8,
    )
    noise = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    return BaseModel(
        kind="sd1",
        tokenizers=[tok],
        text_encoders=[text_encoder],
        heads=["l"],
        unet=unet,
        vae=PixelSpace(),
        noise_scheduler=noise,
        scheduler=DDIMScheduler.from_config(noise.config),
        source="toyworld",
    )


def encode_prompts(base, prompts: list[str], tokens: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP hidden states for `prompts`; `tokens[B, n, D]` go in at each prompt's `<*>` (trainer's code path)."""
    from train.inject import tokenize_with_placeholder, tokens_written

    n_tokens = 1 if tokens is None else tokens.shape[1]
    pairs = [tokenize_with_placeholder(base.tokenizers[0], p, n_tokens) for p in prompts]
    ids = torch.stack([p[0] for p in pairs])
    marks = torch.stack([p[1] for p in pairs])
    encoder = base.text_encoders[0]
    with tokens_written(encoder, marks, tokens):
        return encoder(ids).last_hidden_state


def train_t2i(base, pool, steps: int, batch: int, lr: float, seed: int, deadline: float | None, log) -> int:
    """Text encoder and UNet trained jointly on "a photo of <class>" (ε-prediction MSE at uniform DDPM
    timesteps), 10% empty prompts so classifier-free guidance works later; frozen afterwards."""
    sched, unet = base.noise_scheduler, base.denoiser

    def loss_of(images, prompts, gen):
        noise = torch.randn(images.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (images.shape[0],), generator=gen)
        pred = unet(sched.add_noise(images, noise, t), t, encoder_hidden_states=encode_prompts(base, prompts)).sample
        return F.mse_loss(pred, noise)

    return train_jointly(base, unet, pool, steps, batch, lr, seed, deadline, log, loss_of)


def train_jointly(base, net, pool, steps: int, batch: int, lr: float, seed: int, deadline: float | None, log,
                  loss_of) -> int:
    """The toy T2I recipe of both worlds: the text encoder and `net` trained together from scratch on
    "a photo of <class>" with 10% empty prompts (for classifier-free guidance), AdamW with a 100-step warm-up,
    `loss_of(images, prompts, gen)` the denoiser's objective; frozen afterwards. Returns the steps done."""
    gen = torch.Generator().manual_seed(seed + 1)
    torch.manual_seed(seed + 1)
    names, encoder = pool.names, base.text_encoders[0]
    params = list(encoder.parameters()) + list(net.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    encoder.train()
    net.train()
    start, done, avg = time.monotonic(), 0, None
    for step in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            log(f"  t2i: time budget reached after {step} of {steps} steps")
            break
        kinds, images = pool.sample(batch, gen)
        drop = torch.rand(batch, generator=gen) < 0.1
        prompts = ["" if d else PROMPT.format(names[k]) for k, d in zip(kinds.tolist(), drop.tolist())]
        loss = loss_of(images, prompts, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        warmup.step()
        done = step + 1
        avg = loss.item() if avg is None else 0.97 * avg + 0.03 * loss.item()
        if done % 100 == 0 or done == steps:
            log(f"  t2i step {done}/{steps}  loss {avg:.4f}  ({time.monotonic() - start:.0f} s)")
    base.freeze()
    return done


def save(base, path, recipe: dict) -> None:
    save_pair(base, base.denoiser, "unet", path, recipe)


def load(base, path, recipe: dict) -> bool:
    return load_pair(base, base.denoiser, "unet", path, recipe)


def save_pair(base, net, key: str, path, recipe: dict) -> None:
    """Both worlds' toy model file: the recipe, the text encoder and the denoiser under `key`."""
    torch.save({"recipe": recipe, "text_encoder": base.text_encoders[0].state_dict(), key: net.state_dict()}, path)


def load_pair(base, net, key: str, path, recipe: dict) -> bool:
    """Load a toy model saved by an earlier run with the same recipe; False when there is none that fits."""
    from pathlib import Path

    if not Path(path).is_file():
        return False
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("recipe") != recipe:
        return False
    base.text_encoders[0].load_state_dict(state["text_encoder"])
    net.load_state_dict(state[key])
    base.freeze()
    return True


@torch.no_grad()
def sample(base, cond: torch.Tensor, seed: int, steps: int = 25, guidance: float = 3.0) -> torch.Tensor:
    """DDIM with classifier-free guidance against the empty prompt, as StableDiffusionPipeline does."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(base.scheduler.config)
    sched.set_timesteps(steps)
    uncond = encode_prompts(base, [""]).expand(cond.shape[0], -1, -1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cond.shape[0], 3, OUT, OUT, generator=gen)
    both = torch.cat([uncond, cond])
    for t in sched.timesteps:
        eps_u, eps_c = base.denoiser(torch.cat([x, x]), t, encoder_hidden_states=both).sample.chunk(2)
        x = sched.step(eps_u + guidance * (eps_c - eps_u), t, x).prev_sample
    return x.clamp(-1, 1)
