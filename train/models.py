"""Finding and checking the frozen base text-to-image model: a diffusers folder of any family in
`train/families/` (SD1/SD2/SDXL, Flux.1, SD3.5, Qwen-Image, Z-Image, Flux.2), or a single-file SD checkpoint plus a
local config. The families themselves live in `train/families/`.
"""

from __future__ import annotations

from pathlib import Path

from audiotoken_core.sources import official

__all__ = ["MissingModelError", "load_base_model", "missing_base_files"]

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


class MissingModelError(FileNotFoundError):
    """A model file is missing; the message names each file and where to get it."""


def base_model_help(path: str | Path) -> str:
    return (
        f"put a diffusers model folder at {path} (model_index.json, unet/, vae/, text_encoder/, tokenizer/, "
        "scheduler/ and for SDXL text_encoder_2/, tokenizer_2/), e.g. `huggingface-cli download "
        f"{official('base_model').hf_repo} --local-dir {path}`; or a Flux.1, SD3.5, Qwen-Image or Z-Image "
        "diffusers folder (transformer/ instead of unet/, e.g. `huggingface-cli download "
        f"black-forest-labs/FLUX.1-dev --local-dir {path}`); or pass a single-file SD checkpoint "
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
    for name in ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        if name not in index or index[name] in (None, [None, None]):
            continue
        sub = folder / name
        if not (sub / "config.json").is_file():
            problems.append(f"{sub / 'config.json'} is missing (copy it from the model's `{name}/` folder)")
        elif path.is_dir() and not any(sub.glob("*.safetensors")) and not any(sub.glob("*.bin")):
            problems.append(f"{sub}/ has no weights (*.safetensors): download the model's `{name}/` folder")
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        if name in index and index[name] not in (None, [None, None]) and not (folder / name).is_dir():
            problems.append(f"{folder / name}/ is missing (the tokenizer files from the model's `{name}/` folder)")
    return problems


def load_base_model(path: str | Path, config: str | Path | None = None, dtype=None):
    """The frozen base model (a `train.families.interface.Family`), its family read from the folder's
    model_index.json `_class_name` (a single-file checkpoint's: from its config folder's); all parts on CPU and
    frozen: call `.to()` afterwards. UNet families load in float32; the transformer families load their text
    encoders and transformer in `dtype` (the run's precision; default float32) and the VAE in float32, so a 20B
    transformer never sits in host memory at 4 bytes a weight."""
    from .families import family_for

    problems = missing_base_files(path, config)
    if problems:
        raise MissingModelError("cannot load the base model:\n  - " + "\n  - ".join(problems))
    path = Path(path)
    return family_for(config if path.is_file() else path).load(path, dtype=dtype, config=config)
