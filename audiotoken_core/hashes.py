"""File hashes the downloads are checked by: SHA-256, and git's blob id (what `git ls-tree` shows)."""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

CHUNK = 1 << 20


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(path):
        h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: str | os.PathLike) -> str:
    """The id git gives the file's content: sha1 of `blob <size>\\0` + bytes (fixes size and content)."""
    h = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    for chunk in _chunks(path):
        h.update(chunk)
    return h.hexdigest()


def _chunks(path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk

