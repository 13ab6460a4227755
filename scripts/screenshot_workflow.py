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
import base64
import json
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Chromium/CDP client is shared with the frontend host tests.
sys.path[:0] = [str(ROOT / "tests" / "host"), str(ROOT / "tests")]

from frontend import Chromium, Page, find_chromium, free_port, wait_http  # noqa: E402

FIT_GRAPH_JS = """(() => {
    const ds = window.app.canvas.ds, nodes = (window.app.rootGraph ?? window.app.graph)._nodes;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 30);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const canvas = window.app.canvas.canvas;
    const scale = Math.min((canvas.width - 60) / (x1 - x0 + 120), (canvas.height - 100) / (y1 - y0 + 120));
    ds.scale = scale;
    ds.offset = [-x0 + 90 / scale, -y0 + 110 / scale];  // clear of 1.49's side bar and run bar
    window.app.canvas.setDirty(true, true);
    return scale;
})()"""


def prepare_base(base: Path, workflow: dict) -> None:
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "comfyui-audiotoken").symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir()
    for node in workflow["nodes"]:
        for model in node.get("properties", {}).get("models", []):
            folder = base / "models" / model["directory"]
            folder.mkdir(parents=True, exist_ok=True)
            write_stand_in(folder / model["name"], model["directory"])
        if node["type"] == "LoadAudio":
            with wave.open(str(base / "input" / node["widgets_values"][0]), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(b"\0\0" * 16000)


def write_stand_in(path: Path, directory: str) -> None:
    """A file the graph's loaders list: tiny real ones for the pack's (its lists read headers), empty otherwise.

    The graph is only displayed, never run.
    """
    from train.tiny.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_official_embedder

    if directory == "audio_encoders":
        write_tiny_official_beats(path, layers=2, dim=32, heads=2)
    elif directory == "audiotoken":
        write_tiny_official_embedder(path, in_dim=96, out_dim=768)
    else:
        path.write_bytes(b"")


def shoot(page: Page, server_url: str, workflow: dict, out: Path, width: int, height: int) -> None:
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    page.open_frontend(server_url)
    time.sleep(3)  # first-run dialogs and node definitions settle
    # The minimap would cover part of the graph; keep the picture about the nodes.
    page.set_setting("Comfy.Minimap.Visible", False)
    page.js(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, 'audiotoken example')")
    time.sleep(2)
    # Close whatever dialog the first start opened (templates browser, release notes, ...).
    page.press_escape(3)
    page.js(FIT_GRAPH_JS)
    time.sleep(1.5)
    shot = page.call("Page.captureScreenshot", format="png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--workflow", type=Path, default=ROOT / "example_workflows" / "audiotoken_sound_to_image.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "workflow.png")
    parser.add_argument("--chromium", default=find_chromium() or "chromium")
    parser.add_argument("--size", default="1600x900")
    opts = parser.parse_args()
    width, height = map(int, opts.size.split("x"))
    comfyui = opts.comfyui.resolve()  # the server runs with ComfyUI as its working directory
    workflow = json.loads(opts.workflow.read_text())
    with tempfile.TemporaryDirectory(prefix="audiotoken_shot_") as tmp:
        base = Path(tmp) / "base"
        prepare_base(base, workflow)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, str(comfyui / "main.py"), "--cpu", "--disable-api-nodes", "--listen", "127.0.0.1",
             "--port", str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:"],
            cwd=comfyui, stdout=open(Path(tmp) / "server.log", "w"), stderr=subprocess.STDOUT)
        browser = None
        try:
            wait_http(f"http://127.0.0.1:{port}/object_info/AudioTokenEncode", 180)
            browser = Chromium(opts.chromium, Path(tmp) / "chrome",
                               extra_args=("--hide-scrollbars", f"--window-size={width},{height}")).start()
            page = Page(browser.cdp_port)
            try:
                shoot(page, f"http://127.0.0.1:{port}/", workflow, opts.out, width, height)
            finally:
                page.close()
            print(f"wrote {opts.out}")
        finally:
            if browser is not None:
                browser.stop()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
