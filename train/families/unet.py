"""The UNet families (epsilon / v prediction): SD1.x and SD2.x (one CLIP text encoder), SDXL (two: heads `l`, `g`).

A diffusers folder or a single-file checkpoint plus a local config. The Embedder's token width per head is read
from each encoder's `config.hidden_size`, never from a model name. The objective is DDPM's: noise added at a
uniformly drawn timestep, the target epsilon or v as the scheduler says. The prompt is encoded as the pipelines
do: SD1/SD2 the last hidden state of their one CLIP, SDXL the penultimate layers of both side by side and the
second's pooled vector, each with the audio tokens written into the input embeddings at the placeholder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from audiotoken_core.embedder.meta import CLIP_G, CLIP_H, CLIP_L, HOST_KEY_WIDTHS, host_heads

from ..inject import count_for, tokenize_with_placeholder, tokens_written
from ..losses import diffusion_target
from .interface import Family

log = logging.getLogger("train.models")

PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")


@dataclass
class BaseModel(Family):
    kind: str  # "sd1" | "sd2" | "sdxl"
    tokenizers: list
    text_encoders: list
    heads: list[str]  # Embedder head name per text encoder, same order
    unet: torch.nn.Module
    vae: torch.nn.Module
    noise_scheduler: object  # DDPM, for training
    scheduler: object  # the folder's own scheduler, for sampling
    source: str

    host_keys = (CLIP_L, CLIP_H, CLIP_G)
    supports_lora = True  # train/lora.py's layout is the UNet's
    supports_compile = True

    @property
    def widths(self) -> dict[str, int]:
        return {h: int(te.config.hidden_size) for h, te in zip(self.heads, self.text_encoders)}

    @property
    def prediction_type(self) -> str:
        return self.noise_scheduler.config.prediction_type

    @property
    def is_sdxl(self) -> bool:
        return self.kind == "sdxl"

    @property
    def latent_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))

    # ---- the family interface (train/families/interface.py)
    def configure(self, config) -> None:
        """DDPM's recipe has no settings beyond the scheduler's."""

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    @denoiser.setter
    def denoiser(self, module: torch.nn.Module) -> None:
        self.unet = module

    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int],
                      device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`(ids, marks)` per tokenizer and head, padded to the tokenizer's length as the pipelines pad."""
        out = []
        for tok, head in zip(self.tokenizers, self.heads):
            ids, marks = tokenize_with_placeholder(tok, prompt, count_for(n_tokens, head))
            out.append((ids.expand(batch, -1).to(device), marks.expand(batch, -1).to(device)))
        return out

    def encode(self, inputs, tokens: dict[str, torch.Tensor] | None):
        """`(hidden[B, L, D_total], pooled[B, P] or None)`; `tokens` keyed by head (None: plain text)."""
        hiddens, pooled = [], None
        sdxl = self.is_sdxl
        for (ids, marks), encoder, head in zip(inputs, self.text_encoders, self.heads):
            tok = None if tokens is None else tokens[head]
            with tokens_written(encoder, marks, tok):
                out = encoder(ids, output_hidden_states=sdxl)
            if sdxl:
                # SDXL conditions on the penultimate layer of both encoders; pooled from the second
                hiddens.append(out.hidden_states[-2])
                if hasattr(out, "text_embeds"):
                    pooled = out.text_embeds
            else:
                hiddens.append(out.last_hidden_state)
        hidden = hiddens[0] if len(hiddens) == 1 else torch.cat(hiddens, dim=-1)
        return hidden, pooled

    def latents(self, mean: torch.Tensor, std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (mean.float() + std.float() * eps) * self.latent_scale

    def noisy_input(self, latents: torch.Tensor, gen: torch.Generator):
        sched = self.noise_scheduler
        noise = torch.randn(latents.shape, generator=gen).to(latents.device)
        timesteps = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), generator=gen)
        timesteps = timesteps.to(latents.device)
        return (sched.add_noise(latents, noise, timesteps), timesteps,
                diffusion_target(sched, latents, noise, timesteps), None)

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond, dtype: torch.dtype) -> torch.Tensor:
        hidden, pooled = cond
        kwargs = {}
        if self.is_sdxl:
            h, w = noisy.shape[-2] * self.vae_downsample, noisy.shape[-1] * self.vae_downsample
            time_ids = torch.tensor([[h, w, 0, 0, h, w]], device=noisy.device, dtype=hidden.dtype)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids.repeat(noisy.shape[0], 1)}
        return self.unet(noisy.to(dtype), timesteps, hidden.to(dtype), **kwargs).sample

    @property
    def default_size(self) -> tuple[int, int]:
        side = self.unet.config.sample_size * self.vae_downsample
        return side, side

    def pipeline(self, scheduler=None):
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        scheduler = scheduler or self.scheduler
        if self.is_sdxl:
            pipe = StableDiffusionXLPipeline(
                vae=self.vae, text_encoder=self.text_encoders[0], text_encoder_2=self.text_encoders[1],
                tokenizer=self.tokenizers[0], tokenizer_2=self.tokenizers[1], unet=self.unet, scheduler=scheduler)
        else:
            pipe = StableDiffusionPipeline(
                vae=self.vae, text_encoder=self.text_encoders[0], tokenizer=self.tokenizers[0], unet=self.unet,
                scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def sample(self, pipe, cond, uncond, generator, steps, guidance, height, width, dtype) -> torch.Tensor:
        (hidden, pooled), (u_hidden, u_pooled) = cond, uncond
        kwargs = dict(prompt_embeds=hidden.to(dtype), negative_prompt_embeds=u_hidden.to(dtype),
                      num_inference_steps=steps, guidance_scale=guidance, height=height, width=width)
        if self.is_sdxl:
            kwargs.update(pooled_prompt_embeds=pooled.to(dtype), negative_pooled_prompt_embeds=u_pooled.to(dtype))
        return pipe(generator=generator, output_type="latent", **kwargs).images

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], decoded in the VAE's own dtype (the pipelines assume it is the UNet's, which is
        not so during training (fp32 VAE, bf16 UNet) or for an upcast SDXL VAE)."""
        dtype = next(self.vae.parameters()).dtype
        return self.vae.decode(latents.to(self.vae.device, dtype) / self.latent_scale).sample


def load(path: str | Path, dtype: torch.dtype | None = None, config: str | Path | None = None) -> BaseModel:
    """A diffusers folder, or a single-file checkpoint with its config folder `config`; all frozen components on
    CPU in float32 whatever `dtype` (the step casts them; a UNet model is small), frozen; call `.to()` afterwards."""
    from diffusers import DDPMScheduler

    path = Path(path)
    parts = _load_single_file(path, Path(config)) if path.is_file() else _load_folder(path)
    noise_scheduler = DDPMScheduler.from_config(parts["scheduler"].config)
    encoders = [parts["text_encoder"]] + ([parts["text_encoder_2"]] if parts.get("text_encoder_2") else [])
    tokenizers = [parts["tokenizer"]] + ([parts["tokenizer_2"]] if parts.get("text_encoder_2") else [])
    if len(encoders) == 2:
        kind, heads = "sdxl", list(host_heads(CLIP_L, CLIP_G))
    else:
        width = int(encoders[0].config.hidden_size)
        sd2 = noise_scheduler.config.prediction_type == "v_prediction" or width == HOST_KEY_WIDTHS[CLIP_H]
        kind = "sd2" if sd2 else "sd1"
        heads = [BaseModel.head_for(width, CLIP_H if sd2 else CLIP_L)]
    model = BaseModel(kind=kind, tokenizers=tokenizers, text_encoders=encoders, heads=heads, unet=parts["unet"],
                      vae=parts["vae"], noise_scheduler=noise_scheduler, scheduler=parts["scheduler"], source=str(path))
    log.info("base model %s: %s, token widths %s, %s prediction", path, kind, model.widths, model.prediction_type)
    return model.freeze()


def _load_folder(folder: Path) -> dict:
    import json

    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    index = json.loads((folder / "model_index.json").read_text())
    kw = dict(local_files_only=True)
    sched_cls = getattr(diffusers, index.get("scheduler", [None, "DDPMScheduler"])[1], diffusers.DDPMScheduler)
    parts = {
        "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **kw),
        "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae", **kw),
        "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **kw),
        "tokenizer": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **kw),
        "scheduler": sched_cls.from_pretrained(folder, subfolder="scheduler", **kw),
    }
    if index.get("text_encoder_2") and index["text_encoder_2"][0] is not None:
        parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2", **kw)
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer_2", **kw)
    return parts


def _load_single_file(path: Path, config: Path) -> dict:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if (config / "text_encoder_2").is_dir() else StableDiffusionPipeline
    kwargs = dict(config=str(config), local_files_only=True)
    if cls is StableDiffusionPipeline:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # diffusers raises many types here; the user needs the file names
        raise ValueError(f"cannot load single-file checkpoint {path} with config folder {config}: {exc}") from exc
    return {k: v for k, v in pipe.components.items() if v is not None}
