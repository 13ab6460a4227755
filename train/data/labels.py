"""Optional `labels.csv` next to a pairs or video folder: `stem,label` rows, header optional."""

from __future__ import annotations

import csv
from pathlib import Path


def read_labels(folder: Path) -> dict[str, str]:
    path = folder / "labels.csv"
    if not path.is_file():
        return {}
    labels: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if len(row) < 2:
                continue
            key, label = row[0].strip(), row[1].strip()
            if i == 0 and key.lower() in ("id", "stem", "file", "name") and label.lower() in ("label", "class"):
                continue
            labels[Path(key).stem if Path(key).suffix else key] = label
    return labels
