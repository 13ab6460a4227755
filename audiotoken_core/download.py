"""Fetching the official files of `audiotoken_core.sources`: resumable, verified, atomic.

`fetch(source, folder, progress)` downloads one file into `folder`:
- the bytes go to `<name>.part` in that folder and are appended to on a later try (HTTP Range), so a cut
  transfer resumes instead of starting over, within one call (a few retries) or on the next;
- size and hash are checked before the file gets its name (see `sources` for which hash); a file that fails
  is deleted, so nothing unverified is ever left under a model name or as a part file;
- the verified file is moved into place with `os.replace`, so a reader never sees half a file;
- one process at a time downloads a file (`download_lock`): another one that asks for it meanwhile waits, says so,
  and then uses the verified file; one that finds a killed holder's part file resumes it.
`audiotoken_core.snapshot.fetch_snapshot` does the same job for a Hugging Face model folder.

Standard library (urllib) and filelock, which torch requires, so ComfyUI needs nothing extra; tqdm is used for
the console bar when present.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from .download_lock import download_lock
from .hashes import CHUNK, git_blob_id, sha256_of
from .sources import MIRROR_ENV, Source, find, human_size, resolved

log = logging.getLogger("audiotoken.download")

Progress = Callable[[int, "int | None"], None]  # (bytes done, bytes in all or None); may raise to cancel
TIMEOUT_S = 60.0
USER_AGENT = "comfyui-audiotoken (+https://github.com/comfyui-audiotoken/comfyui-audiotoken)"
PART_SUFFIX = ".part"
VERIFIED_MARK = ".audiotoken-verified"


class DownloadError(RuntimeError):
    """A download that did not produce a verified file; the message says what to put where instead.

    `fetch` and `fetch_snapshot` set `source` and `folder` (the file it was for, the folder it belongs in), so a
    caller that collects several failures can list them in one short line each (`missing_summary`)."""

    source: "Source | None" = None
    folder: "Path | None" = None


# ComfyUI's error panel titles an exception `module.qualname`, and this module's name starts with the folder
# the pack was cloned into (`…comfyui-audiotoken.audiotoken_core.download.DownloadError`). Under a builtin-style
# name the panel, the server log and tracebacks read `AudioTokenMissingModel: <file>: <what happened>. Download
# it yourself: put <file> at <path>, from <url>`.
DownloadError.__module__, DownloadError.__qualname__ = "builtins", "AudioTokenMissingModel"


class _Interrupted(Exception):
    """The connection ended before the last byte; what arrived is kept for the next try."""


def where_to_put(source: Source, dest: Path) -> str:
    """One line naming the file, its size and source, and the path it must have."""
    official = find(source.name) or source  # the official address, also when a mirror failed
    origin = f"from {official.url}" if official.url else f"the Hugging Face model {source.hf_repo}"
    return (f"put {source.name} ({source.note or source.kind}; about {human_size(source.approx_bytes)}, "
            f"{source.licence}) at {dest}, {origin}")


def announce(source: Source, into: Path) -> str:
    origin = source.url or f"{os.environ.get('HF_ENDPOINT') or 'https://huggingface.co'}/{source.hf_repo}"
    return (f"downloading {source.name} (about {human_size(source.approx_bytes)}; {source.licence}; checked by "
            f"{source.checks}) from {origin} into {into}")


def fetch(source: Source, folder: str | os.PathLike, progress: Progress | None = None, retries: int = 3,
          retry_wait_s: float = 1.0) -> Path:
    """`folder/<name>`, downloaded and verified unless it is already there (an existing file is trusted). While
    another process downloads it, waits (`progress` shows that process's part file) and then uses its file."""
    source = resolved(source)
    if not source.url:
        raise ValueError(f"{source.name} is a model folder; use fetch_snapshot")
    dest = Path(folder) / source.name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)

    def watch() -> None:  # while another process downloads: its part file's growth on our bar
        if progress:
            progress(_size_of(_part(dest)), source.size)

    with download_lock(dest, source.name, watch) as waited:
        if dest.is_file():
            log.info("%s was downloaded and verified by the other process; using %s", source.name, dest)
            if progress:
                progress(dest.stat().st_size, dest.stat().st_size)
            return dest
        if waited:
            log.info("the other process left %s unfinished (stopped or failed); downloading it here", source.name)
        with for_file(source, dest.parent):
            return _fetch_locked(source, dest, progress, retries, retry_wait_s)


@contextmanager
def for_file(source: Source, folder: Path):
    """Names the file and its folder on a DownloadError raised inside."""
    try:
        yield
    except DownloadError as exc:
        exc.source, exc.folder = source, folder
        raise


def missing_summary(errors: "list[DownloadError]") -> str:
    """Several failed downloads in one text: first `missing_lines`, then each full message as its own
    paragraph, for the error panel and the log."""
    return missing_lines(errors) + "\n\n" + "\n\n".join(str(exc) for exc in errors)


def missing_lines(errors: "list[DownloadError]") -> str:
    """One short line per failed download (file, folder, address) and the mirror setting: what fits on a node."""
    lines = [f"{len(errors)} model file{'s' if len(errors) > 1 else ''} could not be downloaded:"]
    for exc in errors:
        if exc.source is None:
            lines.append(f"- {exc}")
            continue
        official = find(exc.source.name) or exc.source
        origin = official.url or f"https://huggingface.co/{official.hf_repo}"
        lines.append(f"- {exc.source.name} -> {exc.folder}, from {origin}")
    lines.append(mirror_line())
    return "\n".join(lines)


def mirror_line() -> str:
    now = os.environ.get(MIRROR_ENV, "").strip()
    return (f"Offline? Put the files there by hand, or set {MIRROR_ENV}=http://HOST:PORT to fetch them from a "
            f"mirror ({f'now {now}' if now else 'now unset'}).")


def _fetch_locked(source: Source, dest: Path, progress: Progress | None, retries: int, retry_wait_s: float) -> Path:
    log.info("%s", announce(source, dest.parent))
    stated: dict[str, str] = {}
    for attempt in range(1, retries + 1):
        try:
            _transfer(source, dest, progress, stated)
            break
        except _Interrupted as cut:
            if attempt == retries:
                raise DownloadError(
                    f"{source.name}: the transfer stopped again ({cut}); {_part(dest).stat().st_size:,} bytes are "
                    f"kept in {_part(dest)} and the next try resumes from there. Or "
                    + where_to_put(source, dest)) from None
            log.warning("%s: transfer stopped (%s); resuming (try %d of %d)", source.name, cut, attempt + 1, retries)
            time.sleep(retry_wait_s * attempt)
    try:
        checked = verify(_part(dest), source, stated)
    except DownloadError:
        _part(dest).unlink(missing_ok=True)  # wrong bytes: nothing of them stays in the models folder
        raise
    os.replace(_part(dest), dest)
    log.info("verified %s: %s; saved as %s", source.name, checked, dest)
    return dest


def _part(dest: Path) -> Path:
    # Not a model extension, so ComfyUI's file lists never offer a half-downloaded file.
    return dest.with_name(dest.name + PART_SUFFIX)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _transfer(source: Source, dest: Path, progress: Progress | None, stated: dict[str, str]) -> None:
    part = _part(dest)
    have = part.stat().st_size if part.exists() else 0
    if source.size is not None and have > source.size:
        part.unlink()
        have = 0
    hops = _HopHeaders()
    try:
        resp = _open(source.url, have, hops)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part is already whole (or longer than the file): check it as it is
            stated.update(hops.stated(err.headers))
            return
        raise DownloadError(f"{source.name}: {source.url} answered {err.code} {err.reason}. "
                            + instead(source, dest)) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{source.name}: cannot reach {_host(source.url)} ({reason}). "
                            + instead(source, dest)) from None
    with resp:
        stated.update(hops.stated(resp.headers))
        start, total = _range_of(resp, have)
        if start == 0 and have:
            log.info("%s: the server sent the whole file again; starting over", source.name)
        elif have:
            log.info("resuming %s at %s of %s bytes", source.name, f"{have:,}",
                     f"{total:,}" if total else "unknown")
        _append(resp, part, start, total, progress)


def instead(source: Source, dest: Path) -> str:
    return "Download it yourself: " + where_to_put(source, dest)


def _host(url: str) -> str:
    return urllib.request.urlparse(url).netloc


class _HopHeaders(urllib.request.HTTPRedirectHandler):
    """Keeps the headers of every redirect: the Hub states size and SHA-256 on its 302, not on the CDN's answer."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.seen.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def stated(self, final_headers) -> dict[str, str]:
        out: dict[str, str] = {}
        for headers in [*self.seen, final_headers]:
            etag = _unquote(headers.get("X-Linked-Etag") or "")
            if re.fullmatch(r"[0-9a-f]{64}", etag):
                out["sha256"] = etag
            if (headers.get("X-Linked-Size") or "").isdigit():
                out["size"] = headers["X-Linked-Size"]
        return out


def _unquote(etag: str) -> str:
    return etag.strip().removeprefix("W/").strip('"').lower()


def _open(url: str, have: int, hops: _HopHeaders):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    opener = urllib.request.build_opener(hops)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _range_of(resp, have: int) -> tuple[int, int | None]:
    """(offset the body starts at, full file size or None)."""
    if resp.status == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == have:
            return have, None if m.group(3) == "*" else int(m.group(3))
        raise _Interrupted("the server answered another byte range than asked")
    length = resp.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _append(resp, part: Path, start: int, total: int | None, progress: Progress | None) -> None:
    done = start
    with open(part, "r+b" if start and part.exists() else "wb") as f:
        f.seek(start)
        f.truncate()
        if progress:
            progress(done, total)
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as err:
                raise _Interrupted(f"at {done:,} of {total:,} bytes: {type(err).__name__}" if total
                                   else f"at {done:,} bytes: {type(err).__name__}") from None
            if not chunk:
                break
            f.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done < total:
        raise _Interrupted(f"at {done:,} of {total:,} bytes")


def verify(path: Path, source: Source, stated: dict[str, str] | None = None) -> str:
    """Raises DownloadError unless `path` has the source's size and hash; returns what was checked, in words."""
    stated = stated or {}
    size = path.stat().st_size
    want_size = source.size if source.size is not None else (int(stated["size"]) if "size" in stated else None)
    if want_size is not None and size != want_size:
        raise DownloadError(f"{source.name}: wrong size, {size:,} bytes instead of {want_size:,}; the download "
                            "was deleted. " + instead(source, path.with_name(source.name)))
    if source.sha256:
        got, want, what = sha256_of(path), source.sha256, "pinned SHA-256"
    elif source.git_blob:
        got, want, what = git_blob_id(path), source.git_blob, "pinned git blob id"
    elif "sha256" in stated:
        got, want, what = sha256_of(path), stated["sha256"], "SHA-256 stated by the server"
    else:
        raise DownloadError(f"{source.name}: no hash to check it against (none pinned, none stated by "
                            f"{_host(source.url)}); the download was deleted. Pin one in the sources table or with "
                            "AUDIOTOKEN_DOWNLOAD_PINS.")
    if got != want:
        raise DownloadError(f"{source.name}: the downloaded bytes are not the expected file ({what} {want[:12]}…, "
                            f"got {got[:12]}…); the download was deleted. " + instead(source, path.with_name(source.name)))
    return f"{size:,} bytes, {what} {want[:12]}… matches"


class ConsoleProgress:
    """A tqdm bar on stderr (a log line every 10 % where tqdm is missing); call it as a `Progress`."""

    def __init__(self, label: str):
        self.label, self._bar, self._last = label, None, -1
        try:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._tqdm is not None:
            if self._bar is None:
                self._bar = self._tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                                       desc=self.label, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
            if total and self._bar.total != total:  # a wait for another process's file may start without it
                self._bar.total = total
            self._bar.update(done - self._bar.n)
            return
        step = int(10 * done / total) if total else done // (100 * CHUNK)
        if step != self._last:
            self._last = step
            log.info("%s: %s%s", self.label, human_size(done), f" of {human_size(total)}" if total else "")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
