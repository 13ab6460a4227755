"""Screenshot an example workflow in the real ComfyUI frontend (headless Chromium over CDP).

    python scripts/screenshot_workflow.py --comfyui /path/to/ComfyUI \
        --workflow example_workflows/audiotoken_sound_to_image.json --out docs/img/workflow.png

Starts a throwaway ComfyUI with stand-ins for the files the workflow names (scripts/frontend_shots.py), opens it
in headless Chromium, loads the workflow with `app.loadGraphData`, fits the whole graph in the window and saves
a PNG. Needs `chromium` on PATH and a ComfyUI install's Python (aiohttp, torch).
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path

from frontend_shots import ROOT, frontend_page, load_graph

from frontend import find_chromium  # noqa: E402  (on sys.path through frontend_shots)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--workflow", type=Path, default=ROOT / "example_workflows" / "audiotoken_sound_to_image.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "workflow.png")
    parser.add_argument("--chromium", default=find_chromium() or "chromium")
    parser.add_argument("--size", default="1600x900")
    opts = parser.parse_args()
    width, height = map(int, opts.size.split("x"))
    workflow = json.loads(opts.workflow.read_text())
    with frontend_page(opts.comfyui, [workflow], opts.chromium, width, height) as page:
        load_graph(page, workflow, opts.workflow.stem)
        page.js(FIT_GRAPH_JS)
        time.sleep(1.5)
        shot = page.call("Page.captureScreenshot", format="png")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
