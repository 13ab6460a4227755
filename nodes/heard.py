"""What BEATs heard in the windows AudioToken Encode used: label words per token row, for Text Encode's
word route and for the Encode node's preview. Needs a BEATs with its AudioSet head; without one, nothing."""

from __future__ import annotations

from ..audiotoken_core.describe import classify_audio
from ..audiotoken_core.labels import (DEFAULT_K, DEFAULT_THRESHOLD, beats_classes, labels_text, scores_text,
                                      top_labels)


def can_hear(model) -> bool:
    """Whether the model's BEATs carries the AudioSet head that names sounds."""
    return getattr(model.tokenizer.beats, "predictor", None) is not None


def no_head_message(model) -> str:
    return f"{model.encoder_name} has no AudioSet head, so no words were heard."


def heard_words(model, waveform, sample_rate: int, mode: str, start_s: float, window_s: float,
                rows: int, batch_windows: int) -> tuple[list[str] | None, str]:
    """`(words per token row, preview text)`; `(None, reason)` when BEATs has no head or rows do not line up."""
    beats = model.tokenizer.beats
    if not can_hear(model):
        return None, no_head_message(model)
    if mode == "first":
        first = int(round(start_s * sample_rate))
        waveform = waveform[..., first : first + int(round(window_s * sample_rate))]
    try:
        heard = classify_audio(beats, waveform, sample_rate, mode="windows" if mode == "windows" else "mean",
                               window_s=window_s, batch_windows=batch_windows)
    except ValueError as exc:  # too short for one BEATs patch, for instance
        return None, f"No words heard: {exc}"
    if heard.probs.shape[0] != rows:
        return None, f"What BEATs heard ({heard.probs.shape[0]} rows) does not line up with {rows} token sets."
    words, lines = name_rows(beats, heard.probs)
    if len(lines) > 1:
        lines = [f"{i + 1}: {line}" for i, line in enumerate(lines)]
    return words, "Heard: " + "\n".join(lines)


def name_rows(beats, probs) -> tuple[list[str], list[str]]:
    """For AudioSet probabilities `[R, C]`: the label words of each row ("" where nothing scored clearly),
    and a preview line of each with scores."""
    classes = beats_classes(beats)
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

