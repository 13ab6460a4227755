"""Fingerprints of the scoring models: a model's `key`, under which `features.FeatureCache` stores its features.

A key depends on the model's configuration and weights, never on where its files live."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_SAMPLE = 8 << 20


def fingerprint(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def content_sample_digest(path: Path) -> str:
    """sha1 of the file's size, first 8 MiB and last 8 MiB: two checkpoints of one architecture (a
    fine-tune, another seed) differ there, while hashing gigabytes of weights on every run would cost
    more than the cache saves."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> list:
    """Config texts plus a content digest of each weight file; independent of where the folder lives."""
    parts = []
    for name in sorted(os.listdir(folder)):
        p = folder / name
        if not p.is_file():
            continue
        if name.endswith(".json"):
            parts.append((name, p.read_text(encoding="utf-8", errors="replace")))
        elif name.endswith((".safetensors", ".bin", ".pt", ".pth")):
            parts.append((name, content_sample_digest(p)))
    return parts


def file_fingerprint(path: Path) -> list:
    return [content_sample_digest(path)]
