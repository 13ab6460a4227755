"""The `python -m train.evaluate` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from audiotoken_core.command_name import command_name

from ..models import MissingModelError
from ..options import add_options, given
from . import report as rep
from .config import EvalConfig
from .run import evaluate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=command_name(__package__),
        description="Score an AudioToken embedder: AIS, IIS, AIC (top-1/5) and FID with bootstrap CIs, "
        "against text-upper-bound, null-token, BEATs-label and ground-truth reference rows.",
    )
    add_options(p, EvalConfig)
    return p


def config_from_args(argv: Sequence[str] | None = None) -> EvalConfig:
    return EvalConfig(**given(build_parser().parse_args(argv), EvalConfig))


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
