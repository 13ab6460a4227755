"""Convert official AudioToken weight files to our `.safetensors` formats.

    python -m audiotoken_core.convert embedder_learned_embeds.bin
    python -m audiotoken_core.convert BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt -o beats.safetensors

The official files are pickles; `.safetensors` cannot carry code and loads faster. Conversion reads the
pickle with `weights_only=True`, so it never runs code from the file either.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .command_name import command_name
from .embedder import embedder_tensors, load_embedder, official_state_dict, save_embedder
from .embedder.formats import sniff_format
from .safeload import load_torch_checkpoint
from .sources import official


def detect_kind(path: str | os.PathLike) -> str:
    """'embedder' or 'beats', from the checkpoint's content (not its name)."""
    path = Path(path)
    if sniff_format(path) != "torch":
        raise ValueError(f"{path.name}: already a .safetensors file; only official .bin/.pt files need converting")
    checkpoint = load_torch_checkpoint(path)
    return "beats" if "cfg" in checkpoint and "model" in checkpoint else "embedder"


def convert_embedder(src: str | os.PathLike, dst: str | os.PathLike, head: str | None = None) -> Path:
    """Official `embedder_learned_embeds.bin` → our format, then verify every tensor survived bit for bit."""
    src, dst = Path(src), Path(dst)
    original = load_torch_checkpoint(src)
    model = load_embedder(src, head=head)
    save_embedder(model, dst)
    reloaded = load_embedder(dst)
    back = official_state_dict(reloaded)
    mismatched = [k for k, v in original.items() if k not in back or not _identical(v, back[k])]
    if mismatched or set(back) != set(original):
        dst.unlink(missing_ok=True)
        raise RuntimeError(f"round trip changed tensors {mismatched}; nothing written")
    return dst


def convert_beats(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Official BEATs `.pt` → our format; the AudioSet head stays (`predictor.*`), `label_dict` goes to metadata."""
    # imported here so the embedder path works even where the BEATs package is unavailable
    from .beats import save_beats_safetensors

    return Path(save_beats_safetensors(src, dst))


def convert_file(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    head: str | None = None,
    overwrite: bool = False,
) -> tuple[str, Path]:
    """Convert one file; returns (kind, output path). The output defaults to the input name with `.safetensors`."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"input file not found: {src}")
    dst = src.with_suffix(".safetensors") if dst is None else Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"output {dst} would overwrite the input")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    kind = detect_kind(src)
    if kind == "beats":
        if head is not None:
            raise ValueError("--head applies to Embedder files, but the input is a BEATs checkpoint")
        return kind, convert_beats(src, dst)
    return kind, convert_embedder(src, dst, head)


def _identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _describe(kind: str, path: Path) -> str:
    if kind == "beats":
        from .beats import load_beats

        beats = load_beats(path)
        if beats.predictor is None:
            return f"BEATs audio encoder → {path} (no AudioSet head: a pre-trained checkpoint)"
        labels = "with its label_dict" if beats.label_dict is not None else "without a label_dict"
        return f"BEATs audio encoder → {path}, AudioSet head ({beats.predictor.out_features} classes) {labels}"
    model = load_embedder(path)
    n_params = sum(t.numel() for t in embedder_tensors(model).values())
    heads = ", ".join(f"{name} ({width}, {model.n_tokens[name]} token(s))" for name, width in model.widths.items())
    return (
        f"Embedder → {path}: heads {heads}, input {model.in_dim}, "
        f"{n_params:,} parameters, tensors verified bit-identical"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name(__spec__.name if __spec__ else __name__),
        description=(
            f"Convert an official AudioToken embedder ({official('embedder').name}) or an official BEATs "
            "checkpoint (.pt) to .safetensors. The kind of file is detected from its content."
        ),
    )
    parser.add_argument("input", type=Path, help="official embedder .bin or BEATs .pt")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output .safetensors (default: the input name with .safetensors)",
    )
    parser.add_argument(
        "--head",
        default=None,
        help="CLIP text encoder the embedder targets: l (768), h (1024) or g (1280); "
        "default: from the embedder's token width",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        kind, out = convert_file(args.input, args.output, head=args.head, overwrite=args.overwrite)
        print(_describe(kind, out))
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
