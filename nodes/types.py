"""The socket types the pack adds and the value that travels on an AUDIO_TOKENS link."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from comfy_api.latest import io

from ..audiotoken_core.prompt import PLACEHOLDER  # noqa: F401  (the nodes import it from here)
from ..audiotoken_core.schedule import FrameSchedule

AudioTokenModelType = io.Custom("AUDIOTOKEN_MODEL")
AudioTokensType = io.Custom("AUDIO_TOKENS")

CATEGORY = "conditioning/audiotoken"


def combo_problem(name: str, value, options) -> str | None:
    """The message for a combo value outside its options (the host does not check V3 combos), else None."""
    if value is not None and value not in options:
        return f"{name} must be one of {', '.join(options)}, got '{value}'"
    return None


@dataclass(frozen=True)
class KeyframeTokens:
    """The keyframes behind a frame schedule's tokens, for consumers that work once per keyframe.

    `tokens[clip]` is float32 `[K, n_tokens, D]` on the CPU, after smoothing; `schedule.interpolate` turns
    any per-keyframe result (tokens, conditionings, pooled outputs) into one per frame.
    """

    tokens: dict[str, torch.Tensor]
    schedule: FrameSchedule

    def __post_init__(self):
        sizes = {k: tuple(v.shape) for k, v in self.tokens.items()}
        if not sizes or any(len(s) != 3 or s[0] != self.schedule.n_keys for s in sizes.values()):
            raise ValueError(f"keyframe tokens must be [{self.schedule.n_keys} keyframes, n_tokens, width] per "
                             f"CLIP head; got {sizes}")


@dataclass(frozen=True)
class HeardRows:
    """What BEATs's AudioSet head heard, one entry per token row (per keyframe when the tokens carry keyframes).

    `words[r]` are the label words of row r for a prompt ("" where nothing scored clearly); `probs [R, C]`
    float32 CPU are the AudioSet probabilities they were chosen from (None once Blend has mixed the words).
    """

    words: list[str]
    probs: torch.Tensor | None = None

    def __post_init__(self):
        if self.probs is not None and tuple(self.probs.shape[:1]) != (len(self.words),):
            raise ValueError(f"{len(self.words)} rows of words but probabilities of shape {tuple(self.probs.shape)}")


@dataclass(frozen=True)
class AudioTokens:
    """Token vectors for one or more sounds.

    `tokens[head]` is float32 `[B, n_tokens[head], D]` on the CPU, one row per sound (or per window), keyed by
    Embedder head (`l` 768, `g` 1280, `h` 1024, `t5xxl` 4096, ...: the host's embedding key, CLIP's without
    `clip_`). `info` says where they came from, for the UI and for saving.
    From AudioToken Schedule, `tokens` holds one row per frame and `keyframes` the keyframes they were
    interpolated from (None otherwise). `heard` is what BEATs heard in each row (each keyframe when there are
    keyframes), for Text Encode's word route; None when its checkpoint has no AudioSet head.
    """

    tokens: dict[str, torch.Tensor]
    info: dict = field(default_factory=dict)
    keyframes: "KeyframeTokens | None" = None
    heard: HeardRows | None = None

    def __post_init__(self):
        if not self.tokens:
            raise ValueError("AudioTokens needs at least one head")
        sizes = {k: tuple(v.shape) for k, v in self.tokens.items()}
        if any(len(s) != 3 for s in sizes.values()):
            raise ValueError(f"token tensors must be [batch, n_tokens, width]; got {sizes}")
        if len({s[0] for s in sizes.values()}) != 1:
            raise ValueError(f"all heads must have the same batch; got {sizes}")
        if self.keyframes is not None:
            self._check_keyframes(sizes)
        if self.heard is not None and len(self.heard.words) != self.heard_rows:
            raise ValueError(f"{len(self.heard.words)} rows of what BEATs heard for {self.heard_rows} "
                             f"{'keyframes' if self.keyframes is not None else 'token sets'}")

    def _check_keyframes(self, sizes: dict[str, tuple]) -> None:
        keyed = {k: tuple(v.shape) for k, v in self.keyframes.tokens.items()}
        frames = self.keyframes.schedule.n_frames
        if set(keyed) != set(sizes) or any(keyed[k][1:] != s[1:] or s[0] != frames for k, s in sizes.items()):
            raise ValueError(f"per-frame tokens {sizes} do not match the keyframes {keyed} of a {frames}-frame "
                             "schedule")

    @property
    def batch_size(self) -> int:
        return next(iter(self.tokens.values())).shape[0]

    @property
    def heard_rows(self) -> int:
        """How many rows `heard` has: one per keyframe when there are keyframes, else one per token set."""
        return self.keyframes.schedule.n_keys if self.keyframes is not None else self.batch_size

    @property
    def n_tokens(self) -> dict[str, int]:
        """Tokens per sound for each head (a T5 or LLM head may have more than a CLIP one)."""
        return {k: int(v.shape[1]) for k, v in self.tokens.items()}
