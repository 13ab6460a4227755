"""The `python -m train.evaluate` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ..models import MissingModelError
from . import model_files as files
from . import report as rep
from .config import ALL_ROWS, EvalConfig
from .run import evaluate
from .scoring import METRICS


def build_parser() -> argparse.ArgumentParser:
    d = EvalConfig(data="", out="")
    p = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Score an AudioToken embedder: AIS, IIS, AIC (top-1/5) and FID with bootstrap CIs, "
        "against text-upper-bound, null-token, BEATs-label and ground-truth reference rows.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="dataset folder or file (any layout the trainer reads)")
    g.add_argument("--split", default=d.split, help="split to score (default: test; 'all' for every clip)")
    g.add_argument("--limit", type=int, default=None, help="score a seeded random subset of this many clips")
    g.add_argument("--out", required=True, help="output folder (images, feature cache, reports)")
    g = p.add_argument_group("generator")
    g.add_argument("--base-model", help="diffusers folder of the base model (e.g. SD-1.4)")
    g.add_argument("--embedder", help="embedder weights (official .bin or our .safetensors)")
    g.add_argument("--beats", help="BEATs checkpoint (.pt or .safetensors)")
    g.add_argument("--base-config", help="diffusers config folder when --base-model is a single-file checkpoint")
    g.add_argument("--lora", help="UNet LoRA to score with: ours (audiotoken-lora.safetensors), the official "
                                  "lora_layers_learned_embeds.bin, ComfyUI/kohya or peft files. Leave it out to score "
                                  "without (the paper's setting); use another --out for each, results.md says which")
    g.add_argument("--dtype", default=d.dtype, choices=["float16", "bfloat16", "float32"])
    g = p.add_argument_group("scoring models (local files only)")
    g.add_argument("--clip-b32", help=f"transformers folder of {files.CLIP_B32_SOURCE} (AIS)")
    g.add_argument("--clip-l14", help=f"transformers folder of {files.CLIP_L14_SOURCE} (IIS, AIC)")
    g.add_argument("--wav2clip", help="Wav2CLIP.pt checkpoint (AIS)")
    g.add_argument("--inception", help=f"{files.FID_WEIGHTS_NAME} (FID)")
    g = p.add_argument_group("generation")
    g.add_argument("--prompt", default=d.prompt, help="prompt with the audio placeholder <audio> or <*>")
    g.add_argument("--n-images", type=int, default=d.n_images, help="images per clip (seeds seed..seed+n-1)")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--steps", type=int, default=d.steps)
    g.add_argument("--guidance", type=float, default=d.guidance)
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--null-token", default=d.null_token, choices=["zero", "random"])
    g.add_argument("--label-k", type=int, default=d.label_k,
                   help="labels rows: at most this many BEATs AudioSet labels per prompt, best first")
    g.add_argument("--label-threshold", type=float, default=d.label_threshold,
                   help="labels rows: leave out labels scoring below this probability (a clip where none reaches "
                        "it gets its best label)")
    g.add_argument("--gen-batch", type=int, default=d.gen_batch, help="clips per generator call")
    g = p.add_argument_group("what to compute")
    g.add_argument("--rows", default=",".join(d.rows),
                   help=f"comma list of {', '.join(ALL_ROWS)} (default: {','.join(d.rows)}; the labels rows need "
                        "a fine-tuned BEATs, which holds the AudioSet head)")
    g.add_argument("--metrics", default=",".join(d.metrics), help=f"comma list of {', '.join(METRICS)}")
    g.add_argument("--aic-template", default=d.aic_template, help="class prompt for zero-shot AIC")
    g.add_argument("--labels-file", help="all class names, one per line (default: the labels of the scored clips)")
    g.add_argument("--wav2clip-rate", type=int, default=d.wav2clip_rate,
                   help="audio rate fed to Wav2CLIP (16000 as it was trained; SonicDiffusion used 44100)")
    g = p.add_argument_group("statistics and output")
    g.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap resamples for AIS/IIS/AIC")
    g.add_argument("--fid-bootstrap", type=int, default=d.fid_bootstrap, help="bootstrap resamples for FID")
    g.add_argument("--confidence", type=float, default=d.confidence)
    g.add_argument("--grid-clips", type=int, default=d.grid_clips, help="clips shown in grid.png (0: none)")
    g.add_argument("--cache-dir", help="feature cache (default OUT/feature_cache); share it across runs")
    g.add_argument("--clip-batch", type=int, default=d.clip_batch)
    g.add_argument("--inception-batch", type=int, default=d.inception_batch)
    g.add_argument("--audio-batch", type=int, default=d.audio_batch)
    g.add_argument("--overwrite", action="store_true", help="regenerate rows made with other settings")
    g.add_argument("--cpu", action="store_true", help="run on CPU even if a GPU is present")
    g.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> EvalConfig:
    a = build_parser().parse_args(argv)
    split = None if a.split in ("all", "") else a.split
    return EvalConfig(
        data=a.data, out=a.out, split=split, limit=a.limit,
        base_model=a.base_model, embedder=a.embedder, beats=a.beats, base_config=a.base_config, lora=a.lora,
        dtype=a.dtype,
        clip_b32=a.clip_b32, clip_l14=a.clip_l14, wav2clip=a.wav2clip, inception=a.inception,
        prompt=a.prompt, n_images=a.n_images, seed=a.seed, steps=a.steps, guidance=a.guidance,
        height=a.height, width=a.width, null_token=a.null_token, gen_batch=a.gen_batch,
        label_k=a.label_k, label_threshold=a.label_threshold,
        rows=tuple(x.strip() for x in a.rows.split(",") if x.strip()),
        metrics=tuple(x.strip() for x in a.metrics.split(",") if x.strip()),
        aic_template=a.aic_template, labels_file=a.labels_file, wav2clip_rate=a.wav2clip_rate,
        bootstrap=a.bootstrap, fid_bootstrap=a.fid_bootstrap, confidence=a.confidence, grid_clips=a.grid_clips,
        cache_dir=a.cache_dir, clip_batch=a.clip_batch, inception_batch=a.inception_batch, audio_batch=a.audio_batch,
        overwrite=a.overwrite, cpu=a.cpu, progress=not a.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(argv)
    try:
        report = evaluate(cfg)
    except (MissingModelError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report is not None:
        print(rep.markdown_table(report))
        print(f"\nreport: {Path(cfg.out) / 'results.md'} (all numbers: metrics.json)")
    return 0
