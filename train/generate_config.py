"""What `train.generate` is told, and the generator settings it shares with `train.evaluate`: each option is one
dataclass field, with one default, read by both commands.

Plain stdlib, as `train.options`: `scripts/generate.sh --help` builds this parser with the system Python before
the venv (and torch) exists.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from audiotoken_core import precision, sources
from audiotoken_core.command_name import command_name

from .options import add_options, option

GENERATOR = "generator"
GENERATION = "generation"
_OFFICIAL = {kind: sources.of_kind(kind)[0].name for kind in ("embedder", "audio_encoder", "lora")}


@dataclass(kw_only=True)
class GeneratorFiles:
    """The model files and the precision of the image generator."""

    base_model: str | None = option(None, "diffusers folder or single-file checkpoint of the base model",
                                    group=GENERATOR)
    embedder: str | None = option(
        None, f"embedder weights: ours (audiotoken-embedder.safetensors) or the official {_OFFICIAL['embedder']}",
        group=GENERATOR)
    beats: str | None = option(
        None, f"BEATs checkpoint (.pt or .safetensors), e.g. the official {_OFFICIAL['audio_encoder']}",
        group=GENERATOR)
    base_config: str | None = option(
        None, "diffusers config folder when --base-model is a single-file checkpoint", group=GENERATOR)
    lora: str | None = option(
        None, f"UNet LoRA: ours (audiotoken-lora.safetensors), the official {_OFFICIAL['lora']}, ComfyUI/kohya or "
        "peft files; none by default (the paper trains only the Embedder)", group=GENERATOR)
    dtype: str = option(precision.AUTO, f"precision of the generator; {precision.RULE}", group=GENERATOR,
                        choices=precision.CHOICES)

    def __post_init__(self):
        self.dtype = precision.respelled(self.dtype)


@dataclass(kw_only=True)
class Sampling:
    """How each image is drawn."""

    prompt: str = option("a photo of <audio>", "prompt with the audio placeholder <audio> or <*>", group=GENERATION)
    steps: int = option(50, "sampling steps", group=GENERATION)
    guidance: float = option(7.5, "guidance scale", group=GENERATION)
    height: int | None = option(None, "image height (default: the model's)", group=GENERATION)
    width: int | None = option(None, "image width (default: the model's)", group=GENERATION)


SAMPLING = Sampling()  # the defaults, for the generator's own keyword arguments


@dataclass(kw_only=True)
class GenerateConfig(Sampling, GeneratorFiles):
    """`python -m train.generate`: images from sounds."""

    audio: list[str] = option(help="sound or video file(s)")
    out: str = option("generated", "output folder")
    seeds: list[int] = option(help="one image per seed", factory=lambda: [0])
    offset: float = option(0.0, "window start in seconds")
    mode: str = option("first", "one window, or the mean over all windows", choices=("first", "mean"))
    device: str | None = option(None, "torch device (default: cuda where there is one, else cpu)")
    cache_dir: str | None = option(
        None, "where the official files are kept (default: $AUDIOTOKEN_CACHE or ~/.cache/audiotoken)")
    download: bool = option(
        True, "fetch missing official files, verified before use (--no-download: list them and stop)")


DESCRIPTION = (
    "Images from sounds, with the same weights the ComfyUI nodes use. Without --base-model, --embedder and --beats "
    "it uses the official files (SD 1.5 as a diffusers folder, the official Embedder, BEATs) from --cache-dir, "
    "downloading the missing ones first, each verified before use; --lora official takes the official LoRA from "
    "there too. A missing path given explicitly is downloaded when its name is one of the official files."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=command_name(f"{__package__}.generate"), description=DESCRIPTION)
    add_options(parser, GenerateConfig)
    return parser
