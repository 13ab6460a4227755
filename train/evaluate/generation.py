"""Producing the images each report row scores, with fixed seeds, saved as PNG files.

A row is one way of conditioning the same prompt: `audio` (the audio token), `text` (the true label
written where the token goes: the upper bound), `null` (a zero or random token: the lower bound). The
evaluation talks to the model through `RowGenerator`, so tests can inject a small fake and the trainer's
`AudioImageGenerator` is wrapped by `AudioTokenRows`. Seeds are the same list for every clip and every
row, so rows differ only in their conditioning.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, Sequence

import torch

PLACEHOLDERS = ("<*>", "<audio>")
ROWS_GENERATED = ("audio", "text", "null")


@dataclass(frozen=True)
class GenerationSettings:
    prompt: str = "a photo of <audio>"
    seeds: tuple[int, ...] = (0,)
    steps: int = 50
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None
    null_token: str = "zero"  # or "random"

    def signature(self, row: str, extra: dict | None = None) -> dict:
        """What must match for a saved image to be reused."""
        sig = {"row": row, **asdict(self), "seeds": list(self.seeds)}
        if row != "null":
            sig.pop("null_token")
        sig.update(extra or {})
        return sig


def text_prompt(prompt: str, label: str) -> str:
    """The prompt with the clip's label where the audio token would go."""
    if not any(p in prompt for p in PLACEHOLDERS):
        raise ValueError(f"the prompt {prompt!r} has no audio placeholder ({' or '.join(PLACEHOLDERS)})")
    return re.sub("|".join(re.escape(p) for p in PLACEHOLDERS), lambda _m: label, prompt)


class RowGenerator(Protocol):
    """Each method returns, per input, one PIL image per seed (in seed order)."""

    def audio(self, sounds: Sequence[tuple[torch.Tensor, int]], settings: GenerationSettings) -> list[list]:
        ...

    def text(self, prompts: Sequence[str], settings: GenerationSettings) -> list[list]:
        ...

    def null(self, clip_ids: Sequence[str], settings: GenerationSettings) -> list[list]:
        ...

    def describe(self, row: str) -> dict:
        """What identifies the images of `row` (stored with them, so stale images are never reused)."""
        ...


def clip_seed(clip_id: str) -> int:
    """A seed fixed by the clip's id, so a clip keeps its random null token whatever subset, shard or batch
    it is generated in."""
    return int(hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:12], 16)


def null_tokens(widths: dict[str, int], n_tokens: int, seeds: Sequence[int], kind: str, scale: dict[str, float]):
    """`{head: [len(seeds), n_tokens, D]}`: zeros, or Gaussian tokens of expected norm ~`scale[head]`, one
    per seed."""
    if kind not in ("zero", "random"):
        raise ValueError(f"null token must be 'zero' or 'random', got {kind!r}")
    out = {}
    for head, dim in widths.items():
        if kind == "zero":
            out[head] = torch.zeros(len(seeds), n_tokens, dim)
            continue
        rows = []
        for seed in seeds:
            g = torch.Generator().manual_seed((int(seed) + sum(map(ord, head))) % (2**63))
            rows.append(torch.randn(n_tokens, dim, generator=g) * (scale[head] / dim**0.5))
        out[head] = torch.stack(rows)
    return out


class AudioTokenRows:
    """`RowGenerator` over the trainer's `train.generate.AudioImageGenerator`."""

    def __init__(self, generator, widths: dict[str, int], n_tokens: int, token_scale: dict[str, float],
                 identity: dict | None = None):
        self.generator = generator
        self.widths = dict(widths)
        self.n_tokens = int(n_tokens)
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

    def audio(self, sounds, settings):
        out = []
        for wave, rate in sounds:
            out += self.generator.images_for_audio(wave, rate, prompt=settings.prompt, **self._kwargs(settings))
        return out

    def text(self, prompts, settings):
        return [self.generator.images_for_text(p, **self._kwargs(settings)) for p in prompts]

    def null(self, clip_ids, settings):
        seeds = [clip_seed(c) for c in clip_ids]
        tokens = null_tokens(self.widths, self.n_tokens, seeds, settings.null_token, self.token_scale)
        return self.generator.images_for_tokens(tokens, prompt=settings.prompt, **self._kwargs(settings))

    def describe(self, row: str) -> dict:
        # Text and null images do not depend on the Embedder: scoring a new checkpoint regenerates only the
        # audio row.
        keep = ("base_model", "lora") if row in ("text", "null") else tuple(self.identity)
        return {"widths": self.widths, "n_tokens": self.n_tokens, **{k: self.identity[k] for k in keep if k in self.identity}}


def safe_name(clip_id: str) -> str:
    """A file name for a clip id (ids may hold '/' or '@' from manifests); a short hash keeps it unique."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    return f"{base}-{hashlib.sha1(clip_id.encode('utf-8')).hexdigest()[:8]}"


def image_path(root: Path, row: str, clip_id: str, seed: int) -> Path:
    return root / row / f"{safe_name(clip_id)}_s{seed}.png"


def reference_path(root: Path, clip_id: str) -> Path:
    return root / "reference" / f"{safe_name(clip_id)}.png"


def check_signature(folder: Path, signature: dict, overwrite: bool) -> bool:
    """True when images already in `folder` were made with `signature` (so they can be reused).

    A folder made with other settings is an error unless `overwrite`, because silently mixing two settings
    in one row would make the numbers meaningless."""
    sig_file = folder / "generation.json"
    if not sig_file.is_file():
        return False
    saved = json.loads(sig_file.read_text(encoding="utf-8"))
    if saved == json.loads(json.dumps(signature)):
        return True
    if overwrite:
        return False
    changed = sorted(k for k in set(saved) | set(signature) if saved.get(k) != signature.get(k))
    raise ValueError(
        f"{folder} holds images generated with other settings (differs in: {', '.join(changed)}). "
        "Use another --out, or pass --overwrite to regenerate them."
    )


def write_signature(folder: Path, signature: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "generation.json").write_text(json.dumps(signature, indent=2, sort_keys=True), encoding="utf-8")
