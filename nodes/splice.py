"""Put audio token vectors where `<audio>` stands in a prompt, through ComfyUI's own embedding path.

Matching the placeholder's BPE ids is brittle (`>` merges differently before `,` or `:`), so the text is
rewritten to ` embedding:__audiotoken__ ` and a private copy of each sub-tokenizer answers that name with
our vectors. Chunking, weights `(<audio>:1.3)`, long prompts and encoding are then exactly what the host
does for a textual-inversion file used as `embedding:NAME`. The shared CLIP object is never modified.
"""

from __future__ import annotations

import copy
import re

import torch
from comfy.sd1_clip import SDTokenizer

from .types import PLACEHOLDER

SENTINEL = "__audiotoken__"
_PLACEHOLDER_RE = re.compile(re.escape(PLACEHOLDER), re.IGNORECASE)
# Family names only make errors readable; the check itself compares head names and widths.
_FAMILIES = {("l",): "SD1.x", ("h",): "SD2.x", ("g", "l"): "SDXL", ("g",): "SDXL refiner / Stable Cascade"}


def missing_placeholder_message(text: str) -> str | None:
    if _PLACEHOLDER_RE.search(text or ""):
        return None
    return (f"The prompt has no {PLACEHOLDER} placeholder, so the sound would be ignored. "
            f"Write {PLACEHOLDER} where the sound belongs, e.g. 'a photo of {PLACEHOLDER}, oil painting'.")


def rewrite_prompt(text: str) -> str:
    """Replace every placeholder with an embedding reference the host tokenizer understands.

    The leading space is required by the host's split regex (' embedding:'), the trailing one ends the name.
    """
    problem = missing_placeholder_message(text)
    if problem:
        raise ValueError(problem)
    return _PLACEHOLDER_RE.sub(f" embedding:{SENTINEL} ", text)


def clip_heads(clip) -> dict[str, tuple[str, int]]:
    """`{attribute: (clip name, width)}` for every sub-tokenizer that accepts embeddings (clip_l, clip_g, ...)."""
    heads = {}
    for attr, sub in vars(clip.tokenizer).items():
        if isinstance(sub, SDTokenizer):
            key = sub.embedding_key
            heads[attr] = (key[len("clip_"):] if key.startswith("clip_") else key, int(sub.embedding_size))
    if not heads:
        raise ValueError(
            f"This CLIP ({type(clip.tokenizer).__name__}) has no CLIP-style tokenizer that accepts embeddings, "
            "so audio tokens cannot be placed in its prompt. Use an SD1.x, SD2.x or SDXL checkpoint.")
    return heads


def _describe(pairs) -> str:
    pairs = sorted(pairs)
    names = tuple(n for n, _ in pairs)
    family = _FAMILIES.get(names)
    text = " + ".join(f"{n} ({w})" for n, w in pairs)
    return f"{family}: {text}" if family else text


def check_heads(clip, tokens: dict[str, torch.Tensor]) -> dict[str, tuple[str, int]]:
    """Every CLIP head must find a token head of its width; otherwise name both sides in the error."""
    heads = clip_heads(clip)
    have = {k: int(v.shape[-1]) for k, v in tokens.items()}
    wrong = [(n, w) for n, w in heads.values() if have.get(n) != w]
    if wrong:
        raise ValueError(
            f"The audio tokens do not fit this CLIP. The CLIP needs {_describe(heads.values())}; "
            f"the embedder produced {_describe(have.items())}. Load an embedder trained for this checkpoint "
            f"family (missing or wrong: {', '.join(f'{n} {w}' for n, w in wrong)}).")
    return heads


def private_clip(clip, vectors: dict[str, torch.Tensor], heads: dict[str, tuple[str, int]]):
    """A clone of `clip` whose tokenizer resolves `embedding:__audiotoken__` to `vectors[name]` ([n, D])."""
    c = clip.clone()
    tok = copy.copy(c.tokenizer)
    for attr, (name, _) in heads.items():
        sub = copy.copy(getattr(tok, attr))
        sub._try_get_embedding = _hooked_lookup(sub._try_get_embedding, vectors[name])
        if sub.embedding_directory is None:
            # The host skips `embedding:` parsing entirely when there is no embeddings directory.
            sub.embedding_directory = []
        setattr(tok, attr, sub)
    c.tokenizer = tok
    return c


def _hooked_lookup(original, vector: torch.Tensor):
    vector = vector.detach().to("cpu", torch.float32)

    def lookup(name_and_rest: str):
        words = name_and_rest.split()
        if words and words[0] == SENTINEL:
            return vector.clone(), " ".join(words[1:])
        return original(name_and_rest)

    return lookup


def encode_with_tokens(clip, text: str, tokens: dict[str, torch.Tensor]) -> list:
    """CONDITIONING for `text` with every placeholder replaced by the sound's tokens.

    `tokens[name]` is `[B, n, D]`; the result holds B conditionings stacked on the batch axis (cond and
    pooled alike), so a latent batch of B gives one image per sound.
    """
    rewritten = rewrite_prompt(text)
    heads = check_heads(clip, tokens)
    batch = next(iter(tokens.values())).shape[0]
    per_sound = []
    for b in range(batch):
        c = private_clip(clip, {k: v[b] for k, v in tokens.items()}, heads)
        per_sound.append(c.encode_from_tokens_scheduled(c.tokenize(rewritten)))
    return stack_conditionings(per_sound)


def stack_conditionings(items: list[list]) -> list:
    """Concatenate same-shaped CONDITIONING lists along the batch axis, entry by entry."""
    if len(items) == 1:
        return items[0]
    out = []
    for entries in zip(*items):
        conds = [e[0] for e in entries]
        extras = dict(entries[0][1])
        for key, value in entries[0][1].items():
            values = [e[1].get(key) for e in entries]
            if (isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == conds[0].shape[0]
                    and all(isinstance(v, torch.Tensor) and v.shape == value.shape for v in values)):
                extras[key] = torch.cat(values, dim=0)
        out.append([torch.cat(conds, dim=0), extras])
    return out
