"""The words of the training-free `labels` rows: what BEATs's own AudioSet head hears in a clip.

The same words AudioToken Describe gives with its defaults (`mode` mean over 10 s windows, the best `k` = 3
classes scoring at least `threshold` = 0.1, nothing excluded), so that a row scores what a user of that node
would put in a prompt. A clip where no class reaches the threshold gets its single best class instead (the
node would give an empty text): every clip then has a prompt, and the row covers every clip.
"""

from __future__ import annotations

from audiotoken_core.labels import DEFAULT_K, DEFAULT_THRESHOLD, beats_classes, labels_text, top_labels
from audiotoken_core.pipeline import AudioTokenizer



def check_head(beats, rows) -> None:
    """ValueError naming the rows when this BEATs cannot name sounds (no AudioSet head in its checkpoint)."""
    if beats is None:
        raise ValueError(f"the BEATs-label rows ({', '.join(rows)}) need a BEATs checkpoint (--beats)")
    problem = beats.head_problem()
    if problem is not None:
        raise ValueError(f"the BEATs-label rows ({', '.join(rows)}) need the AudioSet head of a fine-tuned BEATs, "
                         f"but {problem}; or leave them out of --rows")


def label_words(beats, waveform, sample_rate: int, k: int = DEFAULT_K, threshold: float = DEFAULT_THRESHOLD) -> str:
    """"dog, bark, animal": the best classes of the whole clip, best first."""
    probs = AudioTokenizer(beats).encode(waveform, sample_rate, mode="mean", heard=True).heard[0]
    classes = beats_classes(beats)
    return labels_text(top_labels(probs, classes, k, threshold) or top_labels(probs, classes, 1))
