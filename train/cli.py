"""`python -m train`: command-line front end of `train.loop.train`.

Every `TrainConfig` field is an option (`--field-name`), declared with its help in train/config.py; booleans take
`--x/--no-x` (argparse.BooleanOptionalAction: the original's `type=bool` made "--lora False" mean True).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from audiotoken_core.command_name import command_name

from .config import TrainConfig
from .options import add_options, given


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name(__package__),
        description="Train an AudioToken Embedder (frozen BEATs + frozen Stable Diffusion).",
    )
    parser.add_argument("--config", help="JSON file of settings (command-line options override it)")
    add_options(parser, TrainConfig)
    return parser


def config_from_args(argv=None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    settings: dict = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            settings.update(json.load(f))
    settings.update(given(args, TrainConfig))
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
