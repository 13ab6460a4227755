"""The textual-inversion file layout the host's `load_embed` reads: `{clip_l: [n, 768], t5xxl: [m, 4096], ...}`.

Save Embedding writes it for users; Text Encode writes it to a private folder so the host's own
`embedding:NAME` path places the sound's vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..audiotoken_core.embedder.meta import embedding_key
from ..audiotoken_core.safeload import write_safetensors

FORMAT = "audiotoken-embedding"


def embedding_tensors(tokens: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """One sound's tokens keyed the way `load_embed` looks them up: every head under its host key (`clip_l`,
    `clip_g`, `t5xxl`, `qwen25_7b`, ...), each `[n_tokens[head], width]`."""
    batch = next(iter(tokens.values())).shape[0]
    if not 0 <= index < batch:
        raise ValueError(f"batch_index {index} is out of range: audio_tokens holds {batch} token set(s) "
                         f"(0 to {batch - 1}).")
    return {embedding_key(name): t[index].detach().to("cpu", torch.float32).contiguous()
            for name, t in tokens.items()}


def write_embedding(path: str | Path, tokens: dict[str, torch.Tensor], index: int, info: dict | None = None) -> dict:
    """Write sound `index` of `tokens` to `path` atomically; returns the tensors written."""
    tensors = embedding_tensors(tokens, index)
    meta = {"format": FORMAT, "info": json.dumps(info or {}, default=str), "batch_index": str(int(index))}
    write_safetensors(tensors, path, meta)
    return tensors
