"""Batched feature extraction with an on-disk cache keyed by (model fingerprint, item content hash).

The cache is what makes re-scoring cheap: reference frames and audio keep their hash across runs, so a
new generation only pays for its own images. It is also how shards meet: every process writes the items
of its shard, and after a barrier the main process reads all of them back, so nothing has to be gathered
through collective ops. Writes are atomic (temp file + rename), which makes concurrent writers of the same
item harmless.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiotoken_core.safeload import atomic_write

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (hex, 32 chars): a saved PNG or an audio file is identified by content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()[:32]


def text_digest(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:32]


class FeatureCache:
    """`root/<model key>/<hash[:2]>/<hash>.npy`, one float32 vector per item."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, model_key: str, item_key: str) -> Path:
        return self.root / model_key / item_key[:2] / f"{item_key}.npy"

    def get(self, model_key: str, item_key: str) -> np.ndarray | None:
        p = self.path(model_key, item_key)
        if not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # a torn file from a killed run: recompute it

    def put(self, model_key: str, item_key: str, vector: np.ndarray) -> None:
        array = np.asarray(vector, dtype=np.float32)

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: given a path, np.save would append ".npy" to the name
                np.save(f, array, allow_pickle=False)

        # No fsync: an entry torn by a crash reads as missing and is recomputed, while a sync per vector would
        # cost more than embedding it.
        atomic_write(self.path(model_key, item_key), save, fsync=False)

    def has(self, model_key: str, item_key: str) -> bool:
        return self.path(model_key, item_key).is_file()


@dataclass(frozen=True)
class Item:
    """Something to embed: its content hash and how to load it (a PIL image, a waveform, a string...)."""

    key: str
    load: Callable[[], object]


def shard(items: Sequence, index: int, count: int) -> list:
    """Contiguous, near-equal slices; every item lands in exactly one shard."""
    n = len(items)
    lo, hi = (n * index) // count, (n * (index + 1)) // count
    return list(items[lo:hi])


def compute_missing(
    encode: Callable[[list], np.ndarray],
    model_key: str,
    items: Sequence[Item],
    cache: FeatureCache,
    batch_size: int,
    shard_index: int = 0,
    shard_count: int = 1,
    desc: str = "features",
    show_progress: bool = True,
) -> int:
    """Embed the items of this shard that the cache lacks; returns how many were computed.

    `encode(list of loaded objects) -> [B, D]`. Duplicated keys are computed once."""
    unique = list({it.key: it for it in items}.values())
    todo = [it for it in shard(unique, shard_index, shard_count) if not cache.has(model_key, it.key)]
    if not todo:
        return 0
    from tqdm.auto import tqdm

    with tqdm(total=len(todo), desc=desc, unit="item", disable=not show_progress, leave=False) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            vectors = np.asarray(encode([it.load() for it in chunk]))
            if vectors.shape[0] != len(chunk):
                raise RuntimeError(f"{desc}: encoder returned {vectors.shape[0]} vectors for {len(chunk)} items")
            for it, vec in zip(chunk, vectors):
                cache.put(model_key, it.key, vec)
            bar.update(len(chunk))
    return len(todo)


def load_features(model_key: str, keys: Sequence[str], cache: FeatureCache) -> np.ndarray:
    """`[N, D]` in the order of `keys`; a missing entry is an error naming it (a shard that failed)."""
    rows = []
    for k in keys:
        v = cache.get(model_key, k)
        if v is None:
            raise RuntimeError(
                f"feature {k} for model {model_key} is missing from the cache {cache.root}; "
                "a process may have failed while extracting its shard"
            )
        rows.append(v)
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.stack(rows)


def extract(
    encode: Callable[[list], np.ndarray],
    model_key: str,
    items: Sequence[Item],
    cache: FeatureCache,
    batch_size: int,
    desc: str = "features",
    show_progress: bool = True,
) -> np.ndarray:
    """Single-process convenience: compute what is missing, then return all rows in item order."""
    compute_missing(encode, model_key, items, cache, batch_size, desc=desc, show_progress=show_progress)
    return load_features(model_key, [it.key for it in items], cache)


class Digests:
    """File content hashes, memoised: every image is hashed at most once per process."""

    def __init__(self):
        self._memo: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._memo:
            self._memo[path] = file_digest(path)
        return self._memo[path]

    def audio_key(self, clip) -> str:
        return text_digest(self(Path(clip.audio_path)), clip.start_s, clip.duration_s)
