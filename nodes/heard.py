"""What BEATs heard in the windows AudioToken Encode used: label words per token row, for Text Encode's
word route and for the Encode node's preview. Needs a BEATs with its AudioSet head; without one, nothing."""

from __future__ import annotations

from ..audiotoken_core.describe import classify_audio
from ..audiotoken_core.labels import beats_classes, labels_text, scores_text, top_labels

TOP_K, THRESHOLD = 3, 0.1


def heard_words(model, waveform, sample_rate: int, mode: str, start_s: float, window_s: float,
                rows: int, batch_windows: int) -> tuple[list[str] | None, str]:
    """`(words per token row, preview text)`; `(None, reason)` when BEATs has no head or rows do not line up."""
    beats = model.tokenizer.beats
    if getattr(beats, "predictor", None) is None:
        return None, f"{model.encoder_name} has no AudioSet head, so no words were heard."
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
    classes = beats_classes(beats)
    tops = [top_labels(row, classes, TOP_K, THRESHOLD) for row in heard.probs]
    lines = [scores_text(top) or "nothing clear" for top in tops]
    if len(lines) > 1:
        lines = [f"{i + 1}: {line}" for i, line in enumerate(lines)]
    return [labels_text(top) for top in tops], "Heard: " + "\n".join(lines)

