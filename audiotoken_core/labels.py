"""AudioSet class names for the BEATs head, and "the top labels with their scores" for any node to show.

The head's output `i` is the class whose MID the checkpoint's `label_dict[i]` names; the shipped ontology file
(`data/audioset_labels.csv`, see `data/README.md`) turns MIDs into display names. Display names may hold
synonyms after commas ("Male speech, man speaking"), so a class is also given one prompt word.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import torch

ONTOLOGY_CSV = Path(__file__).parent / "data" / "audioset_labels.csv"
# What a sound is named by unless the user says otherwise: Describe's defaults, the words Encode, Schedule and
# Text Encode use, and the evaluation's label rows.
DEFAULT_K = 3
DEFAULT_THRESHOLD = 0.1


@dataclass(frozen=True)
class AudioSetClass:
    """One output of the head: its AudioSet MID (None if unknown), display name and prompt word."""

    mid: str | None
    name: str
    word: str

    def synonyms(self) -> list[str]:
        """The display name's comma-separated parts, lower case: what an exclusion word is matched against."""
        return [part.strip().lower() for part in self.name.split(",") if part.strip()]


@dataclass(frozen=True)
class ScoredLabel:
    index: int
    label: AudioSetClass
    score: float


@lru_cache(maxsize=1)
def ontology() -> tuple[tuple[str, str], ...]:
    """`(mid, display_name)` of the 527 AudioSet classes, in the file's index order."""
    with open(ONTOLOGY_CSV, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: int(row["index"]))
    return tuple((row["mid"], row["display_name"]) for row in rows)


@lru_cache(maxsize=1)
def _names_by_mid() -> dict[str, str]:
    return dict(ontology())


def read_label_dict(raw, source: str = "checkpoint") -> dict[int, str] | None:
    """A file's `label_dict` (head index -> MID) as `{int: str}`; None when the file has none.

    Official `.pt` files hold a dict with int keys; our `.safetensors` metadata holds it as JSON, where keys are
    strings.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: label_dict is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: label_dict must map class index to AudioSet MID, got {type(raw).__name__}")
    try:
        parsed = {int(index): mid for index, mid in raw.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{source}: label_dict keys must be class indices, got {sorted(map(str, raw))[:5]}") from None
    if not all(isinstance(mid, str) for mid in parsed.values()):
        raise ValueError(f"{source}: label_dict values must be AudioSet MIDs (strings)")
    return parsed


def label_dict_json(label_dict: dict[int, str]) -> str:
    return json.dumps({str(index): mid for index, mid in sorted(label_dict.items())})


def head_classes(num_classes: int, label_dict: dict[int, str] | None = None) -> list[AudioSetClass]:
    """What each of the head's `num_classes` outputs is.

    Without a `label_dict` the ontology file's order is assumed (for 527 outputs). A MID the ontology does not
    know keeps the MID as its name; an output with no MID at all is called "class i".
    """
    known = ontology()
    if label_dict is not None:
        mids = [label_dict.get(index) for index in range(num_classes)]
    elif num_classes == len(known):
        mids = [mid for mid, _ in known]
    else:
        mids = [None] * num_classes
    names = _names_by_mid()
    display = [names.get(mid, mid) if mid is not None else f"class {index}" for index, mid in enumerate(mids)]
    words = _prompt_words(display)
    return [AudioSetClass(mid, name, word) for mid, name, word in zip(mids, display, words)]


def beats_classes(beats) -> list[AudioSetClass]:
    """What each output of this BEATs' AudioSet head is (raises, saying why, when it has no head)."""
    return head_classes(beats.audioset_head().out_features, beats.label_dict)


def _prompt_words(names: Sequence[str]) -> list[str]:
    """The first synonym of each name, lower case ("vehicle horn"); the whole name where that first synonym
    is shared ("inside, small room" / "inside, public space")."""
    first = [name.split(",")[0].strip().lower() for name in names]
    counts = Counter(first)
    return [word if counts[word] == 1 else name.lower() for word, name in zip(first, names)]


def parse_words(text: str | None) -> set[str]:
    """Comma-separated words ("Speech, Music") as a lower-case set."""
    return {part.strip().lower() for part in (text or "").replace("\n", ",").split(",") if part.strip()}


def top_labels(
    probs: torch.Tensor,
    classes: Sequence[AudioSetClass],
    k: int = 3,
    threshold: float = 0.0,
    exclude: Iterable[str] = (),
) -> list[ScoredLabel]:
    """The `k` best classes of one row of probabilities, best first, that score at least `threshold`.

    A class is left out when one of its synonyms is in `exclude` (lower case), before the best `k` are taken,
    so the next ones fill in.
    """
    if probs.dim() != 1 or probs.shape[0] != len(classes):
        raise ValueError(f"expected {len(classes)} probabilities for one sound, got shape {tuple(probs.shape)}")
    words = {w.strip().lower() for w in exclude}
    scores = probs.detach().float().cpu()
    out = []
    for index in torch.argsort(scores, descending=True, stable=True).tolist():
        score = float(scores[index])
        if len(out) == k or score < threshold:
            break
        if words.intersection(classes[index].synonyms()):
            continue
        out.append(ScoredLabel(index, classes[index], score))
    return out


def labels_text(labels: Sequence[ScoredLabel]) -> str:
    """The prompt text: "dog, bark, animal"."""
    return ", ".join(item.label.word for item in labels)


def scores_text(labels: Sequence[ScoredLabel]) -> str:
    """For people: "Dog 0.91 | Bark 0.84 | Animal 0.80" (display names, which may contain commas)."""
    return " | ".join(f"{item.label.name} {item.score:.2f}" for item in labels)
