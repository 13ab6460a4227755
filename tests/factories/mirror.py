"""A local download mirror on 127.0.0.1 for the download tests: plain files with HTTP Range, faults on demand,
and the few Hugging Face Hub routes `snapshot_download` uses (repo info, tree listing, resolve).

Files are served under the path of their official URL, so `AUDIOTOKEN_DOWNLOAD_MIRROR=<mirror.url>` points
every source at them; `HF_ENDPOINT=<mirror.url>` does the same for huggingface_hub.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HF_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Faults:
    cut_after: dict[str, int] = field(default_factory=dict)   # path -> bytes sent before the connection drops (once)
    status: dict[str, int] = field(default_factory=dict)      # path -> HTTP status instead of the file
    ignore_range: set[str] = field(default_factory=set)       # path -> answer 200 with the whole file to a Range
    tree_lies: set[str] = field(default_factory=set)          # repo file paths the Hub listing gives a wrong hash
    # path -> (bytes sent, event): the first GET sends that many bytes, then waits for the event (a slow line
    # the test controls: another process can be started, or this one killed, while it lasts)
    pause_after: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)


class Mirror:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.repos: dict[str, dict[str, bytes]] = {}
        self.faults = Faults()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.sent: dict[str, int] = {}  # path -> body bytes written to GET clients, all requests together
        self.state_sha256 = True  # send X-Linked-Etag/X-Linked-Size, as the Hub does for large files
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, official_url: str, data: bytes) -> str:
        path = urlsplit(official_url).path
        self.files[path] = data
        return path

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos[repo_id] = dict(files)

    def start(self) -> "Mirror":
        mirror = self

        class Handler(_Handler):
            owner = mirror

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Mirror":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def official_mirror(stand_ins: dict[str, bytes], pinned: tuple[str, ...], pins_file) -> Mirror:
    """A started Mirror serving each official file name's bytes (`stand_ins`) under its official URL, plus the
    real official LoRA; the names in `pinned` get their size and SHA-256 written to `pins_file` (for
    AUDIOTOKEN_DOWNLOAD_PINS), the others are checked as their source says (the LoRA by its own pinned hash).
    `mirror.paths` maps each name to its path on the mirror, `mirror.pins` is `pins_file`."""
    from audiotoken_core import sources

    from .official import LORA

    files = {**stand_ins, LORA.name: LORA.read_bytes()}
    pins = {name: {"size": len(files[name]), "sha256": hashlib.sha256(files[name]).hexdigest()} for name in pinned}
    pins_file.write_text(json.dumps(pins))
    mirror = Mirror().start()
    mirror.paths = {name: mirror.add(sources.find(name).url, data) for name, data in files.items()}
    mirror.pins = pins_file
    return mirror


class _Handler(BaseHTTPRequestHandler):
    owner: Mirror
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
        pass

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = urlsplit(self.path).path
        mirror = self.owner
        mirror.requests.append((self.command, path, self.headers.get("Range")))
        if path in mirror.faults.status:
            return self._plain(mirror.faults.status[path], b"no such file\n", head)
        if path in mirror.files:
            data = mirror.files[path]
            extra = {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                     "X-Linked-Size": str(len(data))} if mirror.state_sha256 else {}
            return self._file(path, data, head, extra)
        hub = self._hub(path)
        if hub is not None:
            return hub(head)
        self._plain(404, b"not found\n", head)

    # ---- the Hub
    def _hub(self, path: str):
        for repo, files in self.owner.repos.items():
            api = f"/api/models/{repo}"
            if path in (api, f"{api}/revision/main", f"{api}/revision/{HF_COMMIT}"):
                info = {"id": repo, "modelId": repo, "sha": HF_COMMIT, "private": False,
                        "siblings": [{"rfilename": p} for p in sorted(files)]}
                return lambda head: self._json(info, head)
            if path.startswith(f"{api}/tree/"):
                return lambda head: self._json(_tree(files, self.owner.faults.tree_lies), head)
            m = re.fullmatch(rf"/{re.escape(repo)}/resolve/[^/]+/(.+)", path)
            if m and m.group(1) in files:
                data = files[m.group(1)]
                headers = {"X-Repo-Commit": HF_COMMIT, "ETag": f'"{git_blob(data)}"'}
                if _is_lfs(m.group(1)):
                    sha = hashlib.sha256(data).hexdigest()
                    headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
                return lambda head: self._file(path, data, head, headers)
        return None

    # ---- answers
    def _file(self, path: str, data: bytes, head: bool, extra: dict[str, str]) -> None:
        faults = self.owner.faults
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and path not in faults.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        cut = faults.cut_after.pop(path, None) if self.command == "GET" else None
        if cut is not None:
            self._body(path, body[:cut])
            self.close_connection = True
            self.connection.shutdown(2)  # a dropped line: the client sees fewer bytes than Content-Length
            return
        pause = faults.pause_after.pop(path, None) if self.command == "GET" else None
        if pause is not None:
            sent, go = pause
            if not self._body(path, body[:sent]):
                return
            go.wait(60)
            body = body[sent:]
        self._body(path, body)

    def _body(self, path: str, data: bytes) -> bool:
        """Writes `data`, counted in `sent`; False when the client has gone (killed)."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        self.owner.sent[path] = self.owner.sent.get(path, 0) + len(data)
        return True

    def _json(self, obj, head: bool) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if not head:
            self.wfile.write(raw)

    def _plain(self, status: int, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _is_lfs(path: str) -> bool:
    return path.endswith((".safetensors", ".bin", ".pt"))


def _tree(files: dict[str, bytes], lies: set[str]) -> list[dict]:
    out, folders = [], set()
    for path, data in sorted(files.items()):
        data = data + b"!" if path in lies else data
        parts = path.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        entry = {"type": "file", "path": path, "size": len(files[path]), "oid": git_blob(data)}
        if _is_lfs(path):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(files[path]), "pointerSize": 134}
        out.append(entry)
    out += [{"type": "directory", "path": f, "oid": "0" * 40} for f in sorted(folders)]
    return out
