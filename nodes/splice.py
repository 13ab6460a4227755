"""Put audio token vectors where `<audio>` stands in a prompt, through ComfyUI's own embedding path.

Matching the placeholder's BPE ids is brittle (`>` merges differently before `,` or `:`), so each sound's
tokens are written as a textual-inversion file in a private temporary folder, the text is rewritten to
` embedding:NAME `, and a copy of each sub-tokenizer looks in that folder first. Chunking, weights
`(<audio>:1.3)`, long prompts and encoding are then exactly what the host does for a textual-inversion
file, through the file format and prompt syntax users rely on, not a private method whose return shape
changes between releases (it did in 0.28.0). The shared CLIP object is never modified.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

import torch

from . import host_compat
from .embedding_file import write_embedding
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


def rewrite_prompt(text: str, name: str = SENTINEL) -> str:
    """Replace every placeholder with an embedding reference the host tokenizer understands.

    The leading space is required by the host's split regex (' embedding:'), the trailing one ends the name.
    """
    problem = missing_placeholder_message(text)
    if problem:
        raise ValueError(problem)
    return _PLACEHOLDER_RE.sub(f" embedding:{name} ", text)


def placeholder_count(text: str) -> int:
    return len(_PLACEHOLDER_RE.findall(text or ""))


def clip_heads(clip) -> dict[str, tuple[str, int]]:
    """`{attribute: (clip name, width)}` for every sub-tokenizer that accepts embeddings (clip_l, clip_g, ...)."""
    from comfy.sd1_clip import SDTokenizer  # here, not at import: a host without it is reported by host_compat

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


def private_clip(clip, folder: str, heads: dict[str, tuple[str, int]]):
    """A clone of `clip` whose CLIP-style sub-tokenizers look for embeddings in `folder` before the user's."""
    c = clip.clone()
    tok = copy.copy(c.tokenizer)
    for attr in heads:
        sub = copy.copy(getattr(tok, attr))
        theirs = sub.embedding_directory
        theirs = [theirs] if isinstance(theirs, str) else list(theirs or [])
        # A new list: the shared tokenizer's list is never touched. With None the host skips `embedding:`.
        sub.embedding_directory = [folder, *theirs]
        setattr(tok, attr, sub)
    c.tokenizer = tok
    return c


def encode_with_tokens(clip, text: str, tokens: dict[str, torch.Tensor]) -> list:
    """CONDITIONING for `text` with every placeholder replaced by the sound's tokens.

    `tokens[name]` is `[B, n, D]`; the result holds B conditionings stacked on the batch axis (cond and
    pooled alike), so a latent batch of B gives one image per sound.
    """
    host_compat.require("text encode")
    rewrite_prompt(text)  # a missing placeholder fails before any file is written
    heads = check_heads(clip, tokens)
    batch = next(iter(tokens.values())).shape[0]
    per_sound = []
    with tempfile.TemporaryDirectory(prefix="audiotoken_embeddings_") as folder:
        c = private_clip(clip, folder, heads)
        for b in range(batch):
            name = f"{SENTINEL}{b}"
            write_embedding(Path(folder) / f"{name}.safetensors", tokens, b)
            tokenized = c.tokenize(rewrite_prompt(text, name))
            ours = {n: tokens[n][b].detach().to("cpu", torch.float32) for n, _ in heads.values()}
            check_placed(tokenized, ours, placeholder_count(text))
            per_sound.append(c.encode_from_tokens_scheduled(tokenized))
    return stack_conditionings(per_sound)


def check_placed(tokenized: dict, vectors: dict[str, torch.Tensor], placeholders: int) -> None:
    """Each head's prompt must hold every row of `vectors[name]` once per placeholder.

    A host that parses prompts or finds embeddings differently fails here with a message that says so,
    instead of silently drawing without the sound.
    """
    for name, rows in vectors.items():
        chunks = tokenized.get(name, [])
        placed = sum(1 for chunk in chunks for entry in chunk
                     if isinstance(entry[0], torch.Tensor) and any(torch.equal(entry[0], r) for r in rows))
        expected = placeholders * rows.shape[0]
        if placed != expected:
            raise RuntimeError(host_compat.changed_host_message(
                f"its tokenizer placed {placed} of {expected} audio vectors in the {name} prompt (the "
                "embedding:NAME prompt syntax or the textual-inversion file lookup changed)"))


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
