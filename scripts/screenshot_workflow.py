"""Screenshot an example workflow in the real ComfyUI frontend (headless Chromium over CDP).

    python scripts/screenshot_workflow.py --comfyui /path/to/ComfyUI \
        --workflow example_workflows/audiotoken_sound_to_image.json --out docs/img/workflow.png

Starts a throwaway ComfyUI (CPU, temp base directory, this pack symlinked under custom_nodes/, empty stand-ins
for the model files the workflow names so no "missing models" dialog covers the graph), opens it in headless
Chromium, loads the workflow with `app.loadGraphData`, and saves a PNG. Needs `chromium` on PATH and aiohttp
(a ComfyUI requirement).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def prepare_base(base: Path, workflow: dict) -> None:
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "comfyui-audiotoken").symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir()
    for node in workflow["nodes"]:
        for model in node.get("properties", {}).get("models", []):
            folder = base / "models" / model["directory"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / model["name"]).write_bytes(b"")  # the graph is only displayed, never run
        if node["type"] == "LoadAudio":
            with wave.open(str(base / "input" / node["widgets_values"][0]), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(b"\0\0" * 16000)


class Cdp:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=60)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        res = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")


async def shoot(cdp_port: int, server_url: str, workflow: dict, out: Path, width: int, height: int) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{cdp_port}/json") as resp:
            pages = [t for t in await resp.json() if t["type"] == "page"]
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = Cdp(ws)
            await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                           mobile=False)
            await cdp.call("Page.enable")
            await cdp.call("Page.navigate", url=server_url)
            for _ in range(240):
                if await cdp.js("!!(window.app && window.app.graph && window.app.canvas)"):
                    break
                await asyncio.sleep(0.5)
            else:
                raise TimeoutError("the ComfyUI frontend did not start")
            await asyncio.sleep(3)  # first-run dialogs and node definitions settle
            # The minimap would cover part of the graph; keep the picture about the nodes.
            await cdp.js("(async () => { try { await window.app.extensionManager.setting.set("
                         "'Comfy.Minimap.Visible', false); } catch (e) {} })()")
            await cdp.js(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, 'audiotoken example')")
            await asyncio.sleep(2)
            # Close whatever dialog the first start opened (templates browser, release notes, ...).
            for _ in range(3):
                await cdp.call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape",
                               windowsVirtualKeyCode=27)
                await cdp.call("Input.dispatchKeyEvent", type="keyUp", key="Escape", code="Escape",
                               windowsVirtualKeyCode=27)
                await asyncio.sleep(0.3)
            await cdp.js("""(() => {
                const ds = window.app.canvas.ds, nodes = window.app.graph._nodes;
                let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
                for (const n of nodes) {
                  x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 30);
                  x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
                }
                const canvas = window.app.canvas.canvas;
                const scale = Math.min(canvas.width / (x1 - x0 + 80), (canvas.height - 60) / (y1 - y0 + 80));
                ds.scale = scale;
                ds.offset = [-x0 + 40 / scale, -y0 + 70 / scale];
                window.app.canvas.setDirty(true, true);
                return scale;
            })()""")
            await asyncio.sleep(1.5)
            shot = await cdp.call("Page.captureScreenshot", format="png")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--workflow", type=Path, default=ROOT / "example_workflows" / "audiotoken_sound_to_image.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "workflow.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--size", default="1600x900")
    opts = parser.parse_args()
    width, height = map(int, opts.size.split("x"))
    workflow = json.loads(opts.workflow.read_text())
    with tempfile.TemporaryDirectory(prefix="audiotoken_shot_") as tmp:
        base = Path(tmp) / "base"
        prepare_base(base, workflow)
        port, cdp_port = free_port(), free_port()
        server = subprocess.Popen(
            [sys.executable, str(opts.comfyui / "main.py"), "--cpu", "--disable-api-nodes", "--listen", "127.0.0.1",
             "--port", str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:"],
            cwd=opts.comfyui, stdout=open(Path(tmp) / "server.log", "w"), stderr=subprocess.STDOUT)
        browser = None
        try:
            wait_http(f"http://127.0.0.1:{port}/object_info/AudioTokenEncode", 180)
            browser = subprocess.Popen(
                [opts.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={Path(tmp) / 'chrome'}", f"--remote-debugging-port={cdp_port}",
                 f"--window-size={width},{height}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "chrome.log", "w"))
            wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 60)
            asyncio.run(shoot(cdp_port, f"http://127.0.0.1:{port}/", workflow, opts.out, width, height))
            print(f"wrote {opts.out}")
        finally:
            for proc in (browser, server):
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()


if __name__ == "__main__":
    main()
