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
import time
from pathlib import Path

from frontend_shots import ROOT, frontend_page, load_graph

from frontend import Page, find_chromium  # noqa: E402  (on sys.path through frontend_shots)

SIDE = 1040       # the captured square, in CSS pixels
LEFT, TOP = 60, 90  # clear of the frontend's side bar, tab bar and run bar
OUT_SIDE = 512    # the card shows it at about 240 px; twice that for sharp high-DPI screens

# The pack's part of the graph (Load Audio and the AudioToken nodes) scaled into the square and centred there:
# the whole graph would be drawn too small to read (and below about 0.6 the canvas drops its text).
FIT_SQUARE_JS = """((left, top, side) => {
    const ds = window.app.canvas.ds;
    const nodes = (window.app.rootGraph ?? window.app.graph)._nodes
        .filter(n => n.type === 'LoadAudio' || n.type === 'RecordAudio' || n.type.startsWith('AudioToken'));
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


def shoot(page: Page, workflow: dict, name: str) -> bytes:
    from PIL import Image

    load_graph(page, workflow, name)
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
    width, height = LEFT + SIDE, TOP + SIDE + 70  # the canvas controls sit in the bottom 60 px
    with frontend_page(opts.comfyui, list(workflows.values()), opts.chromium, width, height) as page:
        for path, workflow in workflows.items():
            out = path.with_suffix(".jpg")
            out.write_bytes(shoot(page, workflow, path.stem))
            print(f"wrote {out} ({out.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
