"""Headless Chromium driven over the raw DevTools protocol (CDP), for tests and scripts that use the real frontend.

No browser-automation package: a websocket (aiohttp, a ComfyUI requirement) is all CDP needs, so the host
environments stay the ones ComfyUI itself installs.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from host_harness import REPO_ROOT, LoggedProcess, free_port

# Frontends served over a host besides its own pinned one (`--front-end-root`): 1.58.1, the newest on PyPI when
# this was written, and 1.53.10, what ComfyUI 0.38 pins. Over 0.33.0 only: the older host lacks the server
# routes they call, and users pair new frontends with new backends.
EXTRA_FRONTENDS = {"0.33.0": ("1.58.1", "1.53.10")}
FRONTENDS_DIR = REPO_ROOT / ".hosts" / "frontends"

# The Debian package; other names are what distributions and CI images commonly install.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# No GPU, no network besides the page's own server, nothing that would change between runs.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# 1.49 names the graph `rootGraph` (and keeps `graph` as a legacy getter); 1.27 has only `graph`.
APP_READY_JS = "!!(window.app && (window.app.rootGraph ?? window.app.graph) && window.app.canvas)"


def host_version(comfy_root: str | Path) -> str:
    text = (Path(comfy_root) / "comfyui_version.py").read_text()
    return re.search(r'__version__ = "(.*)"', text).group(1)


def own_frontend() -> str:
    """The frontend version the host's environment installed (its pinned requirement)."""
    return importlib.metadata.version("comfyui_frontend_package")


def frontends_for(comfy_root: str | Path) -> list[str]:
    """Every frontend the real-frontend tests run on over this host: its own first, then EXTRA_FRONTENDS."""
    own = own_frontend()
    return [own, *(v for v in EXTRA_FRONTENDS.get(host_version(comfy_root), ()) if v != own)]


def frontend_root(version: str) -> Path | None:
    """The static folder of `comfyui-frontend-package==version` for --front-end-root; None for the host's own.

    Installed on first use with pip, without dependencies (the package is the built frontend and nothing else),
    into .hosts/frontends/<version>/, next to the host venvs.
    """
    if version == own_frontend():
        return None
    target = FRONTENDS_DIR / version
    static = target / "comfyui_frontend_package" / "static"
    if not (static / "index.html").is_file():
        partial = target.with_name(f"{version}.part")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--target", str(partial), f"comfyui-frontend-package=={version}"], check=True)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return static


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


class Chromium(LoggedProcess):
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


def start_chromium(profile_dir: Path, extra_args: tuple[str, ...] = ()) -> Chromium:
    """A started Chromium for a test module; fails (not skips: a skipped host test counts as a failure in CI)
    when there is none, saying what to install."""
    import pytest

    binary = find_chromium()
    if binary is None:
        pytest.fail(f"Chromium not found (looked for {', '.join(CHROMIUM_CANDIDATES)}); install the Debian "
                    "package `chromium` to run the frontend tests", pytrace=False)
    return Chromium(binary, profile_dir, extra_args).start()


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


# Every request of the frontend's own fetch() that the server answers with an error status, from the first script
# on: what a frontend asks of a backend that does not have it (`Page.failed_requests`).
FAILED_REQUESTS_JS = """(() => {
    window.__audiotokenFailedRequests = [];
    const fetch0 = window.fetch.bind(window);
    window.fetch = async (input, init) => {
        const answer = await fetch0(input, init);
        if (answer.status >= 400) {
            const url = typeof input === 'string' ? input : (input.url ?? String(input));
            window.__audiotokenFailedRequests.push(`${(init?.method ?? 'GET').toUpperCase()} ${
                new URL(url, location.href).pathname} ${answer.status}`);
        }
        return answer;
    };
})()"""


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
        self.call("Page.addScriptToEvaluateOnNewDocument", source=FAILED_REQUESTS_JS)
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(APP_READY_JS):
                return
            time.sleep(0.5)
        raise TimeoutError(f"the ComfyUI frontend did not start within {timeout:.0f} s: {self.console_errors()[-5:]}")

    def failed_requests(self) -> list[str]:
        """'METHOD /path STATUS' for each fetch the server answered with an error, since the page opened."""
        return self.js("window.__audiotokenFailedRequests ?? []")

    def set_setting(self, setting_id: str, value) -> bool:
        """Change a frontend setting; False where this frontend has no settings API that takes it."""
        return bool(self.js(f"""(async () => {{
            const setting = window.app.extensionManager?.setting;
            if (!setting) return false;
            try {{ await setting.set({json.dumps(setting_id)}, {json.dumps(value)}); return true; }}
            catch (e) {{ return false; }}
        }})()"""))


# --- The ComfyUI app in the page: what the frontend tests do with it, on every tested frontend ----------------

# 1.27 puts dialogs in PrimeVue's .p-dialog, 1.49 in reka-ui elements with role=dialog.
VISIBLE_DIALOGS_JS = """Array.from(document.querySelectorAll('[role=dialog], [role=alertdialog], .p-dialog'))
    .filter(d => d.getClientRects().length).map(d => d.innerText.trim().slice(0, 300))"""

# afterConfigureGraph gets the frontend's own list of unknown node types on both releases (1.27: names,
# 1.49: {type, nodeId, ...}); 1.49 shows them in a side panel, not a dialog, so the DOM alone would miss them.
MISSING_NODES_PROBE_JS = """(() => {
    window.__audiotokenMissingNodes = null;
    window.app.registerExtension({
        name: 'audiotoken.tests.missingNodesProbe',
        afterConfigureGraph(missing) {
            window.__audiotokenMissingNodes = (missing ?? []).map(m => typeof m === 'string' ? m : m.type);
        },
    });
    return true;
})()"""

# app.queuePrompt answers only a boolean (and 1.27 says false even on success: it returns `!{}`), so keep what
# the server answered the frontend's POST /prompt: the prompt id, or the node errors of a rejected prompt.
# window.comfyAPI.api.api is the `api` object extensions import, on both releases.
QUEUE_PROBE_JS = """(() => {
    const api = window.comfyAPI.api.api, post = api.queuePrompt.bind(api);
    api.queuePrompt = async (...args) => {
        try {
            const answer = await post(...args);
            window.__audiotokenQueued = {ok: true, answer};
            return answer;
        } catch (e) {
            window.__audiotokenQueued = {ok: false, status: e.status, answer: e.response ?? String(e)};
            throw e;
        }
    };
    return true;
})()"""


def skip_first_run(server) -> None:
    """Mark the tutorial done, so neither frontend opens its templates browser over the first graph."""
    server.request("POST", "/settings/Comfy.TutorialCompleted", True)


def close_dialogs(page: Page, tries: int = 3) -> list[str]:
    """Escape whatever is left open (release notes, a previous test's error); return what stays open."""
    for _ in range(tries):
        if not page.js(VISIBLE_DIALOGS_JS):
            break
        page.press_escape()
    return page.js(VISIBLE_DIALOGS_JS)


def unregistered_types(page: Page, workflow: dict) -> list[str]:
    types = sorted({node["type"] for node in workflow["nodes"]})
    return page.js(f"{json.dumps(types)}.filter(t => !(t in window.LiteGraph.registered_node_types))")


def load_workflow(page: Page, workflow: dict, name: str) -> None:
    """What opening the file does: handleFile passes the file name without its extension."""
    page.js("window.__audiotokenMissingNodes = null")
    page.js(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}).then(() => true)")


def stand_in_recordings(page: Page, sound: str = "dog_bark.wav") -> int:
    """Give each Record Audio a recording: its audio element plays an input/ sound, which the frontend's own
    serializeValue fetches and uploads as a recording when the graph is queued (a real recording goes
    through the microphone)."""
    return page.js(f"""(() => {{
        const url = window.comfyAPI.api.api.apiURL('/view?type=input&filename=' + encodeURIComponent({json.dumps(sound)}));
        let n = 0;
        for (const node of (window.app.rootGraph ?? window.app.graph)._nodes.filter(n => n.type === 'RecordAudio')) {{
            node.widgets.find(w => w.type === 'audioUI').element.src = url;
            n += 1;
        }}
        return n;
    }})()""")


def queue_from_frontend(page: Page) -> str:
    """Queue the open graph with the Run button's action; return the id the server gave it."""
    page.js("window.__audiotokenQueued = null")
    page.js("window.app.queuePrompt(0, 1).then(() => true)")
    queued = page.js("window.__audiotokenQueued")
    assert queued is not None, (f"the frontend posted no prompt; dialogs: {page.js(VISIBLE_DIALOGS_JS)}; "
                                f"console errors: {page.console_errors()[-5:]}")
    assert queued["ok"] and not queued["answer"].get("node_errors"), \
        f"the server rejected the frontend's prompt: {json.dumps(queued, indent=1)[:3000]}"
    return queued["answer"]["prompt_id"]


def frontend_prompt(page: Page) -> dict:
    """The API prompt the frontend makes of the open graph (what the Run button would post)."""
    return page.js("window.app.graphToPrompt().then(p => p.output)")
