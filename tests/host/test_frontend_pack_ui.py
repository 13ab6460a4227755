"""What a new user sees of the pack in the real frontend (headless Chromium), on a ComfyUI whose input and model
folders start empty, on every tested frontend (`frontend.frontends_for`: the host's own, and over 0.33.0 also
1.58.1 and 1.53.10): Download Models' result drawn on the node and its tooltips naming each check, the template
cards with their pictures and titles, and the sample sounds playable in the browser.

The pack sits in a folder with an odd name, but without the space of host_harness.ODD_PACK_FOLDER: aiohttp 3.14
(both hosts' pin) routes no static prefix with a space in it, so in such a folder the server answers 404 for the
pack's web extension and template files alike (the module name is part of both addresses).

With AUDIOTOKEN_UI_SHOTS=DIR the screenshots are also written there, one per frontend (how
docs/img/download_models_result.png was made).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from frontend import (Page, close_dialogs, frontend_root, frontends_for, skip_first_run,  # noqa: E402
                      start_chromium)
from host_assets import BEATS, EMBEDDER  # noqa: E402
from host_harness import REPO_ROOT, ComfyServer, install_pack  # noqa: E402

from audiotoken_core import sources  # noqa: E402
from factories.mirror import official_mirror  # noqa: E402
from factories.official import LORA as OFFICIAL_LORA  # noqa: E402

LORA = OFFICIAL_LORA.name
TEMPLATES = sorted(p.stem for p in (REPO_ROOT / "example_workflows").glob("*.json"))
PACK_FOLDER = "comfyui-audiotoken.dev_pack"
FRONTENDS = frontends_for(COMFYUI_PATH)
SHOTS = os.environ.get("AUDIOTOKEN_UI_SHOTS")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = start_chromium(tmp_path_factory.mktemp("chromium") / "profile", ("--hide-scrollbars", "--window-size=1400,1000"))
    yield browser
    browser.stop()


@pytest.fixture(scope="module")
def mirror(host_assets, tmp_path_factory):
    """The embedder stand-in (pinned here), BEATs stand-in (checked by the SHA-256 the mirror states, as the Hub
    does) and the real official LoRA (checked by its own pinned hash)."""
    m = official_mirror({EMBEDDER: (host_assets["audiotoken"] / EMBEDDER).read_bytes(),
                         BEATS: (host_assets["audio_encoders"] / BEATS).read_bytes()},
                        (EMBEDDER,), tmp_path_factory.mktemp("pins") / "pins.json")
    yield m
    m.stop()


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f"frontend-{v}" for v in FRONTENDS])
def frontend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(chromium, frontend, mirror, tmp_path_factory):
    """A ComfyUI serving `frontend` with empty model and input folders (each frontend gets its own, so every
    one sees Download Models fetch)."""
    base = tmp_path_factory.mktemp(f"comfy_ui_{frontend}")
    install_pack(base / "custom_nodes", PACK_FOLDER)
    with pytest.MonkeyPatch.context() as mp:  # ComfyServer passes os.environ on to the server
        mp.setenv(sources.MIRROR_ENV, mirror.url)
        mp.setenv(sources.PINS_ENV, str(mirror.pins))
        srv = ComfyServer(COMFYUI_PATH, base, front_end_root=frontend_root(frontend)).start()
    skip_first_run(srv)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(chromium, server):
    tab = Page(chromium.cdp_port)
    tab.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
    tab.open_frontend(server.url + "/")
    time.sleep(2)
    close_dialogs(tab)
    yield tab
    tab.close()


def wait_js(page: Page, expression: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = page.js(expression)
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"not true within {timeout:.0f} s: {expression}")


def screenshot(page: Page, path: Path, clip: dict | None = None) -> None:
    """A PNG of the page (or of `clip`); with AUDIOTOKEN_UI_SHOTS also copied there."""
    shot = page.call("Page.captureScreenshot", format="png", **({"clip": {**clip, "scale": 1}} if clip else {}))
    path.write_bytes(base64.b64decode(shot["data"]))
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / path.name)


def test_download_models_tooltips_name_each_check(server):
    """Each file's tooltip says what its download must match, in words (the frontend shows these as they are)."""
    inputs = server.get_json("/object_info/AudioTokenDownloadModels")["AudioTokenDownloadModels"]["input"]
    tips = {name: spec[1]["tooltip"] for name, spec in {**inputs["required"], **inputs.get("optional", {})}.items()}
    expected = {
        "embedder": "its size and content, through the git blob id the official repository publishes (5d1f5c101e5b…",
        "audio_encoder": "its size and SHA-256, as the server states them",
        "lora": "its size (3,294,091 bytes) and SHA-256 (24c971f2e526…), both known in advance must match",
    }
    for name, words in expected.items():
        assert "Verified after the download, before it gets its name" in tips[name], tips[name]
        assert words in tips[name], tips[name]
        assert "must match; a download that does not match is deleted" in tips[name], tips[name]
        assert "checked by" not in tips[name] and "(none): skip" not in tips[name], tips[name]


def test_download_models_shows_what_it_fetched_on_the_node(page, server, mirror, frontend, tmp_path):
    page.js(f"""(() => {{
        const graph = window.app.rootGraph ?? window.app.graph;
        graph.clear();
        const node = window.LiteGraph.createNode('AudioTokenDownloadModels');
        node.pos = [120, 120];
        graph.add(node);
        node.widgets.find(w => w.name === 'lora').value = {json.dumps(LORA)};
        window.__audiotokenNode = node;
        window.app.canvas.ds.scale = 1; window.app.canvas.ds.offset = [0, 0];
        window.app.canvas.setDirty(true, true);
        return true;
    }})()""")
    page.js("window.app.queuePrompt(0, 1).then(() => true)")
    text = wait_js(page, "window.__audiotokenNode.widgets.find(w => w.name === 'audiotoken_result')?.value", 120)
    time.sleep(1.5)  # the node grows to its text once the frontend has laid the box out
    models = server.base / "models"
    pin = json.loads(mirror.pins.read_text())[EMBEDDER]  # the stand-in's (AUDIOTOKEN_DOWNLOAD_PINS)
    checks = {EMBEDDER: f"size ({pin['size']:,} bytes) and SHA-256 ({pin['sha256'][:12]}…), both known in advance",
              BEATS: "size and SHA-256, as the server states them",
              LORA: "size (3,294,091 bytes) and SHA-256 (24c971f2e526…), both known in advance"}
    for (name, folder), check in zip(((EMBEDDER, "audiotoken"), (BEATS, "audio_encoders"), (LORA, "loras")),
                                     checks.values()):
        line = next((ln for ln in text.splitlines() if ln.startswith(f"{name}: ")), "")
        assert line.startswith(f"{name}: downloaded and verified into {models / folder} ("), text
        assert f"; matched its {check}" in line, line
    assert (models / "loras" / LORA).stat().st_size == 3_294_091
    x, y, w, h = page.js("""(() => { const n = window.__audiotokenNode, ds = window.app.canvas.ds,
        r = window.app.canvas.canvas.getBoundingClientRect();
        return [r.x + (n.pos[0] + ds.offset[0]) * ds.scale, r.y + (n.pos[1] - 30 + ds.offset[1]) * ds.scale,
                n.size[0] * ds.scale, (n.size[1] + 30) * ds.scale]; })()""")
    time.sleep(0.5)
    screenshot(page, tmp_path / f"download_models_result-{frontend}.png",
               {"x": x - 20, "y": y - 20, "width": w + 40, "height": h + 40})
    box = page.js("""(() => {
        const el = document.querySelector('[data-audiotoken-result="AudioTokenDownloadModels"]');
        const r = el?.getBoundingClientRect();
        return el && {value: el.value, visible: !!el.getClientRects().length && r.width > 300 && r.height > 40,
                      top: document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el,
                      whole: el.scrollHeight <= el.clientHeight + 1, scroll: el.scrollHeight, client: el.clientHeight,
                      font: getComputedStyle(el).font, x: r.x, y: r.y, w: r.width, h: r.height};
    })()""")
    assert box and box["visible"] and box["top"] and box["value"] == text, box
    assert box["whole"], f"the node shows only part of its result: {box}"  # sized to the wrapped text
    # Drawn once: no frontend shows the same text in a widget of its own as well.
    assert page.js("window.__audiotokenNode.widgets.filter(w => (w.value ?? '') === "
                   f"{json.dumps(text)}).length") == 1
    # Nothing of it goes back to the server as an input, nor into the saved workflow.
    (entry,) = page.js("window.app.graphToPrompt().then(p => p.output)").values()
    assert set(entry["inputs"]) == {"embedder", "audio_encoder", "lora"}, entry
    saved = page.js("window.__audiotokenNode.serialize().widgets_values")
    assert saved == [EMBEDDER, BEATS, LORA], saved


def open_pack_templates(page: Page) -> list[dict]:
    """Templates browser, the pack's category: each card's name, text and its pictures' natural widths."""
    close_dialogs(page)
    # 1.27 loads a card's picture only once the card is in view: a window tall enough for all the pack's cards.
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=2400, deviceScaleFactor=1, mobile=False)
    page.js("window.app.extensionManager.command.execute('Comfy.BrowseTemplates').then(() => true)")
    label_js = f"""Array.from(document.querySelectorAll('[role=dialog] *, .p-dialog *'))
        .find(e => e.children.length === 0 && e.textContent.trim() === {json.dumps(PACK_FOLDER)})"""
    wait_js(page, f"!!{label_js}")
    page.js(f"""(() => {{
        const label = {label_js};
        (label.closest('button, a, li, [role=button], [role=option], [tabindex]') ?? label).click();
        return true;
    }})()""")
    cards_js = f"""(() => {{
        const names = {json.dumps(TEMPLATES)};
        const cards = Array.from(document.querySelectorAll('[data-testid^="template-workflow-"]'))
            .filter(c => names.includes(c.dataset.testid.replace('template-workflow-', '')));
        const found = cards.map(c => ({{name: c.dataset.testid.replace('template-workflow-', ''),
            text: c.innerText, widths: Array.from(c.querySelectorAll('img')).map(i => i.complete ? i.naturalWidth : 0)}}));
        return found.length === names.length && found.every(c => c.widths.some(w => w > 0)) && found;
    }})()"""
    return wait_js(page, cards_js, 60)


def test_template_cards_show_their_pictures_and_titles(page, server, frontend, tmp_path):
    for name in TEMPLATES:  # the address every frontend asks for (see scripts/template_thumbnails.py)
        status, _ = server.request("GET", f"/api/workflow_templates/{urllib.parse.quote(PACK_FOLDER)}/{name}.jpg")
        assert status == 200, name
    cards = open_pack_templates(page)
    time.sleep(1)
    screenshot(page, tmp_path / f"template_browser-{frontend}.png")
    for card in cards:
        # Our pictures are 512 px wide; the frontend's placeholder for a missing one is not.
        assert 512 in card["widths"], card
        # Title and description: all a frontend shows for a custom node's template is its file name, as the
        # title and, with - and _ as spaces, as the description.
        assert card["name"] in card["text"], card
    # What the page's own fetches got (1.27 fetches the pictures; 1.49+ sets them as <img src>, seen above).
    assert not [r for r in page.failed_requests() if "/workflow_templates/" in r], page.failed_requests()
    page.press_escape(2)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)


def test_sample_sounds_play_in_the_browser(page, server):
    """Load Audio's preview plays the input file itself: the browser must decode mu-law WAV."""
    for sound in sorted((REPO_ROOT / "sample_sounds").glob("*.wav")):
        seconds = page.js(f"""(async () => {{
            const resp = await fetch('/view?type=input&filename=' + encodeURIComponent({json.dumps(sound.name)}));
            const ctx = new OfflineAudioContext(1, 16000, 16000);
            return (await ctx.decodeAudioData(await resp.arrayBuffer())).duration;
        }})()""")
        assert seconds == pytest.approx((sound.stat().st_size - 58) / 16000, abs=0.01), sound.name
