"""The report rows: how each conditions the prompt, the per-clip prompts, and the generator that makes their images.

A row is one way of conditioning the same prompt: `audio` (the audio token), `text` (the true label
written where the token goes: the upper bound), `null` (a zero or random token: the lower bound), and two
training-free references from BEATs's own AudioSet head (`heard.py`): `labels` (the words it hears written
where the token goes) and `labels_token` (the token followed by those words). The evaluation talks to the
model through `RowGenerator`, so tests can inject a small fake and the trainer's `AudioImageGenerator` is
wrapped by `AudioTokenRows`. Seeds are the same list for every clip and every row, so rows differ only in
their conditioning.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, Sequence

import torch

from audiotoken_core.embedder.meta import tokens_per_head
from audiotoken_core.prompt import PLACEHOLDERS

from . import heard
from .features import file_digest

LABEL_ROWS = ("labels", "labels_token")
ROWS_GENERATED = ("audio", "text", "null", *LABEL_ROWS)
# The files behind each row's images (AudioTokenRows.identity): the text and null rows do not depend on the
# Embedder, so scoring a new checkpoint regenerates only the rows with the audio token.
ROW_IDENTITY = {
    "audio": ("base_model", "embedder", "lora"),
    "text": ("base_model", "lora"),
    "null": ("base_model", "lora"),
    "labels": ("base_model", "lora", "beats"),
    "labels_token": ("base_model", "embedder", "lora", "beats"),
}


@dataclass(frozen=True)
class GenerationSettings:
    """What one row's images depend on besides the models (`EvalConfig.settings()`, which holds the defaults)."""

    prompt: str
    seeds: tuple[int, ...]
    steps: int
    guidance: float
    height: int | None
    width: int | None
    null_token: str  # "zero" or "random"
    label_k: int
    label_threshold: float

    def signature(self, row: str, extra: dict | None = None) -> dict:
        """What must match for a saved image to be reused."""
        sig = {"row": row, **asdict(self), "seeds": list(self.seeds)}
        if row != "null":
            sig.pop("null_token")
        if row not in LABEL_ROWS:
            sig.pop("label_k")
            sig.pop("label_threshold")
        sig.update(extra or {})
        return sig


def _at_placeholders(prompt: str, text) -> str:
    if not any(p in prompt for p in PLACEHOLDERS):
        raise ValueError(f"the prompt {prompt!r} has no audio placeholder ({' or '.join(PLACEHOLDERS)})")
    return re.sub("|".join(re.escape(p) for p in PLACEHOLDERS), text, prompt)


def text_prompt(prompt: str, label: str) -> str:
    """The prompt with the clip's label where the audio token would go."""
    return _at_placeholders(prompt, lambda _m: label)


def token_and_words_prompt(prompt: str, words: str) -> str:
    """The `labels_token` prompt: the words after the token, comma-separated ("a photo of <audio>, dog, bark")."""
    return _at_placeholders(prompt, lambda m: f"{m.group(0)}, {words}")


def row_prompts(row: str, prompt: str, clips, words: dict[str, str]) -> list[str] | None:
    """The per-clip prompts of a row; None for the audio and null rows, which use `prompt` as it is."""
    if row == "text":
        return [text_prompt(prompt, c.label) for c in clips]
    if row == "labels":
        return [text_prompt(prompt, words[c.id]) for c in clips]
    if row == "labels_token":
        return [token_and_words_prompt(prompt, words[c.id]) for c in clips]
    return None


class RowGenerator(Protocol):
    """Each image method returns, per input, one PIL image per seed (in seed order)."""

    def audio(self, sounds: Sequence[tuple[torch.Tensor, int]], settings: GenerationSettings,
              prompts: Sequence[str] | None = None) -> list[list]:
        """The audio token of each sound in `prompts[i]` (default: `settings.prompt` for all)."""
        ...

    def text(self, prompts: Sequence[str], settings: GenerationSettings) -> list[list]:
        ...

    def null(self, clip_ids: Sequence[str], settings: GenerationSettings) -> list[list]:
        ...

    def labels(self, sounds: Sequence[tuple[torch.Tensor, int]], settings: GenerationSettings) -> list[str]:
        """Per sound, the label words BEATs's AudioSet head gives it (the `labels` rows' text)."""
        ...

    def describe(self, row: str) -> dict:
        """What identifies the images of `row` (stored with them, so stale images are never reused)."""
        ...


def clip_seed(clip_id: str) -> int:
    """A seed fixed by the clip's id, so a clip keeps its random null token whatever subset, shard or batch
    it is generated in."""
    return int(hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:12], 16)


def null_tokens(widths: dict[str, int], n_tokens: dict[str, int] | int, seeds: Sequence[int], kind: str,
                scale: dict[str, float]):
    """`{head: [len(seeds), n_tokens[head], D]}` (an int count: every head's): zeros, or Gaussian tokens of
    expected norm ~`scale[head]`, one per seed."""
    if kind not in ("zero", "random"):
        raise ValueError(f"null token must be 'zero' or 'random', got {kind!r}")
    counts = tokens_per_head(n_tokens, widths)
    out = {}
    for head, dim in widths.items():
        if kind == "zero":
            out[head] = torch.zeros(len(seeds), counts[head], dim)
            continue
        rows = []
        for seed in seeds:
            g = torch.Generator().manual_seed((int(seed) + sum(map(ord, head))) % (2**63))
            rows.append(torch.randn(counts[head], dim, generator=g) * (scale[head] / dim**0.5))
        out[head] = torch.stack(rows)
    return out


class AudioTokenRows:
    """`RowGenerator` over the trainer's `train.generate.AudioImageGenerator`."""

    def __init__(self, generator, widths: dict[str, int], n_tokens: dict[str, int] | int, token_scale: dict[str, float],
                 identity: dict | None = None):
        self.generator = generator
        self.widths = dict(widths)
        self.n_tokens = tokens_per_head(n_tokens, widths)
        self.token_scale = dict(token_scale)
        # {"base_model": ..., "embedder": ...}: names and content digests of the files behind the images
        self.identity = dict(identity or {})

    @classmethod
    def from_generator(cls, generator, identity: dict | None = None) -> "AudioTokenRows":
        """Token shapes from the base model's text encoders; a random null token gets the mean norm of the
        encoder's own word embeddings, so it is as large as a real word, just meaningless."""
        base = generator.base
        widths = {h: int(w) for h, w in base.widths.items()}
        scale = {}
        for head, encoder in zip(base.heads, base.text_encoders):
            table = encoder.get_input_embeddings().weight
            scale[head] = float(table.detach().float().norm(dim=1).mean())
        return cls(generator, widths, generator.embedder.meta.n_tokens, scale, identity)

    def _kwargs(self, s: GenerationSettings) -> dict:
        return dict(seeds=list(s.seeds), steps=s.steps, guidance=s.guidance, height=s.height, width=s.width)

    def audio(self, sounds, settings, prompts=None):
        out = []
        for (wave, rate), prompt in zip(sounds, prompts or [settings.prompt] * len(sounds)):
            out += self.generator.images_for_audio(wave, rate, prompt=prompt, **self._kwargs(settings))
        return out

    def text(self, prompts, settings):
        return [self.generator.images_for_text(p, **self._kwargs(settings)) for p in prompts]

    def null(self, clip_ids, settings):
        seeds = [clip_seed(c) for c in clip_ids]
        tokens = null_tokens(self.widths, self.n_tokens, seeds, settings.null_token, self.token_scale)
        return self.generator.images_for_tokens(tokens, prompt=settings.prompt, **self._kwargs(settings))

    def labels(self, sounds, settings):
        heard.check_head(self.generator.beats, LABEL_ROWS)
        return [heard.label_words(self.generator.beats, wave, rate, settings.label_k, settings.label_threshold)
                for wave, rate in sounds]

    def describe(self, row: str) -> dict:
        keep = ROW_IDENTITY[row]
        return {"widths": self.widths, "n_tokens": self.n_tokens, **{k: self.identity[k] for k in keep if k in self.identity}}


def check_generator(cfg) -> None:
    """Flags and files of the generator, checked before any frame is decoded."""
    missing = [n for n in ("base_model", "embedder", "beats") if getattr(cfg, n) is None]
    if missing:
        raise ValueError(
            "generating images needs --" + ", --".join(m.replace("_", "-") for m in missing)
            + " (or evaluate only the ground-truth row with --rows ground_truth)"
        )
    from ..generate import missing_files
    from ..models import MissingModelError

    problems = missing_files(cfg.base_model, cfg.embedder, cfg.beats, cfg.base_config)
    if cfg.lora and not Path(cfg.lora).is_file():
        problems.append(f"LoRA: {cfg.lora} not found")
    if problems:
        raise MissingModelError("generator files are missing:\n  - " + "\n  - ".join(problems))


def _file_identity(path) -> str:
    return f"{Path(path).name}:{file_digest(path)[:16]}"


def load_row_generator(cfg, device) -> AudioTokenRows:
    """The trainer's generator wrapped for the evaluation's rows."""
    from audiotoken_core.precision import resolve_dtype

    from ..generate import AudioImageGenerator

    dtype = resolve_dtype(cfg.dtype, device)
    generator = AudioImageGenerator.from_files(
        cfg.base_model, cfg.embedder, cfg.beats, device=device, dtype=dtype, base_config=cfg.base_config, lora=cfg.lora
    )
    identity = {"base_model": f"{Path(cfg.base_model).name}", "embedder": _file_identity(cfg.embedder)}
    if cfg.lora:
        identity["lora"] = _file_identity(cfg.lora)
    if any(r in LABEL_ROWS for r in cfg.rows):  # hashing BEATs costs a second; only these rows depend on it
        identity["beats"] = _file_identity(cfg.beats)
    return AudioTokenRows.from_generator(generator, identity)
