"""The socket types the pack adds and the value that travels on an AUDIO_TOKENS link."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from comfy_api.latest import io

AudioTokenModelType = io.Custom("AUDIOTOKEN_MODEL")
AudioTokensType = io.Custom("AUDIO_TOKENS")

CATEGORY = "conditioning/audiotoken"
PLACEHOLDER = "<audio>"

# CLIP name in token dicts -> the key a textual-inversion file uses for it.
EMBEDDING_KEYS = {"l": "clip_l", "g": "clip_g", "h": "clip_h"}


@dataclass(frozen=True)
class AudioTokens:
    """Token vectors for one or more sounds.

    `tokens[clip]` is float32 `[B, n_tokens, D]` on the CPU, one row per sound (or per window), keyed by
    CLIP name (`l` 768, `g` 1280, `h` 1024). `info` says where they came from, for the UI and for saving.
    """

    tokens: dict[str, torch.Tensor]
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.tokens:
            raise ValueError("AudioTokens needs at least one CLIP head")
        sizes = {k: tuple(v.shape) for k, v in self.tokens.items()}
        if any(len(s) != 3 for s in sizes.values()):
            raise ValueError(f"token tensors must be [batch, n_tokens, width]; got {sizes}")
        if len({s[0] for s in sizes.values()}) != 1 or len({s[1] for s in sizes.values()}) != 1:
            raise ValueError(f"all CLIP heads must have the same batch and token count; got {sizes}")

    @property
    def batch_size(self) -> int:
        return next(iter(self.tokens.values())).shape[0]

    @property
    def n_tokens(self) -> int:
        return next(iter(self.tokens.values())).shape[1]
