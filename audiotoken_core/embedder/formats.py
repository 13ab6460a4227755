"""Embedder files: the official `embedder_learned_embeds.bin` and our `.safetensors` format.

Official: a plain `torch.save` of one `FGAEmbedder` state dict (13 tensors, no metadata).
Ours: every head's official tensors under `<head>.`, plus string metadata (see docs/design.md). Version 2
lets each head have its own token count (`n_tokens` is `{head: count}`); version 1 (one count for all heads)
is still read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch

from .. import file_format
from ..safeload import load_torch_checkpoint, read_safetensors, write_safetensors
from .meta import WIDTH_TO_CLIP, EmbedderMeta
from .model import AudioEmbedder

FORMAT_NAME = "audiotoken-embedder"
FORMAT_VERSION = "2"
READ_VERSIONS = ("1", FORMAT_VERSION)

OFFICIAL_KEYS = (
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fga.un_models.0.embed.weight",
    "fga.un_models.0.embed.bias",
    "fga.un_models.0.feature_reduce.weight",
    "fga.un_models.0.feature_reduce.bias",
    "fga.pp_models.0.embed_X.weight",
    "fga.pp_models.0.embed_X.bias",
    "fga.pp_models.0.embed_Y.weight",
    "fga.pp_models.0.embed_Y.bias",
    "fga.reduce_potentials.0.weight",
)


def official_shapes(in_dim: int, out_dim: int, hidden_dim: int | None = None, n_tokens: int = 1) -> dict:
    """Tensor shapes of one head in the official layout; with n_tokens=1 exactly `FGAEmbedder`'s."""
    hid = in_dim if hidden_dim is None else hidden_dim
    d, k = out_dim, n_tokens
    return {
        "fc1.weight": (hid, in_dim),
        "fc1.bias": (hid,),
        "fc2.weight": (d, hid),
        "fc2.bias": (d,),
        "fga.un_models.0.embed.weight": (d, d, 1),
        "fga.un_models.0.embed.bias": (d,),
        "fga.un_models.0.feature_reduce.weight": (k, d, 1),
        "fga.un_models.0.feature_reduce.bias": (k,),
        "fga.pp_models.0.embed_X.weight": (d, d, 1),
        "fga.pp_models.0.embed_X.bias": (d,),
        "fga.pp_models.0.embed_Y.weight": (d, d, 1),
        "fga.pp_models.0.embed_Y.bias": (d,),
        "fga.reduce_potentials.0.weight": (k, 2, 1),
    }


def check_head_state(state: dict, where: str) -> tuple[int, int, int, int]:
    """Validate one head's official-layout tensors; returns (in_dim, hidden_dim, out_dim, n_tokens)."""
    missing = [k for k in OFFICIAL_KEYS if k not in state]
    unexpected = sorted(k for k in state if k not in OFFICIAL_KEYS)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            shown = ", ".join(unexpected[:8]) + (f", … ({len(unexpected)} in all)" if len(unexpected) > 8 else "")
            parts.append("unexpected keys: " + shown)
        raise ValueError(f"{where}: not an AudioToken embedder state dict ({'; '.join(parts)})")
    for key in OFFICIAL_KEYS:
        t = state[key]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            kind = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{where}: {key} must be a floating-point tensor, found {kind}")
    fc1, fc2 = state["fc1.weight"], state["fc2.weight"]
    reduce_w = state["fga.un_models.0.feature_reduce.weight"]
    if fc1.dim() != 2 or fc2.dim() != 2 or reduce_w.dim() != 3:
        raise ValueError(
            f"{where}: fc1.weight, fc2.weight and feature_reduce.weight must be 2-D, 2-D and 3-D, got "
            f"{list(fc1.shape)}, {list(fc2.shape)}, {list(reduce_w.shape)}"
        )
    hidden_dim, in_dim = fc1.shape
    out_dim = fc2.shape[0]
    n_tokens = reduce_w.shape[0]
    expected = official_shapes(in_dim, out_dim, hidden_dim, n_tokens)
    wrong = [
        f"{k} {list(state[k].shape)} (expected {list(s)})"
        for k, s in expected.items()
        if tuple(state[k].shape) != s
    ]
    if wrong:
        raise ValueError(f"{where}: wrong tensor shapes: " + "; ".join(wrong))
    return int(in_dim), int(hidden_dim), int(out_dim), int(n_tokens)


def official_meta(in_dim: int, widths: dict[str, int], n_tokens: int, source: str) -> EmbedderMeta:
    """What the official release implies: BEATs cpt2, layers 4/8/12 concatenated, 10 s windows at 16 kHz."""
    if in_dim % 3:
        raise ValueError(f"input width {in_dim} is not three concatenated BEATs layers, as official embedders are")
    return EmbedderMeta(encoder_width=in_dim // 3, widths=widths, n_tokens=n_tokens, source=source)


def embedder_from_official_state_dict(
    state: dict, head: str | None = None, source: str = "official", where: str = "state dict"
) -> AudioEmbedder:
    """One official `FGAEmbedder` state dict as a one-head AudioEmbedder (on CPU, in the tensors' dtype).

    The head name follows from the token width (768 → `l`, 1024 → `h`, 1280 → `g`) unless given.
    """
    in_dim, hidden_dim, out_dim, n_tokens = check_head_state(state, where)
    if head is None:
        head = WIDTH_TO_CLIP.get(out_dim)
        if head is None:
            raise ValueError(
                f"{where}: token width {out_dim} matches no known CLIP text encoder "
                f"({', '.join(f'{w} → {n}' for w, n in WIDTH_TO_CLIP.items())}); name the head explicitly"
            )
    try:
        meta = official_meta(in_dim, {head: out_dim}, n_tokens, source)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    state = {f"{head}.{k}": v for k, v in state.items()}
    return _build(in_dim, {head: out_dim}, n_tokens, hidden_dim, meta, state, where)


def embedder_from_safetensors(tensors: dict, metadata: dict[str, str], where: str = "file") -> AudioEmbedder:
    """Our format, checked against its own metadata."""
    fmt = metadata.get("format")
    if fmt != FORMAT_NAME:
        if "beats_cfg" in metadata:
            raise ValueError(f"{where}: this is a BEATs audio encoder file, not an Embedder")
        if fmt is None and "fc1.weight" in tensors:
            # an official state dict merely re-saved as safetensors
            return embedder_from_official_state_dict(tensors, source=f"official:{where}", where=where)
        found = f"format {fmt!r}" if fmt is not None else "no 'format' metadata"
        raise ValueError(f"{where}: not an AudioToken embedder file ({found}; expected {FORMAT_NAME!r})")
    version = metadata.get("format_version")
    if version not in READ_VERSIONS:
        raise ValueError(
            f"{where}: embedder format_version {version!r} is not supported by this version of "
            f"audiotoken_core (it reads versions {', '.join(READ_VERSIONS)}); "
            "update comfyui-audiotoken or re-export the file"
        )
    meta = EmbedderMeta.from_metadata(metadata, where)

    grouped: dict[str, dict] = {}
    for key, t in tensors.items():
        name, sep, rest = key.partition(".")
        if not sep:
            raise ValueError(f"{where}: unexpected key {key!r} (expected '<head>.<official key>')")
        grouped.setdefault(name, {})[rest] = t
    if not grouped:
        raise ValueError(f"{where}: the file holds no tensors")
    if "widths" in metadata and set(meta.widths) != set(grouped):
        raise ValueError(
            f"{where}: metadata lists heads {sorted(meta.widths)} but the tensors hold heads {sorted(grouped)}"
        )
    order = [n for n in meta.widths if n in grouped] if "widths" in metadata else sorted(grouped)

    dims = {name: check_head_state(grouped[name], f"{where}, head {name!r}") for name in order}
    (in_dim, hidden_dim, _, first_count), *_ = dims.values()
    for name, (i, h, _, k) in dims.items():
        if (i, h) != (in_dim, hidden_dim) or (version == "1" and k != first_count):
            what, theirs = ("in/hidden/tokens", f"{in_dim}/{hidden_dim}/{first_count}") if version == "1" else (
                "in/hidden", f"{in_dim}/{hidden_dim}")
            ours = f"{i}/{h}/{k}" if version == "1" else f"{i}/{h}"
            raise ValueError(f"{where}: head {name!r} has {what} {ours}, other heads {theirs}")
    widths = {name: dims[name][2] for name in order}
    n_tokens = {name: dims[name][3] for name in order}
    if "widths" in metadata and meta.widths != widths:
        raise ValueError(f"{where}: metadata widths {meta.widths} disagree with the tensors {widths}")
    if "n_tokens" in metadata:
        # without `widths` the metadata's heads are unknown: its one count is taken for every head
        stated = meta.n_tokens if "widths" in metadata else dict.fromkeys(order, next(iter(meta.n_tokens.values())))
        if stated != n_tokens:
            raise ValueError(f"{where}: metadata n_tokens {stated} disagrees with the tensors ({n_tokens})")
    meta = meta.with_(widths=widths, n_tokens=n_tokens)
    state = {f"{name}.{k}": v for name in order for k, v in grouped[name].items()}
    return _build(in_dim, widths, n_tokens, hidden_dim, meta, state, where)


def _build(in_dim, widths, n_tokens, hidden_dim, meta, state, where) -> AudioEmbedder:
    # parameters are created on the meta device and replaced by the file's tensors: no wasted random init
    try:
        with torch.device("meta"):
            model = AudioEmbedder(in_dim, widths, n_tokens, hidden_dim, meta=meta)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    model.heads.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True, assign=True)
    return model.eval()


def sniff_format(path: str | os.PathLike) -> str:
    """'torch' for a torch.save file (zip or legacy pickle), else 'safetensors', by the leading bytes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedder file not found: {path}")
    kind = file_format.sniff(path)
    if kind == file_format.EMPTY:
        raise ValueError(f"{path.name}: the file is empty (0 bytes); download it again")
    # anything unknown goes to the safetensors reader, whose error says the file is not valid
    return "torch" if kind in file_format.TORCH_FORMATS else "safetensors"


def load_embedder(
    path: str | os.PathLike,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    head: str | None = None,
    faithful_dropout: bool = False,
) -> AudioEmbedder:
    """An AudioEmbedder in eval mode from the official `.bin` or our `.safetensors` (detected by content).

    `head` names the CLIP encoder of an official file whose width is not a standard one; for our format it
    only asserts that the file has that head.
    """
    path = Path(path)
    if sniff_format(path) == "torch":
        state = load_torch_checkpoint(path)
        if "cfg" in state and "model" in state:
            raise ValueError(f"{path.name}: this is a BEATs audio encoder checkpoint, not an Embedder")
        model = embedder_from_official_state_dict(state, head=head, source=f"official:{path.name}", where=path.name)
    else:
        tensors, metadata = read_safetensors(path)
        model = embedder_from_safetensors(tensors, metadata, where=path.name)
        if head is not None and head not in model.heads:
            raise ValueError(f"{path.name}: no head {head!r}; the file has heads {model.head_names}")
    model.faithful_dropout = bool(faithful_dropout)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def embedder_tensors(embedder: AudioEmbedder) -> dict[str, torch.Tensor]:
    """Our on-disk tensor names: `<head>.<official key>`."""
    return {k: v.detach().cpu() for k, v in embedder.heads.state_dict().items()}


def save_embedder(embedder: AudioEmbedder, path: str | os.PathLike) -> Path:
    """Write our `.safetensors` format (atomically), metadata from `embedder.meta`."""
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **embedder.meta.to_metadata()}
    return write_safetensors(embedder_tensors(embedder), path, metadata)


def official_state_dict(embedder: AudioEmbedder, head: str | None = None) -> "OrderedDict[str, torch.Tensor]":
    """One head in the official layout, e.g. to `torch.save` for the reference code."""
    if head is None:
        if len(embedder.heads) != 1:
            raise ValueError(f"the embedder has heads {embedder.head_names}; say which one to export")
        head = embedder.head_names[0]
    if head not in embedder.heads:
        raise ValueError(f"no head {head!r}; the embedder has {embedder.head_names}")
    state = embedder.heads[head].state_dict()
    return OrderedDict((k, state[k].detach().cpu().clone()) for k in OFFICIAL_KEYS)
