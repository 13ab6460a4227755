"""What the picture scripts share: a throwaway ComfyUI with the pack and stand-ins for every file the workflows
name, opened in headless Chromium (scripts/screenshot_workflow.py, scripts/template_thumbnails.py).

The graphs are only displayed, never run: the pack's files are tiny real ones (its lists read their headers), the
image models empty files, each sound one second of silence. So a template draws as it does once its files are
there, without a missing-model mark or toast over it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Chromium/CDP client is shared with the frontend host tests; the stand-ins come from testkit and the
# tests' factories.
sys.path[:0] = [str(ROOT / "tests" / "host"), str(ROOT / "tests"), str(ROOT)]

from frontend import Chromium, Page, free_port, wait_http  # noqa: E402

PACK_LOADER = "AudioTokenModelLoader"


def write_stand_in(path: Path, directory: str) -> None:
    """A file the graph's loaders list: tiny real ones for the pack's folders, empty otherwise."""
    from factories.embedder import write_tiny_embedder, write_tiny_official_embedder
    from testkit.beats import write_tiny_official_beats

    path.parent.mkdir(parents=True, exist_ok=True)
    if directory == "audio_encoders":
        write_tiny_official_beats(path, layers=2, dim=32, heads=2)
    elif directory == "audiotoken" and path.suffix == ".safetensors":
        write_tiny_embedder(path, in_dim=96)
    elif directory == "audiotoken":
        write_tiny_official_embedder(path, in_dim=96, out_dim=768)
    else:
        path.write_bytes(b"")


def named_files(workflow: dict):
    """(models folder, file name) of every file the workflow's loaders name, and its LoadAudio sounds as
    ("input", name)."""
    for node in workflow["nodes"]:
        for model in node.get("properties", {}).get("models", []):
            yield model["directory"], model["name"]
        if node["type"] == PACK_LOADER:
            yield "audiotoken", node["widgets_values"][0]
            yield "audio_encoders", node["widgets_values"][1]
        if node["type"] == "LoadAudio":
            yield "input", node["widgets_values"][0]


def prepare_base(base: Path, workflows: list[dict]) -> None:
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "comfyui-audiotoken").symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir()
    for workflow in workflows:
        for folder, name in named_files(workflow):
            path = base / folder / name if folder == "input" else base / "models" / folder / name
            if path.exists():
                continue
            if folder == "input":
                with wave.open(str(path), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(b"\0\0" * 16000)
            else:
                write_stand_in(path, folder)


@contextlib.contextmanager
def frontend_page(comfyui: Path, workflows: list[dict], chromium: str, width: int, height: int):
    """A Page on a fresh ComfyUI (CPU, temp base directory) serving the workflows' files, at width x height."""
    comfyui = comfyui.resolve()  # the server runs with ComfyUI as its working directory
    with tempfile.TemporaryDirectory(prefix="audiotoken_shots_") as tmp:
        base = Path(tmp) / "base"
        prepare_base(base, workflows)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, str(comfyui / "main.py"), "--cpu", "--disable-api-nodes", "--listen", "127.0.0.1",
             "--port", str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:"],
            cwd=comfyui, stdout=open(Path(tmp) / "server.log", "w"), stderr=subprocess.STDOUT)
        browser = page = None
        try:
            wait_http(f"{url}/object_info/AudioTokenEncode", 180)
            post_json(f"{url}/settings/Comfy.TutorialCompleted", True)
            browser = Chromium(chromium, Path(tmp) / "chrome",
                               extra_args=("--hide-scrollbars", f"--window-size={width},{height}")).start()
            page = Page(browser.cdp_port)
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            page.open_frontend(f"{url}/")
            time.sleep(3)  # first-run dialogs and node definitions settle
            # The minimap would cover part of the graph; keep the picture about the nodes.
            page.set_setting("Comfy.Minimap.Visible", False)
            yield page
        finally:
            if page is not None:
                page.close()
            if browser is not None:
                browser.stop()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def load_graph(page: Page, workflow: dict, name: str) -> None:
    """Open the workflow as the file `name` would open, and close whatever dialog is left."""
    page.js(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}).then(() => true)")
    time.sleep(1.5)
    page.press_escape(3)


def post_json(url: str, value) -> None:
    req = urllib.request.Request(url, data=json.dumps(value).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()
