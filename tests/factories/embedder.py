"""Tiny Embedders for tests: the official `.bin` layout and our `.safetensors` format, built in milliseconds."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from audiotoken_core.embedder import (
    AudioEmbedder,
    EmbedderMeta,
    official_shapes,
    save_embedder,
)


def official_state(in_dim: int, out_dim: int = 768, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """A random official `FGAEmbedder` state dict (key order and shapes as in `embedder_learned_embeds.bin`)."""
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in official_shapes(in_dim, out_dim).items():
        fan_in = shape[1] if len(shape) > 1 else shape[0]
        # sized like the default init, with a sharper attention mix so pooling is not near-uniform
        scale = 4.0 if key.startswith("fga.reduce_potentials") else fan_in**-0.5
        state[key] = (torch.rand(shape, generator=g) * 2 - 1) * scale
    return state


def write_tiny_official_embedder(path, in_dim: int, out_dim: int = 768, seed: int = 0) -> Path:
    """A plain `torch.save` of an OrderedDict, as the official release is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(official_state(in_dim, out_dim, seed), path)
    return path


def make_tiny_embedder(
    in_dim: int,
    widths: dict[str, int] | None = None,
    n_tokens: dict[str, int] | int = 1,
    hidden_dim: int | None = None,
    seed: int = 0,
    meta: EmbedderMeta | None = None,
) -> AudioEmbedder:
    """A seeded AudioEmbedder in eval mode. `in_dim` must be 3 × the BEATs width unless `meta` says otherwise."""
    widths = {"l": 768} if widths is None else widths
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AudioEmbedder(in_dim, widths, n_tokens=n_tokens, hidden_dim=hidden_dim, meta=meta)
        with torch.no_grad():
            for head in model.heads.values():
                head.fga.reduce_potentials[0].weight.mul_(8.0)
    return model.eval()


def write_tiny_embedder(
    path,
    in_dim: int,
    widths: dict[str, int] | None = None,
    n_tokens: dict[str, int] | int = 1,
    hidden_dim: int | None = None,
    seed: int = 0,
    meta: EmbedderMeta | None = None,
) -> Path:
    """Our `.safetensors` format, with metadata; returns the path."""
    model = make_tiny_embedder(in_dim, widths, n_tokens, hidden_dim, seed, meta)
    return save_embedder(model, path)
