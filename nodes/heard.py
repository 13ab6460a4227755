"""What BEATs heard, as words: per token row for Text Encode's word route, and as the nodes' preview lines.

The probabilities come from the pass that made the tokens (`AudioTokenModel.encode(..., heard=True)`), so
naming the sounds costs no second BEATs run. A BEATs without its AudioSet head hears nothing.
"""

from __future__ import annotations

from ..audiotoken_core.labels import DEFAULT_K, DEFAULT_THRESHOLD, labels_text, scores_text, top_labels
from .types import HeardRows


def can_hear(model) -> bool:
    """Whether the model's BEATs carries the AudioSet head that names sounds."""
    return model.head_problem() is None


def no_head_message(model) -> str:
    return f"{model.encoder_name} has no AudioSet head, so no words were heard."


def heard_rows(model, probs) -> tuple[HeardRows | None, str]:
    """`(what each token row heard, preview text)` for probabilities `[R, C]`; `(None, reason)` without them."""
    if probs is None:
        return None, no_head_message(model)
    words, lines = name_rows(model, probs)
    if len(lines) > 1:
        lines = [f"{i + 1}: {line}" for i, line in enumerate(lines)]
    return HeardRows(words, probs), "Heard: " + "\n".join(lines)


def name_rows(model, probs) -> tuple[list[str], list[str]]:
    """For AudioSet probabilities `[R, C]`: the label words of each row ("" where nothing scored clearly),
    and a preview line of each with scores."""
    classes = model.classes()
    tops = [top_labels(row, classes, DEFAULT_K, DEFAULT_THRESHOLD) for row in probs]
    return [labels_text(top) for top in tops], [scores_text(top) or "nothing clear" for top in tops]


def heard_over_time(words: list[str], key_times, most: int = 40) -> str:
    """Runs of keyframes that heard the same words, as "0–2.5 s: dog, bark" lines (the first `most` of them)."""
    lines, first = [], 0
    for k in range(1, len(words) + 1):
        if k == len(words) or words[k] != words[first]:
            span = f"{float(key_times[first]):g} s" if k - 1 == first else \
                f"{float(key_times[first]):g}–{float(key_times[k - 1]):g} s"
            lines.append(f"{span}: {words[first] or 'nothing clear'}")
            first = k
    more = f"\n… and {len(lines) - most} more changes" if len(lines) > most else ""
    return "\n".join(lines[:most]) + more
