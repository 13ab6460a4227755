"""Headless Chromium driven over the raw DevTools protocol (CDP), for tests and scripts that use the real frontend.

No browser-automation package: a websocket (aiohttp, a ComfyUI requirement) is all CDP needs, so the host
environments stay the ones ComfyUI itself installs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp

from host_harness import free_port, stop_process

# The Debian package; other names are what distributions and CI images commonly install.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# No GPU, no network besides the page's own server, nothing that would change between runs.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# 1.49 names the graph `rootGraph` (and keeps `graph` as a legacy getter); 1.27 has only `graph`.
APP_READY_JS = "!!(window.app && (window.app.rootGraph ?? window.app.graph) && window.app.canvas)"


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Chromium:
    """One headless Chromium process with a fresh profile and its DevTools port."""

    def __init__(self, binary: str, profile_dir: Path, extra_args: tuple[str, ...] = ()):
        self.binary, self.profile_dir, self.extra_args = binary, Path(profile_dir), tuple(extra_args)
        self.cdp_port = free_port()
        self.log_path = self.profile_dir.parent / f"{self.profile_dir.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Chromium":
        cmd = [self.binary, *CHROMIUM_FLAGS, *self.extra_args, f"--user-data-dir={self.profile_dir}",
               f"--remote-debugging-port={self.cdp_port}", "about:blank"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            wait_http(f"http://127.0.0.1:{self.cdp_port}/json/version", timeout)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"Chromium did not open its DevTools port:\n{self.log()[-3000:]}") from None
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Cdp:
    """Request/response over one DevTools websocket; events that arrive meanwhile are kept in `events`."""

    def __init__(self, ws, keep_events: int = 200):
        self.ws, self.next_id = ws, 0
        self.events: list[dict] = []
        self.keep_events = keep_events

    # `reply_timeout`, not `timeout`: some CDP methods (Runtime.evaluate) take a `timeout` parameter of their own.
    async def call(self, method: str, reply_timeout: float = 60.0, **params):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=reply_timeout)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events = [*self.events[-self.keep_events + 1:], msg]

    async def js(self, expression: str, reply_timeout: float = 60.0):
        res = await self.call("Runtime.evaluate", reply_timeout=reply_timeout, expression=expression, awaitPromise=True,
                              returnByValue=True)
        if "exceptionDetails" in res:
            details = res["exceptionDetails"]
            raise RuntimeError(f"JS error: {details.get('exception', {}).get('description') or details}")
        return res.get("result", {}).get("value")


class Page:
    """A blocking handle on the browser's first tab: a private event loop drives the async Cdp client."""

    def __init__(self, cdp_port: int):
        self._loop = asyncio.new_event_loop()
        self._session, self._ws = self._run(self._connect(cdp_port))
        self.cdp = Cdp(self._ws)

    async def _connect(self, cdp_port: int):
        session = aiohttp.ClientSession()
        async with session.get(f"http://127.0.0.1:{cdp_port}/json") as resp:
            pages = [t for t in await resp.json() if t["type"] == "page"]
        ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return session, ws

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def call(self, method: str, reply_timeout: float = 60.0, **params):
        return self._run(self.cdp.call(method, reply_timeout=reply_timeout, **params))

    def js(self, expression: str, reply_timeout: float = 60.0):
        return self._run(self.cdp.js(expression, reply_timeout=reply_timeout))

    def close(self) -> None:
        self._run(self._ws.close())
        self._run(self._session.close())
        self._loop.close()

    def console_errors(self) -> list[str]:
        """Uncaught exceptions and console.error lines seen so far (needs Runtime.enable)."""
        lines = []
        for event in self.cdp.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                lines.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                lines.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        return lines

    def press_escape(self, times: int = 1, pause: float = 0.3) -> None:
        for _ in range(times):
            for kind in ("keyDown", "keyUp"):
                self.call("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27)
            time.sleep(pause)

    def open_frontend(self, url: str, timeout: float = 180.0) -> None:
        """Navigate to a ComfyUI server and wait until its frontend has built `window.app`."""
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(APP_READY_JS):
                return
            time.sleep(0.5)
        raise TimeoutError(f"the ComfyUI frontend did not start within {timeout:.0f} s: {self.console_errors()[-5:]}")

    def set_setting(self, setting_id: str, value) -> bool:
        """Change a frontend setting; False where this frontend has no settings API that takes it."""
        return bool(self.js(f"""(async () => {{
            const setting = window.app.extensionManager?.setting;
            if (!setting) return false;
            try {{ await setting.set({json.dumps(setting_id)}, {json.dumps(value)}); return true; }}
            catch (e) {{ return false; }}
        }})()"""))
