"""`python -m benchmarks.toyworld`: does the AudioToken recipe learn? A toy world small enough for a CPU."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .run import DENOISERS, SOURCES, Settings, run


def main(argv: list[str] | None = None) -> int:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.toyworld",
        description=(
            "Train a tiny text-to-image model on K synthetic picture classes, freeze it, train only the "
            "AudioToken Embedder on K matching sound classes, then generate from held-out sounds and score "
            "the pictures with a classifier. Prints audio-token accuracy against chance and against the "
            "text-prompt upper bound. Nothing touches a model hub."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed for data, models and sampling")
    p.add_argument("--classes", type=int, default=d.classes, help="number of classes K (synthetic sounds: 2-8)")
    p.add_argument("--minutes", type=float, default=d.minutes,
                   help="wall-clock cap; a training phase that would overrun it stops early (and the run is then "
                        "no longer reproducible, which the result says)")
    p.add_argument("--out", default=d.out, help="folder for the table, result.json, contact sheets, the Embedder")
    p.add_argument("--source", default=d.source, choices=SOURCES,
                   help="synthetic designs, or spoken phrases made with espeak-ng (apt-get install -y espeak-ng); "
                        "'phrases' and 'commands' are two sets with different words")
    p.add_argument("--spoken-clips", type=int, default=d.spoken_clips, help="clips per phrase of a spoken set")
    p.add_argument("--sounds", dest="sounds_dir", default=None, metavar="DIR",
                   help="real sounds instead of synthetic ones: DIR/<class word>/<audio files>; a quarter of each "
                        "class's files is held out (--classes is then ignored)")
    p.add_argument("--beats", default=None, metavar="PATH",
                   help="a pretrained BEATs checkpoint (.pt or .safetensors); default: a random tiny BEATs")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--t2i-steps", type=int, default=d.t2i_steps)
    p.add_argument("--embed-steps", type=int, default=d.embed_steps)
    p.add_argument("--embed-lr", type=float, default=d.embed_lr, help="per-sample lr, scaled by the batch size")
    p.add_argument("--reuse-t2i", action="store_true",
                   help="reuse the toy T2I model that an earlier run with the same K, seed and recipe saved "
                        "in --out (skips its training; the wall time then no longer covers it)")
    p.add_argument("--embed-batch", type=int, default=d.embed_batch)
    p.add_argument("--embed-lr-scheduler", default=d.embed_lr_scheduler,
                   help="any lr schedule name the trainer accepts (constant, cosine, linear, ...)")
    p.add_argument("--embed-views", type=int, default=d.embed_views,
                   help="audio windows per training clip, one drawn per step (1: the first window only)")
    p.add_argument("--lambda-l1", type=float, default=d.lambda_l1, help="the trainer's --lambda-l1")
    p.add_argument("--lambda-norm", type=float, default=d.lambda_norm, help="the trainer's --lambda-norm")
    p.add_argument("--class-loss", action=argparse.BooleanOptionalAction, default=d.class_loss,
                   help="the trainer's --class-loss (the class word is the label)")
    p.add_argument("--denoiser", default=d.denoiser, choices=sorted(DENOISERS),
                   help="the toy T2I model: 'unet' (CLIP + UNet2DConditionModel, ε prediction) or 'flow' (T5 + "
                        "SD3Transformer2DModel trained by flow matching, the velocity target)")
    p.add_argument("--guidance", type=float, default=d.guidance)
    args = p.parse_args(argv)
    if args.sounds_dir and not Path(args.sounds_dir).is_dir():
        p.error(f"--sounds {args.sounds_dir}: not a folder")
    if args.beats and not Path(args.beats).is_file():
        p.error(f"--beats {args.beats}: no such file")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = Settings(**{**vars(d), **vars(args)})
    result = run(settings)
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
