"""Put a sound where `<audio>` stands in a prompt, for every text encoder of the host's CLIP.

Each CLIP-style sub-tokenizer (`SDTokenizer` family: clip_l/g/h, t5xxl, umt5, the LLM encoders, ...) takes
one of two routes:
- **token**: the embedder has a head of its name and width. The sound's vectors are written as a
  textual-inversion file in a private temporary folder, the placeholder becomes ` embedding:NAME `, and a copy
  of the sub-tokenizer looks in that folder first. Chunking, weights `(<audio>:1.3)`, long prompts and encoding
  are then exactly the host's own textual-inversion path, through the file format and prompt syntax users rely
  on, not a private method whose return shape changes between releases (it did in 0.28.0).
- **words**: no head fits, so the placeholder becomes words (what BEATs heard, or the user's fallback text).
Matching the placeholder's BPE ids instead would be brittle (`>` merges differently before `,` or `:`).
The shared CLIP object is never modified: the routes live on copies of its sub-tokenizers.

A head fits an encoder when it is named for the encoder's embedding key (`clip_l` -> head `l`, `t5xxl`,
`qwen25_7b`, `qwen3_4b`) and has its width; each head brings its own number of vectors. The name is written
with only the spaces the host's parser needs, because the BPE tokenizers of the LLM encoders (Qwen) keep
every space as a token. Two host gaps are bridged: Qwen-Image's tokenizer passes no embedding directory (the
copy gets ours), and its image-placeholder scan compares every entry with an int, which fails on a vector, so
placed vectors pass its wrapper as `{"type": "embedding"}` entries and come back as the plain vectors the
host's own `SDTokenizer` gives.
"""

from __future__ import annotations

import copy
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audiotoken_core.embedder.meta import embedding_key, head_name
from ..audiotoken_core.prompt import fits
from . import host_compat
from .embedding_file import write_embedding
from .types import PLACEHOLDER

SENTINEL = "__audiotoken__"
_PLACEHOLDER_RE = re.compile(re.escape(PLACEHOLDER), re.IGNORECASE)


@dataclass(frozen=True)
class Encoder:
    """One sub-tokenizer of a CLIP: its attribute, the head that serves it (`l`, `g`, `t5xxl`), its width."""

    attr: str
    name: str
    width: int

    def label(self) -> str:
        return f"{self.name} ({self.width})"


class _Placed(dict):
    """A placed vector while the family's tokenizer wrapper runs: an entry the host's encoders read as an
    embedding, and that no `entry == int` test chokes on."""


def missing_placeholder_message(text: str) -> str | None:
    if _PLACEHOLDER_RE.search(text or ""):
        return None
    return (f"The prompt has no {PLACEHOLDER} placeholder, so the sound would be ignored. "
            f"Write {PLACEHOLDER} where the sound belongs, e.g. 'a photo of {PLACEHOLDER}, oil painting'.")


def placeholder_count(text: str) -> int:
    return len(_PLACEHOLDER_RE.findall(text or ""))


def clip_encoders(clip) -> list[Encoder]:
    """Every sub-tokenizer of `clip` that parses `embedding:` names (the `SDTokenizer` family)."""
    from comfy.sd1_clip import SDTokenizer  # here, not at import: a host without it is reported by host_compat

    found = []
    for attr, sub in vars(clip.tokenizer).items():
        if isinstance(sub, SDTokenizer):
            found.append(Encoder(attr, head_name(sub.embedding_key), int(sub.embedding_size)))
    if not found:
        raise ValueError(
            f"This CLIP ({type(clip.tokenizer).__name__}) has no tokenizer of the CLIP/T5 family, so the sound "
            "cannot be placed in its prompt. Use the words from AudioToken Describe in the model's own prompt node.")
    return found


@dataclass(frozen=True)
class SplicePlan:
    """How one CLIP takes one embedder's tokens, worked out once (`plan_splice`): every encoder, which of them
    take the token (their attributes), and the embedder's heads (`{name: width}`, `{name: vectors a sound}`).

    Text Encode's placement, its preview and its size check all read this one plan."""

    encoders: tuple[Encoder, ...]
    routed: frozenset[str]
    head_widths: dict[str, int]
    head_vectors: dict[str, int]

    def takes_tokens(self, enc: Encoder) -> bool:
        return enc.attr in self.routed

    @property
    def widths(self) -> list[int]:
        """Every encoder's width: a prompt of this CLIP is at least this wide, side by side."""
        return [e.width for e in self.encoders]

    def describe(self, words_source: str) -> str:
        """What the node preview says: which route each encoder took, and why an encoder got words."""
        lines = []
        for e in self.encoders:
            if self.takes_tokens(e):
                n = self.head_vectors[e.name]
                lines.append(f"{e.label()}: audio token ({n} vector{'s' if n > 1 else ''})")
                continue
            why = (f" (the embedder's {e.name} head is {self.head_widths[e.name]} wide)"
                   if e.name in self.head_widths else "")
            lines.append(f"{e.label()}: {words_source}{why}")
        if not self.routed:
            heads = ", ".join(f"{k} ({v})" for k, v in sorted(self.head_widths.items()))
            lines.append(f"No encoder of this CLIP fits the embedder's token ({heads}): words only.")
        return "\n".join(lines)


def plan_splice(clip, tokens: dict[str, torch.Tensor]) -> SplicePlan:
    """The plan for `tokens` (`{head: [B, n, D]}`) in `clip`: an encoder takes the token when the embedder has
    a head of its name and width (`prompt.fits`), words otherwise."""
    host_compat.require("text encode")
    encoders = tuple(clip_encoders(clip))
    widths = {name: int(t.shape[-1]) for name, t in tokens.items()}
    routed = frozenset(e.attr for e in encoders if fits(widths, e.name, e.width))
    return SplicePlan(encoders, routed, widths, {name: int(t.shape[1]) for name, t in tokens.items()})


class _Routes:
    """A private copy of a CLIP whose sub-tokenizers each rewrite the placeholder their own way."""

    def __init__(self, clip, plan: SplicePlan, folder: str):
        self.clip = clip.clone()
        self.plan = plan
        self.folder = folder
        self.placed: dict[str, int] = {}
        self.replacement: dict[str, str] = {}
        tok = copy.copy(self.clip.tokenizer)
        for enc in plan.encoders:
            setattr(tok, enc.attr, self._routed_copy(getattr(tok, enc.attr), enc, plan.takes_tokens(enc)))
        self.clip.tokenizer = tok

    def _routed_copy(self, sub, enc: Encoder, as_token: bool):
        sub = copy.copy(sub)
        if as_token:
            theirs = sub.embedding_directory
            theirs = [theirs] if isinstance(theirs, str) else list(theirs or [])
            # A new list: the shared tokenizer's list is never touched. With None the host skips `embedding:`.
            sub.embedding_directory = [self.folder, *theirs]
        tokenize = sub.tokenize_with_weights  # bound to the copy

        def tokenize_with_weights(text, *args, **kwargs):
            if as_token:
                text = _PLACEHOLDER_RE.sub(lambda m: _spaced(m, self.replacement[enc.attr]), text)
            else:
                text = _PLACEHOLDER_RE.sub(lambda _: self.replacement[enc.attr], text)
            out = tokenize(text, *args, **kwargs)
            if as_token:
                self.placed[enc.attr] = self.placed.get(enc.attr, 0) + _count_vectors(out, self.vectors[enc.name])
                out = _mark_vectors(out)
            return out

        sub.tokenize_with_weights = tokenize_with_weights
        return sub

    def tokenize(self, text: str, vectors: dict[str, torch.Tensor], name: str, words: str) -> dict:
        self.vectors = vectors
        self.placed = {}
        self.replacement = {e.attr: f"embedding:{name}" if self.plan.takes_tokens(e) else words
                            for e in self.plan.encoders}
        tokenized = _unmark_vectors(self.clip.tokenize(text))
        expected = placeholder_count(text)
        for enc in self.plan.encoders:
            if self.plan.takes_tokens(enc):
                _check_placed(enc, self.placed.get(enc.attr, 0), expected * self.plan.head_vectors[enc.name],
                              Path(self.folder), name)
        return tokenized


def _spaced(match: re.Match, name: str) -> str:
    """`embedding:NAME` with a space before it unless one is there (the host splits the prompt at a space or
    newline before `embedding:`), and one after unless the name already ends there (a name runs to the next
    whitespace). No more: a Qwen tokenizer would read an extra space as a token of its own."""
    text, start, end = match.string, match.start(), match.end()
    before = "" if start == 0 or text[start - 1] in " \n" else " "
    after = "" if end == len(text) or text[end].isspace() else " "
    return f"{before}{name}{after}"


def _mark_vectors(tokenized) -> list:
    return [[(_Placed(type="embedding", data=e[0]), *e[1:]) if isinstance(e[0], torch.Tensor) else e for e in chunk]
            for chunk in tokenized]


def _unmark_vectors(tokenized: dict) -> dict:
    return {key: [[(e[0]["data"], *e[1:]) if isinstance(e[0], _Placed) else e for e in chunk] for chunk in value]
            if isinstance(value, list) else value for key, value in tokenized.items()}


def _count_vectors(tokenized, rows: torch.Tensor) -> int:
    """How many entries of one sub-tokenizer's output are rows of `rows` (its chunks of (token, weight, ...))."""
    return sum(1 for chunk in tokenized for entry in chunk
               if isinstance(entry[0], torch.Tensor) and any(torch.equal(entry[0], r) for r in rows))


def _check_placed(enc: Encoder, placed: int, expected: int, folder: Path, name: str) -> None:
    """A host that parses prompts or finds embeddings differently fails here, instead of drawing without the sound;
    one that refuses the embedding file itself (a model policy) says so."""
    if placed == expected:
        return
    if host_compat.refuses_embedding(folder, name, enc.width, embedding_key(enc.name)):
        raise RuntimeError(host_compat.embeddings_refused_message())
    raise RuntimeError(host_compat.changed_host_message(
        f"its tokenizer placed {placed} of {expected} audio vectors in the {enc.name} prompt (the "
        "embedding:NAME prompt syntax or the textual-inversion file lookup changed)"))


def tokenize_with_sound(clip, text: str, tokens: dict[str, torch.Tensor], words: list[str] | None = None,
                        plan: SplicePlan | None = None) -> list:
    """The host's token lists for `text`, one per sound, each encoder on its route (see the module doc).

    `tokens[name]` is `[B, n, D]`; `words[b]` (default: empty) stands in for sound b wherever no embedder head
    fits. `plan` is `plan_splice(clip, tokens)`, made here when the caller has none.
    """
    problem = missing_placeholder_message(text)
    if problem:
        raise ValueError(problem)
    plan = plan_splice(clip, tokens) if plan is None else plan
    batch = next(iter(tokens.values())).shape[0]
    words = list(words) if words is not None else [""] * batch
    if len(words) != batch:
        raise ValueError(f"{len(words)} word prompts for {batch} sounds")
    per_sound = []
    with tempfile.TemporaryDirectory(prefix="audiotoken_embeddings_") as folder:
        routes = _Routes(clip, plan, folder)
        for b in range(batch):
            name = f"{SENTINEL}{b}"
            vectors = {e.name: tokens[e.name][b].detach().to("cpu", torch.float32) for e in plan.encoders
                       if plan.takes_tokens(e)}
            if vectors:
                write_embedding(Path(folder) / f"{name}.safetensors", {k: v[None] for k, v in vectors.items()}, 0)
            per_sound.append(routes.tokenize(text, vectors, name, words[b]))
    return per_sound


def encode_with_tokens(clip, text: str, tokens: dict[str, torch.Tensor], words: list[str] | None = None,
                       progress=None, plan: SplicePlan | None = None) -> list:
    """CONDITIONING for `text` with the sound in every placeholder: B conditionings stacked on the batch axis
    (cond and pooled alike), so a latent batch of B gives one image per sound. `progress(done, total)` is
    called after each text-encoder run (a schedule's thousands of keyframes take minutes)."""
    tokenized = tokenize_with_sound(clip, text, tokens, words, plan)
    encoded = []
    for t in tokenized:
        encoded.append(clip.encode_from_tokens_scheduled(t))
        if progress is not None:
            progress(len(encoded), len(tokenized))
    return stack_conditionings(encoded)


def stack_conditionings(items: list[list]) -> list:
    """Concatenate same-shaped CONDITIONING lists along the batch axis, entry by entry."""
    if len(items) == 1:
        return items[0]
    out = []
    for entries in zip(*items):
        conds = [e[0] for e in entries]
        if len({tuple(c.shape[1:]) for c in conds}) > 1:
            raise ValueError(
                "The sounds (or keyframes) of this batch give prompts of different lengths for this text "
                f"encoder ({sorted({c.shape[1] for c in conds})} positions): their words push some prompts past "
                "75 tokens. They cannot share one batch; shorten the prompt, encode the sounds one at a time, or "
                "give all of them the same fallback text.")
        extras = dict(entries[0][1])
        for key, value in entries[0][1].items():
            values = [e[1].get(key) for e in entries]
            if (isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == conds[0].shape[0]
                    and all(isinstance(v, torch.Tensor) and v.shape == value.shape for v in values)):
                extras[key] = torch.cat(values, dim=0)
        out.append([torch.cat(conds, dim=0), extras])
    return out
