"""The frozen base text-to-image model: a diffusers folder, or a single-file checkpoint plus a local config.

SD1.x / SD2.x have one CLIP text encoder; SDXL has two (heads `l` and `g`). The Embedder's token width
per head is read from each encoder's `config.hidden_size`, never from a model name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from audiotoken_core.embedder.meta import WIDTH_TO_CLIP

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


class MissingModelError(FileNotFoundError):
    """A model file is missing; the message names each file and where to get it."""


@dataclass
class BaseModel:
    kind: str  # "sd1" | "sd2" | "sdxl"
    tokenizers: list
    text_encoders: list
    heads: list[str]  # Embedder head name per text encoder, same order
    unet: torch.nn.Module
    vae: torch.nn.Module
    noise_scheduler: object  # DDPM, for training
    scheduler: object  # the folder's own scheduler, for sampling
    source: str

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

    @property
    def vae_downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def frozen_modules(self) -> list[torch.nn.Module]:
        return [*self.text_encoders, self.unet, self.vae]

    def freeze(self) -> "BaseModel":
        for module in self.frozen_modules():
            module.requires_grad_(False)
            module.eval()
        return self

    def to(self, device=None, dtype=None, vae_dtype=None) -> "BaseModel":
        for module in [*self.text_encoders, self.unet]:
            module.to(device=device, dtype=dtype)
        self.vae.to(device=device, dtype=vae_dtype or dtype)
        return self


def base_model_help(path: str | Path) -> str:
    return (
        f"put a diffusers model folder at {path} (model_index.json, unet/, vae/, text_encoder/, tokenizer/, "
        "scheduler/ and for SDXL text_encoder_2/, tokenizer_2/), e.g. `huggingface-cli download "
        f"stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir {path}`; or pass a single-file checkpoint "
        "(.safetensors/.ckpt) together with --base-config pointing at such a folder (configs and tokenizer "
        "files are enough)"
    )


def missing_base_files(path: str | Path, config: str | Path | None = None) -> list[str]:
    """Human-readable problems with a base model location; empty when it looks loadable."""
    path = Path(path)
    if not path.exists():
        return [f"base model {path} does not exist: {base_model_help(path)}"]
    folder = Path(config) if (path.is_file() and config) else path
    if path.is_file() and config is None:
        return [
            f"{path} is a single-file checkpoint; also pass --base-config with a diffusers folder holding the "
            "matching model_index.json, component config.json files and tokenizer files"
        ]
    problems = []
    if not (folder / "model_index.json").is_file():
        return [f"{folder / 'model_index.json'} is missing: {base_model_help(folder)}"]
    import json

    index = json.loads((folder / "model_index.json").read_text())
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if name not in index or index[name] in (None, [None, None]):
            continue
        sub = folder / name
        if not (sub / "config.json").is_file():
            problems.append(f"{sub / 'config.json'} is missing (copy it from the model's `{name}/` folder)")
        elif path.is_dir() and not any(sub.glob("*.safetensors")) and not any(sub.glob("*.bin")):
            problems.append(f"{sub}/ has no weights (*.safetensors): download the model's `{name}/` folder")
    for name in ("tokenizer", "tokenizer_2"):
        if name in index and index[name] not in (None, [None, None]) and not (folder / name).is_dir():
            problems.append(f"{folder / name}/ is missing (vocab.json, merges.txt from the model's `{name}/` folder)")
    return problems


def load_base_model(path: str | Path, config: str | Path | None = None) -> BaseModel:
    """Load all frozen components on CPU in float32; call `.to()` and `.freeze()` afterwards."""
    from diffusers import DDPMScheduler

    problems = missing_base_files(path, config)
    if problems:
        raise MissingModelError("cannot load the base model:\n  - " + "\n  - ".join(problems))
    path = Path(path)
    if path.is_file():
        parts = _load_single_file(path, Path(config))
    else:
        parts = _load_folder(path)
    noise_scheduler = DDPMScheduler.from_config(parts["scheduler"].config)
    encoders = [parts["text_encoder"]] + ([parts["text_encoder_2"]] if parts.get("text_encoder_2") else [])
    tokenizers = [parts["tokenizer"]] + ([parts["tokenizer_2"]] if parts.get("text_encoder_2") else [])
    if len(encoders) == 2:
        kind, heads = "sdxl", ["l", "g"]
    else:
        width = int(encoders[0].config.hidden_size)
        kind = "sd2" if noise_scheduler.config.prediction_type == "v_prediction" or width == 1024 else "sd1"
        heads = [WIDTH_TO_CLIP.get(width) or ("h" if kind == "sd2" else "l")]
    model = BaseModel(
        kind=kind,
        tokenizers=tokenizers,
        text_encoders=encoders,
        heads=heads,
        unet=parts["unet"],
        vae=parts["vae"],
        noise_scheduler=noise_scheduler,
        scheduler=parts["scheduler"],
        source=str(path),
    )
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
