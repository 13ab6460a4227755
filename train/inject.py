"""Writing audio tokens into a text encoder's *input* embeddings at the placeholder, with gradients: the helpers
every family's prompt encoding (train/families/) is made of.

The prompt is tokenized around the placeholder (`<*>` or `<audio>`), which is replaced by `n_tokens`
positions holding an ordinary token id; a forward hook on the encoder's token-embedding table then
overwrites those rows with the audio tokens. So the frozen tokenizer and embedding table stay
untouched, gradients flow through the frozen encoder into the Embedder, and CLIP's EOS pooling
(SDXL's pooled embedding) is not confused by an out-of-vocabulary id.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import torch

from audiotoken_core.prompt import PLACEHOLDERS

_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")


def tokenize_with_placeholder(tokenizer, prompt: str, n_tokens: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids[L], is_token[L])` padded to the tokenizer's length; `is_token` marks audio positions.

    A prompt without a placeholder has no audio positions (used for the unconditional prompt).
    """
    max_len = int(tokenizer.model_max_length)
    ids = [tokenizer.bos_token_id]
    marks = [False]
    filler = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    for piece in _SPLIT.split(prompt):
        if piece in PLACEHOLDERS:
            ids += [filler] * n_tokens
            marks += [True] * n_tokens
        elif piece.strip():
            piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
            ids += piece_ids
            marks += [False] * len(piece_ids)
    if len(ids) + 1 > max_len:
        if any(marks[max_len - 1 :]):
            raise ValueError(f"prompt too long: the placeholder falls beyond CLIP's {max_len} tokens: {prompt!r}")
        ids, marks = ids[: max_len - 1], marks[: max_len - 1]
    ids.append(tokenizer.eos_token_id)
    marks.append(False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids += [pad] * (max_len - len(ids))
    marks += [False] * (max_len - len(marks))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(marks, dtype=torch.bool)


def count_for(n_tokens: int | dict[str, int], head: str) -> int:
    """Tokens per placeholder for `head`: one count for every head, or `{head: count}`."""
    return int(n_tokens) if isinstance(n_tokens, int) else int(n_tokens[head])


def count_placeholders(prompt: str) -> int:
    return sum(1 for piece in _SPLIT.split(prompt) if piece in PLACEHOLDERS)


def input_embeddings(text_encoder) -> torch.nn.Module:
    """The token-embedding table the encoder's forward really calls. T5EncoderModel's `get_input_embeddings()`
    (`shared`) is, in transformers 5, a module apart from the `encoder.embed_tokens` it runs (same weights), so
    a hook there would never fire."""
    table = getattr(getattr(text_encoder, "encoder", None), "embed_tokens", None)
    return table if isinstance(table, torch.nn.Embedding) else text_encoder.get_input_embeddings()


@contextmanager
def tokens_written(text_encoder, is_token: torch.Tensor, tokens: torch.Tensor | None):
    """While active, the encoder's token embeddings at `is_token[B, L]` become `tokens[B, k, D]` (in order)."""
    if tokens is None or not bool(is_token.any()):
        yield
        return
    table = input_embeddings(text_encoder)
    per_prompt = is_token.sum(dim=1)
    if not bool((per_prompt == per_prompt[0]).all()) or int(per_prompt[0]) % tokens.shape[1]:
        raise ValueError(
            f"each prompt needs the same number of placeholder positions, a multiple of {tokens.shape[1]} tokens"
        )
    reps = int(per_prompt[0]) // tokens.shape[1]
    values = tokens.repeat(1, reps, 1) if reps > 1 else tokens

    def hook(module, args, output):
        out = output.clone()
        out[is_token.to(out.device)] = values.reshape(-1, values.shape[-1]).to(device=out.device, dtype=out.dtype)
        return out

    handle = table.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def label_token_embeddings(tokenizer, text_encoder, labels: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CLIP *input* embedding of each label's word pieces (BOS/EOS stripped) -> `([B, D], has_label[B])`.

    This is the target of the optional class loss (the original's `txt_embeddings[ids].mean(0)`).
    """
    table = text_encoder.get_input_embeddings().weight
    rows, has = [], []
    for label in labels:
        ids = tokenizer(label, add_special_tokens=False)["input_ids"] if label else []
        if ids:
            rows.append(table[torch.tensor(ids, device=table.device)].float().mean(0))
            has.append(True)
        else:
            rows.append(torch.zeros(table.shape[1], device=table.device))
            has.append(False)
    return torch.stack(rows).detach(), torch.tensor(has, device=table.device)


# A stand-in is an ordinary word the placeholder is spelled as before tokenizing, so the text around it
# tokenizes exactly as the pipeline's own tokenizer call would; its rows are then overwritten.
_STAND_INS = ("dog", "cat", "the", "a", "x")


def stand_in_word(tokenizer) -> str:
    """The first of a few common words that this tokenizer makes one token of, between other words."""
    for word in _STAND_INS:
        text = f"of {word} of"
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        start = text.index(word, 3)
        if len(_overlapping(enc["offset_mapping"], [(start, start + len(word))])) == 1:
            return word
    raise ValueError(f"{type(tokenizer).__name__} splits every stand-in word ({', '.join(_STAND_INS)}) into pieces")


def _overlapping(offsets, spans) -> list[int]:
    return [i for i, (a, b) in enumerate(offsets) if b > a and any(a < e and b > s for s, e in spans)]


def tokenize_marked(tokenizer, text: str, n_tokens: int = 1,
                    **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(input_ids[1, L], attention_mask[1, L], is_token[1, L])` of `text` tokenized as the pipeline does
    (`kwargs`: its padding, max_length, truncation), with each placeholder spelled as `n_tokens` stand-in
    words whose positions `is_token` marks. Works for any fast tokenizer (CLIP, T5, Qwen), templates included."""
    word = stand_in_word(tokenizer)
    parts, spans, pos = [], [], 0
    for piece in _SPLIT.split(text):
        if piece in PLACEHOLDERS:
            for k in range(n_tokens):
                # a space before each copy, unless at the start or already there, keeps each a word of its own
                sep = "" if (pos == 0 or (parts and parts[-1][-1:].isspace())) else " "
                parts.append(sep + word)
                spans.append((pos + len(sep), pos + len(sep) + len(word)))
                pos += len(sep) + len(word)
        else:
            parts.append(piece)
            pos += len(piece)
    enc = tokenizer("".join(parts), return_offsets_mapping=True, return_tensors="pt", **kwargs)
    marks = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
    where = _overlapping(enc["offset_mapping"][0].tolist(), spans)
    if len(where) != len(spans):
        raise ValueError(f"the placeholder of {text!r} does not fit: {len(spans)} token positions wanted, "
                         f"{len(where)} found (too long a prompt for {type(tokenizer).__name__}?)")
    marks[0, where] = True
    return enc["input_ids"], enc["attention_mask"], marks
