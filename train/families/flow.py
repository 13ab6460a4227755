"""What the flow-matching transformer families share (Flux.1, SD3.5, Qwen-Image, Z-Image).

The objective is diffusers' training examples' (train_dreambooth_lora_flux / _sd3 / _qwen_image): a timestep
index drawn by the family's weighting scheme (uniform, logit-normal or mode) into the scheduler's own training
sigmas (so a static `shift`, SD3's 3.0, applies; families with dynamic shifting train unshifted, as there),
`noisy = (1 - sigma) * latents + sigma * noise`, and the velocity target `noise - latents`; cosmap and
sigma_sqrt weight the loss per sample. Latents are the VAE's `(z - shift_factor) * scaling_factor`.

A family subclasses `FlowFamily`, naming its host keys (its heads, in encoder order, unless it picks them by
width) and text encoders and writing `prompt_inputs`, `encode`, `predict`, and `sample_kwargs(cond, uncond,
guidance, dtype)`, the pipeline keyword arguments of `sample`; its file's `load` is `load_pipeline` + the class.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import torch

from ..inject import count_for, tokenize_marked
from .interface import Family

log = logging.getLogger("train.models")

WEIGHTING_SCHEMES = ("none", "logit_normal", "mode", "cosmap", "sigma_sqrt")


def sample_density(scheme: str, batch: int, gen: torch.Generator, logit_mean: float = 0.0, logit_std: float = 1.0,
                   mode_scale: float = 1.29) -> torch.Tensor:
    """`u` in [0, 1] per sample, as diffusers' `compute_density_for_timestep_sampling`, drawn from `gen`."""
    if scheme == "logit_normal":
        return torch.sigmoid(torch.randn(batch, generator=gen) * logit_std + logit_mean)
    u = torch.rand(batch, generator=gen)
    if scheme == "mode":
        return 1 - u - mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
    return u


def loss_weighting(scheme: str, sigmas: torch.Tensor) -> torch.Tensor | None:
    """diffusers' `compute_loss_weighting_for_sd3`; None where every sample weighs the same."""
    if scheme == "sigma_sqrt":
        return (sigmas**-2.0).float()
    if scheme == "cosmap":
        bot = 1 - 2 * sigmas + 2 * sigmas**2
        return 2 / (math.pi * bot)
    return None


class FlowFamily(Family):
    """A diffusers flow-matching pipeline, its parts frozen, behind the family interface."""

    kind = ""
    weighting = "none"  # the family's training example default
    prediction_type = "flow"
    heads: tuple[str, ...] = ()
    encoder_names: tuple[str, ...] = ()  # pipeline attributes of the text encoders, in `heads` order
    tokenizer_names: tuple[str, ...] = ()

    def __init__(self, pipe, source: str):
        self.pipe, self.source = pipe, source
        pipe.set_progress_bar_config(disable=True)
        self.scheduler = pipe.scheduler
        # sampling sets timesteps on the pipeline's scheduler; training reads the untouched training table
        self.train_scheduler = copy.deepcopy(pipe.scheduler)
        self.train_guidance = 3.5  # Flux's distilled guidance during training (diffusers' example default)
        self.logit_mean, self.logit_std, self.mode_scale = 0.0, 1.0, 1.29

    def configure(self, config) -> None:
        """The run's timestep sampling and Flux guidance (TrainConfig); unset ones keep the family's."""
        self.weighting = config.weighting_scheme or type(self).weighting
        self.train_guidance = config.train_guidance
        self.logit_mean, self.logit_std, self.mode_scale = config.logit_mean, config.logit_std, config.mode_scale

    # ---- parts
    @property
    def tokenizers(self) -> list:
        return [getattr(self.pipe, n) for n in self.tokenizer_names]

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        return [getattr(self.pipe, n) for n in self.encoder_names]

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.pipe.transformer

    @property
    def widths(self) -> dict[str, int]:
        return {h: int(te.get_input_embeddings().weight.shape[1]) for h, te in zip(self.heads, self.text_encoders)}

    # ---- the objective
    def check_size(self, latents: torch.Tensor) -> None:
        if latents.shape[-1] % 2 or latents.shape[-2] % 2:  # every flow transformer here takes 2x2 latent patches
            f = self.vae_downsample
            raise ValueError(f"frames of {latents.shape[-1] * f}x{latents.shape[-2] * f} do not fit {self.kind}'s "
                             f"2x2 latent patches: --frame-size sides must be multiples of {2 * f}")

    def latents(self, mean: torch.Tensor, std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        self.check_size(mean)
        cfg = self.vae.config
        z = mean.float() + std.float() * eps
        return (z - float(getattr(cfg, "shift_factor", 0.0) or 0.0)) * float(cfg.scaling_factor)

    def noisy_input(self, latents: torch.Tensor, gen: torch.Generator):
        sched, bsz = self.train_scheduler, latents.shape[0]
        noise = torch.randn(latents.shape, generator=gen).to(latents.device)
        u = sample_density(self.weighting, bsz, gen, self.logit_mean, self.logit_std, self.mode_scale)
        n = int(sched.config.num_train_timesteps)
        index = (u * n).long().clamp(0, n - 1)
        sigmas = sched.sigmas[index].to(latents.device, torch.float32)
        timesteps = sched.timesteps[index].to(latents.device, torch.float32)
        s = sigmas.view(-1, *([1] * (latents.dim() - 1)))
        noisy = (1.0 - s) * latents + s * noise
        weighting = loss_weighting(self.weighting, s)
        return noisy, timesteps, noise - latents, weighting

    def marked_ids(self, prompt: str, batch: int, n_tokens, device, lengths) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`(ids, marks)` per tokenizer and head, each padded to its length as the pipeline pads (CLIP, T5)."""
        out = []
        for tok, head, length in zip(self.tokenizers, self.heads, lengths):
            ids, _, marks = tokenize_marked(tok, prompt, count_for(n_tokens, head), padding="max_length",
                                            max_length=length, truncation=True)
            out.append((ids.expand(batch, -1).to(device), marks.expand(batch, -1).to(device)))
        return out

    def chat_inputs(self, prompt: str, batch: int, n_tokens, device, max_length: int, **template) -> list[torch.Tensor]:
        """`[ids, mask, marks]` of the user turn in the tokenizer's chat template (the Qwen3 encoders), padded to
        `max_length` as the pipeline pads, the placeholders marked for the first head."""
        tok = self.pipe.tokenizer
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                       add_generation_prompt=True, **template)
        ids, mask, marks = tokenize_marked(tok, text, count_for(n_tokens, self.heads[0]), padding="max_length",
                                           truncation=True, max_length=max_length)
        return [t.expand(batch, -1).to(device) for t in (ids, mask, marks)]

    # ---- drawing
    @property
    def default_size(self) -> tuple[int, int]:
        side = int(getattr(self.pipe, "default_sample_size", 64)) * self.vae_downsample
        return side, side

    def pipeline(self, scheduler=None):
        if scheduler is not None:
            self.pipe.scheduler = scheduler
        return self.pipe

    def sample(self, pipe, cond, uncond, generator, steps, guidance, height, width, dtype) -> torch.Tensor:
        kwargs = self.sample_kwargs(cond, uncond, guidance, dtype)
        out = pipe(generator=generator, output_type="latent", num_inference_steps=steps, height=height, width=width,
                   **kwargs).images
        return self.unpack(out, height // self.vae_downsample, width // self.vae_downsample)

    def unpack(self, latents: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The pipeline's `output_type="latent"` result as `[B, C, h, w]`."""
        return latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        cfg, dtype = self.vae.config, next(self.vae.parameters()).dtype
        z = latents.float() / float(cfg.scaling_factor) + float(getattr(cfg, "shift_factor", 0.0) or 0.0)
        return self.vae.decode(z.to(self.vae.device, dtype)).sample


def load_pipeline(cls, folder: str | Path, dtype: torch.dtype | None = None):
    """The pipeline's parts in `dtype` (default float32), the VAE in float32 (the cache encodes in it)."""
    if Path(folder).is_file():
        raise ValueError(f"{folder} is a single file; {cls.__name__} loads from a diffusers folder (single-file "
                         "checkpoints are read for the UNet families only)")
    kwargs = {}
    if dtype is not None and dtype != torch.float32:
        kwargs["dtype"] = {"default": dtype, "vae": torch.float32}
    return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)


def pack_2x2(latents: torch.Tensor) -> torch.Tensor:
    """`[B, C, H, W]` -> `[B, H/2 * W/2, 4C]`: Flux's and Qwen-Image's 2x2 patches as a sequence."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_2x2(seq: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of `pack_2x2` for latents of `h x w`."""
    b, _, c4 = seq.shape
    x = seq.view(b, h // 2, w // 2, c4 // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c4 // 4, h, w)
