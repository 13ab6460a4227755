"""`python -m train`: command-line front end of `train.loop.train`.

Every `TrainConfig` field is an option (`--field-name`); booleans take `--x/--no-x`
(argparse.BooleanOptionalAction: the original's `type=bool` made "--lora False" mean True).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from .config import TrainConfig

# field -> (type, help). Types are explicit because annotations are strings here.
OPTIONS: dict[str, tuple[object, str]] = {
    "data": (str, "training data: VGGSound folder (vggsound.csv), sound+picture folder, video folder or manifest.jsonl"),
    "base_model": (str, "diffusers folder or single-file checkpoint (SD1.x, SD2.x or SDXL)"),
    "beats": (str, "BEATs checkpoint (.pt or .safetensors), e.g. BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"),
    "output_dir": (str, "run folder: checkpoints, cache, logs, final weights"),
    "base_config": (str, "diffusers config folder for a single-file --base-model"),
    "split": (str, "split to use where the data names splits (VGGSound: train/test); 'all' for every row"),
    "exclude": ("list", "files of ids to leave out (one per line, .json list or .csv first column)"),
    "official_filters": (bool, "VGGSound train split: leave out the clips the official code leaves out (its "
                               "unmatched and low-quality lists); unset: on unless AUDIOTOKEN_OFFICIAL_FILTERS=0"),
    "prompt": (str, "training prompt; <*> (or <audio>) marks the audio token"),
    "layers": ("ints", "1-based BEATs layers concatenated as Embedder input"),
    "n_tokens": (int, "audio tokens per prompt"),
    "embedder_hidden_dim": (int, "MLP hidden width (default: input width, as the original)"),
    "init_embedder": (str, "start from these Embedder weights (ours or the official .bin)"),
    "window_seconds": (float, "training audio window (original: 5)"),
    "infer_window_seconds": (float, "window recorded in the weights for inference (original: 10)"),
    "frame_size": (str, "training frame size WxH (original: 512x320)"),
    "resize": (str, "squash (original) | center-crop | pad"),
    "learning_rate": (float, "base learning rate"),
    "scale_lr": (bool, "multiply the lr by batch x grad-accum x processes (original default: on)"),
    "lr_scheduler": (str, "diffusers scheduler name: constant, constant_with_warmup, cosine, linear, ..."),
    "lr_warmup_steps": (int, "warmup steps"),
    "adam_beta1": (float, "AdamW beta1"),
    "adam_beta2": (float, "AdamW beta2"),
    "adam_weight_decay": (float, "AdamW weight decay"),
    "adam_epsilon": (float, "AdamW epsilon"),
    "max_grad_norm": (float, "clip gradients to this norm (off by default, as the original)"),
    "batch_size": (int, "clips per process per micro-batch"),
    "grad_accum": (int, "micro-batches per optimizer step"),
    "max_steps": (int, "optimizer steps"),
    "lambda_l1": (float, "weight of mean |token|"),
    "lambda_l2": (float, "weight of mean squared token norm"),
    "lambda_class": (float, "weight of the class loss"),
    "lambda_norm": (float, "weight of (|token| / mean word-embedding norm - 1)^2: keeps the token at a word's scale"),
    "class_loss": (bool, "add (1 - cos(token, label word embedding))^2 where clips have labels"),
    "faithful_dropout": (bool, "validation images with the official always-on unary dropout (training always applies it)"),
    "lora": (bool, "also train a LoRA on the UNet attention layers"),
    "lora_rank": (int, "LoRA rank (original: 4)"),
    "seed": (int, "seed for data order, windows, noise and timesteps"),
    "cache": (bool, "precompute BEATs features and VAE latents once (off: the original per-step recipe)"),
    "cache_dir": (str, "cache folder (default: <output-dir>/cache)"),
    "cache_windows": (int, "random windows (and frames) cached per clip"),
    "cache_dtype": (str, "feature storage type: fp16 | bf16 | fp32"),
    "precompute_batch": (int, "windows per BEATs/VAE batch in the precompute pass"),
    "precompute_only": (bool, "build the cache and stop"),
    "mixed_precision": (str, "auto (bf16/fp16 on GPU, fp32 on CPU) | no | fp16 | bf16"),
    "gradient_checkpointing": (bool, "trade compute for memory in UNet and text encoder"),
    "compile": (bool, "torch.compile the UNet"),
    "num_workers": (int, "DataLoader worker processes"),
    "checkpoint_every": (int, "save a resumable checkpoint every N steps"),
    "keep_checkpoints": (int, "checkpoints kept on disk"),
    "resume": (bool, "continue from the latest checkpoint in <output-dir>/checkpoints"),
    "max_nonfinite_steps": (int, "stop after this many consecutive NaN/Inf steps"),
    "log_every": (int, "log averaged losses every N steps"),
    "tensorboard": (bool, "write TensorBoard scalars (if tensorboard is installed)"),
    "validation_every": (int, "make validation images every N steps (0: never)"),
    "validation_audio": ("list", "fixed sounds for validation images (default: the first clips)"),
    "validation_count": (int, "validation sounds taken from the data when --validation-audio is not given"),
    "validation_steps": (int, "sampling steps for validation images"),
    "validation_guidance": (float, "guidance scale for validation images"),
    "progress": (bool, "show tqdm progress bars"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train an AudioToken Embedder (frozen BEATs + frozen Stable Diffusion).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="JSON file of settings (command-line options override it)")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        kind, help_text = OPTIONS[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"{help_text} (default: {default})")
        elif kind == "list":
            parser.add_argument(flag, nargs="+", default=None, help=help_text)
        elif kind == "ints":
            parser.add_argument(flag, type=_int_list, default=None, help=f"{help_text}, e.g. 4,8,12 (default: {','.join(map(str, default))})")
        else:
            parser.add_argument(flag, type=kind, default=None, help=f"{help_text} (default: {default})")
    return parser


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def config_from_args(argv=None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    settings: dict = {}
    config_file = args.pop("config")
    if config_file:
        with open(config_file, encoding="utf-8") as f:
            settings.update(json.load(f))
    settings.update({k: v for k, v in args.items() if v is not None})
    if settings.get("split") == "all":
        settings["split"] = None
    return TrainConfig.from_dict(settings)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .losses import NonFiniteLossError
    from .loop import train
    from .models import MissingModelError

    try:
        config = config_from_args(argv)
        path = train(config)
    except (MissingModelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
