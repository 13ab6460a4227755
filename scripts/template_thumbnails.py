"""The template browser's card pictures: each example workflow's graph drawn by the real frontend, saved as
example_workflows/<name>.jpg (512 x 512, about 35 kB).

    .hosts/0.33.0/venv/bin/python scripts/template_thumbnails.py --comfyui .hosts/0.33.0/ComfyUI [--only NAME ...]

Run it again after changing a template's graph (nodes, layout, note text), and commit the pictures with the
json. Any ComfyUI install's Python will do (aiohttp and Pillow come with ComfyUI; torch builds the tiny model
stand-ins the loaders list), with `chromium` on PATH; one server and one browser draw all the workflows. The
development tool only: .comfyignore leaves it out of the registry zip.

What the frontends read for a custom node pack's template (read in the sources of 1.27, 1.49, 1.53 and 1.58):
the server lists only file names (`GET /api/workflow_templates`: {pack folder: [stems of example_workflows/
*.json]}), and the card shows the picture `/api/workflow_templates/<pack folder>/<name>.jpg` (the type is fixed
to jpg), which the server serves from beside the json; without one the card gets a placeholder after a 404. The
card's title is the file name itself and its description the file name with - and _ as spaces; no index file,
no field of the workflow is read. tests/host/test_frontend_pack_ui.py checks the cards on every tested frontend.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "host"), str(ROOT / "tests"), str(ROOT)]

from frontend import Chromium, Page, find_chromium, free_port, wait_http  # noqa: E402
from screenshot_workflow import write_stand_in  # noqa: E402

SIDE = 1040       # the captured square, in CSS pixels
LEFT, TOP = 60, 90  # clear of the frontend's side bar, tab bar and run bar
OUT_SIDE = 512    # the card shows it at about 240 px; twice that for sharp high-DPI screens

# The pack's part of the graph (Load Audio and the AudioToken nodes) scaled into the square and centred there:
# the whole graph would be drawn too small to read (and below about 0.6 the canvas drops its text).
FIT_SQUARE_JS = """((left, top, side) => {
    const ds = window.app.canvas.ds;
    const nodes = (window.app.rootGraph ?? window.app.graph)._nodes
        .filter(n => n.type === 'LoadAudio' || n.type.startsWith('AudioToken'));
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 30);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const margin = 24;
    const scale = Math.min(1.2, (side - 2 * margin) / (x1 - x0), (side - 2 * margin) / (y1 - y0));
    ds.scale = scale;
    ds.offset = [(left + (side - (x1 - x0) * scale) / 2) / scale - x0, (top + (side - (y1 - y0) * scale) / 2) / scale - y0];
    window.app.canvas.setDirty(true, true);
    return scale;
})"""


def prepare_base(base: Path, workflows: list[dict]) -> None:
    """The pack, and loadable stand-ins for every model file the workflows name (no missing-model dialog)."""
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "comfyui-audiotoken").symlink_to(ROOT, target_is_directory=True)
    for workflow in workflows:
        for node in workflow["nodes"]:
            for model in node.get("properties", {}).get("models", []):
                path = base / "models" / model["directory"] / model["name"]
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_stand_in(path, model["directory"])


def shoot(page: Page, workflow: dict, name: str) -> bytes:
    from PIL import Image

    page.js(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}).then(() => true)")
    time.sleep(1.5)
    page.press_escape(2)
    page.js(f"{FIT_SQUARE_JS}({LEFT}, {TOP}, {SIDE})")
    time.sleep(1.5)  # DOM widgets (notes, audio players) follow the canvas a frame later
    shot = page.call("Page.captureScreenshot", format="png",
                     clip={"x": LEFT, "y": TOP, "width": SIDE, "height": SIDE, "scale": 1})
    img = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    out = io.BytesIO()
    img.resize((OUT_SIDE, OUT_SIDE), Image.LANCZOS).save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--only", nargs="*", help="workflow names (without .json); default: all")
    parser.add_argument("--chromium", default=find_chromium() or "chromium")
    opts = parser.parse_args()
    paths = sorted((ROOT / "example_workflows").glob("*.json"))
    if opts.only:
        paths = [p for p in paths if p.stem in opts.only]
    workflows = {p: json.loads(p.read_text()) for p in paths}
    comfyui = opts.comfyui.resolve()
    with tempfile.TemporaryDirectory(prefix="audiotoken_thumbs_") as tmp:
        base = Path(tmp) / "base"
        prepare_base(base, list(workflows.values()))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, str(comfyui / "main.py"), "--cpu", "--disable-api-nodes", "--listen", "127.0.0.1",
             "--port", str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:"],
            cwd=comfyui, stdout=open(Path(tmp) / "server.log", "w"), stderr=subprocess.STDOUT)
        browser = None
        try:
            wait_http(f"http://127.0.0.1:{port}/object_info/AudioTokenEncode", 180)
            urlopen_post(f"http://127.0.0.1:{port}/settings/Comfy.TutorialCompleted", True)
            width, height = LEFT + SIDE, TOP + SIDE + 70  # the canvas controls sit in the bottom 60 px
            browser = Chromium(opts.chromium, Path(tmp) / "chrome",
                               extra_args=("--hide-scrollbars", f"--window-size={width},{height}")).start()
            page = Page(browser.cdp_port)
            try:
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                          mobile=False)
                page.open_frontend(f"http://127.0.0.1:{port}/")
                time.sleep(3)
                page.set_setting("Comfy.Minimap.Visible", False)
                for path, workflow in workflows.items():
                    out = path.with_suffix(".jpg")
                    out.write_bytes(shoot(page, workflow, path.stem))
                    print(f"wrote {out} ({out.stat().st_size / 1000:.0f} kB)")
            finally:
                page.close()
        finally:
            if browser is not None:
                browser.stop()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def urlopen_post(url: str, value) -> None:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(value).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


if __name__ == "__main__":
    main()
