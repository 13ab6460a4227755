"""One downloader per target across processes: the lock file `<target>.lock` beside a file or model folder.

Two ComfyUI instances on one models folder (one per GPU), or ComfyUI beside `train.generate`, may ask for the
same official file at once. The first takes the lock and downloads; the others say that they wait, for which
file, and then find the verified file in place.

filelock, not `fcntl.flock`/`msvcrt.locking` by hand: it is what it uses underneath on Linux, macOS and Windows,
and it also gets right what a hand-written lock gets wrong (a waiter that locked a lock file its holder had
just deleted tries again; Windows deletes the file on release). torch requires it, so every host of the pack has
it. The OS drops such a lock when its process dies, killed included, so a crashed holder never blocks a later
fetch: the next one takes the lock and resumes the part file it left.
"""

from __future__ import annotations

import errno
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import filelock

log = logging.getLogger("audiotoken.download")

LOCK_SUFFIX = ".lock"  # not a model extension: ComfyUI's file lists never offer it
POLL_S = 0.25
STILL_WAITING_EVERY_S = 30.0


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + LOCK_SUFFIX)


@contextmanager
def download_lock(target: Path, name: str, while_waiting: Callable[[], None] | None = None) -> Iterator[bool]:
    """Holds `<target>.lock` for the body; yields True when another process held it first (then the body may
    find the work done). `while_waiting` runs every POLL_S meanwhile: a progress bar, which may raise to cancel."""
    path = lock_path(target)
    lock = _file_lock(path)
    try:
        waited = not _try(lock)
    except (NotImplementedError, OSError) as exc:
        if not _no_locks_here(exc):
            raise
        lock = None
    if lock is None:
        log.warning("%s: this file system has no file locks; downloading without one (two processes fetching "
                    "it at once would both download it)", path)
        yield False
        return
    if waited:
        log.info("waiting for another process downloading %s into %s", name, target.parent)
        start = last_note = time.monotonic()
        while not _try(lock, POLL_S):
            if while_waiting:
                while_waiting()
            if time.monotonic() - last_note >= STILL_WAITING_EVERY_S:
                last_note = time.monotonic()
                log.info("still waiting for another process downloading %s into %s (%.0f s)", name,
                         target.parent, last_note - start)
    try:
        yield waited
    finally:
        # Deleted while held, so no lock file outlives a fetch (only a killed holder leaves one, empty, beside its
        # part file). A waiter that already opened it retries on a fresh one. Windows refuses (the file is open)
        # and filelock deletes it on release.
        try:
            path.unlink()
        except OSError:
            pass
        lock.release()


def _file_lock(path: Path) -> filelock.BaseFileLock:
    try:
        # No soft (marker file) fallback: a marker left by a killed process would block every later fetch.
        return filelock.FileLock(path, fallback_to_soft=False)
    except TypeError:  # filelock < 4.2.1 has no soft fallback to turn off
        return filelock.FileLock(path)


def _try(lock: filelock.BaseFileLock, timeout: float = 0) -> bool:
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        return False
    return True


def _no_locks_here(exc: Exception) -> bool:
    # filelock < 4 raises NotImplementedError where flock is missing (some network file systems), later ones ENOSYS
    return isinstance(exc, NotImplementedError) or getattr(exc, "errno", None) == errno.ENOSYS
