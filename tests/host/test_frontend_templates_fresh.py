"""A template as a new user first opens it: the pack's model files are not there yet (issue 18).

On every tested frontend (`frontend.frontends_for`), each example workflow is opened with models/audiotoken,
models/audio_encoders and models/loras empty; only the image model (the tiny SD1.5 checkpoint, or the
placeholders of the workflows too big to run) is present. It must open with no red node and nothing in the
frontend's missing-models list: the Model Loader lists the official files under their plain names before they
exist, the templates carry no `properties.models` download entries for the official files (a browser download
would land in the browser's Downloads folder, not in models/; the one entry, the Flux token template's trained
embedder, only names its folder and links the training guide), and the official LoRA reaches Load LoRA through a
link from Download Models, which the missing-models scan does not look at. Queued from the frontend with a local
mirror (AUDIOTOKEN_DOWNLOAD_MIRROR), the graph fetches the files and runs to an image.

How the frontends decide what is missing (read in their sources, shipped as source maps in the package):
- 1.27: `properties.models` entries whose name is a widget value of the node, checked against the folder
  listing (/experiment/models/<directory>); missing ones open the Missing Models dialog.
- 1.49 and 1.58 (platform/missingModel/missingModelScan.ts): every unlinked combo widget whose value looks like
  a model file (.safetensors, .pt, .bin, ...) and is not among the combo's options is missing; the node turns
  red and the Errors panel lists it. `properties.models` only adds a URL and folder to such an entry, and the
  browser's download button accepts only huggingface.co/civitai URLs of .safetensors/.ckpt/.pt/.pth/.sft files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from factories.mirror import official_mirror  # noqa: E402
from frontend import (stand_in_recordings, QUEUE_PROBE_JS, Page, close_dialogs, frontend_prompt, frontend_root,  # noqa: E402
                      frontends_for, load_workflow, queue_from_frontend, skip_first_run, start_chromium)
from host_assets import BEATS, EMBEDDER, FLUX_EMBEDDER, LONG_RECORDING_WINDOWS, write_flux_embedder  # noqa: E402
from host_harness import REPO_ROOT, asset_server, error_message, saved_images  # noqa: E402
from partial_runs import PARTIAL, run_audio_part, write_placeholders  # noqa: E402

from audiotoken_core import sources  # noqa: E402

WORKFLOWS = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
# Templates whose embedder is one the user trains (none is published for their model): not fetched, so shown
# missing until it is there, with the way to make it.
TRAINED = {"audiotoken_flux_token.json": FLUX_EMBEDDER}
FETCHED = [p for p in WORKFLOWS if p.name not in TRAINED]
FRONTENDS = frontends_for(COMFYUI_PATH)
LORA = "lora_layers_learned_embeds.bin"
PACK_FOLDERS = {"audiotoken": EMBEDDER, "audio_encoders": BEATS, "loras": LORA}
SHRINK = {"EmptyLatentImage": {"width": 64, "height": 64}, "KSampler": {"steps": 2}}
EXPECTED_IMAGES = {"audiotoken_long_recording_windows.json": LONG_RECORDING_WINDOWS}

# What the frontend shows as wrong with the open graph: red nodes (1.49+: `has_errors`, set from validation
# errors and from the missing-model and missing-media scans), the missing-models list and whether its error
# store holds anything (1.49+, Pinia stores `missingModel` and `executionError`), and open dialogs (1.27 opens its
# Missing Models dialog).
GRAPH_PROBLEMS_JS = """(() => {
    const graph = window.app.rootGraph ?? window.app.graph;
    const pinia = document.querySelector('#vue-app')?.__vue_app__?.config.globalProperties.$pinia;
    const missing = pinia?._s.get('missingModel')?.missingModelCandidates ?? [];
    const errors = pinia?._s.get('executionError');
    return {
        red: graph._nodes.filter(n => n.has_errors).map(n => `${n.id} ${n.type}`),
        missing_models: missing.map(c => `${c.name} (${c.nodeType}.${c.widgetName})`),
        missing_folders: missing.map(c => c.directory ?? null),  // Missing Models' folder; null reads "Unknown"
        any_error: errors ? !!errors.hasAnyError : null,
        dialogs: Array.from(document.querySelectorAll('[role=dialog], [role=alertdialog], .p-dialog'))
            .filter(d => d.getClientRects().length).map(d => d.innerText.trim().slice(0, 300)),
    };
})()"""

# The last execution error as the frontend keeps it (1.49+: null on 1.27, which has no such store), and the
# page's visible text. 1.49+ first shows only "<node> failed ... View details" over the canvas: the button opens
# the Errors panel, whose report names "Exception Type"; 1.27 opens a dialog at once with the node type and the
# message, and names the type in its report behind "Show Report".
EXECUTION_ERROR_JS = """(() => {
    const pinia = document.querySelector('#vue-app')?.__vue_app__?.config.globalProperties.$pinia;
    const store = pinia?._s.get('executionError');
    const details = Array.from(document.querySelectorAll('button'))
        .find(b => ['View details', 'Show Report'].includes(b.innerText.trim()) && b.getClientRects().length);
    details?.click();
    return {store: !!store, type: store?.lastExecutionError?.exception_type ?? null, text: document.body.innerText};
})()"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = start_chromium(tmp_path_factory.mktemp("chromium") / "profile")
    yield browser
    browser.stop()


@pytest.fixture(scope="module")
def mirror(host_assets, tmp_path_factory):
    """The official files' URLs served on 127.0.0.1: stand-ins for the embedder and BEATs (pinned for the test),
    the real official LoRA (checked against its own pinned hash)."""
    m = official_mirror({EMBEDDER: (host_assets["audiotoken"] / EMBEDDER).read_bytes(),
                         BEATS: (host_assets["audio_encoders"] / BEATS).read_bytes()},
                        (EMBEDDER, BEATS), tmp_path_factory.mktemp("pins") / "pins.json")
    yield m
    m.stop()


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f"frontend-{v}" for v in FRONTENDS])
def frontend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(chromium, frontend, host_assets, mirror, tmp_path_factory):
    """A ComfyUI serving `frontend`, with only the checkpoint folder of the assets: the pack's folders are empty."""
    srv = asset_server(COMFYUI_PATH, host_assets, tmp_path_factory.mktemp(f"comfy_fresh_{frontend}"),
                       folders=("checkpoints",), front_end_root=frontend_root(frontend))
    write_placeholders(srv.base / "models", WORKFLOWS)
    with pytest.MonkeyPatch.context() as mp:  # ComfyServer passes os.environ on to the server
        mp.setenv(sources.MIRROR_ENV, mirror.url)
        mp.setenv(sources.PINS_ENV, str(mirror.pins))
        srv.start()
    srv.models = srv.base / "models"
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(chromium, server):
    skip_first_run(server)
    tab = Page(chromium.cdp_port)
    tab.open_frontend(server.url + "/")
    tab.js(QUEUE_PROBE_JS)
    yield tab
    tab.close()


def empty_pack_folders(server) -> None:
    for folder in PACK_FOLDERS:
        path = server.models / folder
        path.mkdir(parents=True, exist_ok=True)
        for f in path.iterdir():
            f.unlink()


def pack_files(server) -> dict[str, list[str]]:
    return {folder: sorted(p.name for p in (server.models / folder).iterdir()) for folder in PACK_FOLDERS}


def open_fresh(page: Page, workflow: dict, name: str, settle_s: float = 6.0) -> dict:
    """Open `workflow` as a user would and return what the frontend shows as wrong once its scans settle."""
    leftover = close_dialogs(page)
    assert not leftover, f"dialogs that Escape does not close: {leftover}"
    load_workflow(page, workflow, name)
    # The missing-model scan (and 1.27's dialog) finish after loadGraphData resolves: wait until two looks agree.
    deadline, last = time.time() + settle_s, None
    while True:
        time.sleep(0.75)
        seen = page.js(GRAPH_PROBLEMS_JS)
        if seen == last or time.time() > deadline:
            return seen
        last = seen


def shrink_in_page(page: Page) -> None:
    page.js(f"""(() => {{
        const values = {json.dumps(SHRINK)};
        for (const node of (window.app.rootGraph ?? window.app.graph)._nodes)
            for (const [name, value] of Object.entries(values[node.type] ?? {{}})) {{
                const widget = node.widgets?.find(w => w.name === name);
                if (widget) widget.value = value;
            }}
        return true;
    }})()""")


def test_the_probe_sees_a_missing_model(page, server):
    """The control: the same template naming an embedder that is neither on disk nor official, with a download
    entry for it, is flagged by every frontend (1.27: its dialog; 1.49+: a red node and a missing-models entry)."""
    workflow = json.loads((REPO_ROOT / "example_workflows" / "audiotoken_sound_to_image.json").read_text())
    loader = next(n for n in workflow["nodes"] if n["type"] == "AudioTokenModelLoader")
    loader["widgets_values"][0] = "gone_embedder.safetensors"
    loader["properties"]["models"] = [{"name": "gone_embedder.safetensors", "directory": "audiotoken",
                                       "url": "https://huggingface.co/example/gone/resolve/main/gone_embedder.safetensors"}]
    seen = open_fresh(page, workflow, "control")
    flagged = [*seen["red"], *seen["missing_models"], *[d for d in seen["dialogs"] if "gone_embedder" in d]]
    assert any("AudioTokenModelLoader" in f or "gone_embedder" in f for f in flagged), seen
    close_dialogs(page)


@pytest.mark.parametrize("path", FETCHED, ids=[p.stem for p in FETCHED])
def test_fresh_template_opens_clean_then_fetches_and_runs(page, server, mirror, path: Path):
    empty_pack_folders(server)
    workflow = json.loads(path.read_text())
    seen = open_fresh(page, workflow, path.stem)
    assert seen["red"] == [] and seen["missing_models"] == [] and seen["any_error"] in (False, None), seen
    assert not [d for d in seen["dialogs"] if "missing" in d.lower()], seen["dialogs"]
    # What saving the workflow now would write: the plain official names, as the template has them.
    saved = page.js("(window.app.rootGraph ?? window.app.graph).serialize().nodes"
                    ".filter(n => n.type === 'AudioTokenModelLoader').map(n => n.widgets_values.slice(0, 2))")
    assert saved == [[EMBEDDER, BEATS]], saved

    wanted = {"audiotoken": [EMBEDDER], "audio_encoders": [BEATS],
              "loras": [LORA] if any(n["type"] == "LoraLoaderModelOnly" for n in workflow["nodes"]) else []}
    if path.name in PARTIAL:
        # Image model too big to run (partial_runs): the frontend's prompt, its audio part run by the server.
        from ui_to_api import ui_to_api

        object_info = server.get_json("/object_info")
        assert set(frontend_prompt(page)) == set(ui_to_api(workflow, object_info))
        entry = run_audio_part(server, frontend_prompt(page), object_info, workflow)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    else:
        shrink_in_page(page)
        # the record template's Record Audio holds no recording yet: a user records before Run
        assert stand_in_recordings(page) == sum(node["type"] == "RecordAudio" for node in workflow["nodes"])
        entry = server.wait_history(queue_from_frontend(page), timeout=300)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
        assert len(saved_images(entry)) == EXPECTED_IMAGES.get(path.name, 1)
    assert pack_files(server) == wanted


@pytest.mark.parametrize("name", sorted(TRAINED), ids=[Path(n).stem for n in sorted(TRAINED)])
def test_a_template_with_a_trained_embedder_names_it_then_runs_once_it_is_there(page, server, mirror, frontend,
                                                                               name):
    """Fresh, the one file flagged is the embedder the user trains (1.49+; 1.27 reads only `properties.models`,
    and opens its dialog), and queueing is refused with a message that names it and the trainer.
    With the file in models/audiotoken and the lists refreshed (R), the graph opens clean, BEATs is fetched and the
    audio part runs."""
    empty_pack_folders(server)
    embedder, workflow = TRAINED[name], json.loads((REPO_ROOT / "example_workflows" / name).read_text())
    seen = open_fresh(page, workflow, Path(name).stem)
    loader = next(f"{n['id']} AudioTokenModelLoader" for n in workflow["nodes"] if n["type"] == "AudioTokenModelLoader")
    if frontend_version(frontend) >= (1, 49):
        assert seen["red"] == [loader] and len(seen["missing_models"]) == 1, seen
        assert embedder in seen["missing_models"][0], seen
        assert seen["missing_folders"] == ["audiotoken"], seen  # from the template's properties.models
    else:
        assert seen["red"] == [] and seen["missing_models"] == [], seen
    status, answer = server.post_prompt(frontend_prompt(page))
    problems = json.dumps(answer.get("node_errors", {}))
    assert status == 400 and embedder in problems and "python -m train" in problems, (status, answer)
    assert BEATS not in problems, "the official BEATs is fetched when queued, not a validation error"
    close_dialogs(page)

    write_flux_embedder(server.models / "audiotoken" / embedder)
    page.js("Promise.resolve(window.app.refreshComboInNodes()).then(() => true)")
    seen = open_fresh(page, workflow, Path(name).stem)
    assert seen["red"] == [] and seen["missing_models"] == [], seen
    object_info = server.get_json("/object_info")
    entry = run_audio_part(server, frontend_prompt(page), object_info, workflow)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    assert pack_files(server) == {"audiotoken": [embedder], "audio_encoders": [BEATS], "loras": []}


def frontend_version(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


def test_a_failed_fetch_reads_as_audiotoken_missing_model_in_the_frontend(page, server, mirror, frontend):
    """Both downloads fail (404): the frontend shows one error for the loader, titled AudioTokenMissingModel, whose
    text opens with one line per file (file, folder, address) and the mirror setting, also drawn on the node,
    then names where to put each."""
    empty_pack_folders(server)
    for name in (EMBEDDER, BEATS):
        mirror.faults.status[mirror.paths[name]] = 404
    try:
        workflow = json.loads((REPO_ROOT / "example_workflows" / "audiotoken_sound_to_image.json").read_text())
        open_fresh(page, workflow, "audiotoken_sound_to_image")
        shrink_in_page(page)
        entry = server.wait_history(queue_from_frontend(page), timeout=300)
    finally:
        for name in (EMBEDDER, BEATS):
            del mirror.faults.status[mirror.paths[name]]
    assert entry["status"]["status_str"] == "error"
    err = error_message(entry)
    assert err["exception_type"] == "AudioTokenMissingModel" and err["node_type"] == "AudioTokenModelLoader", err
    deadline = time.time() + 20
    while True:
        shown = page.js(EXECUTION_ERROR_JS)
        if "AudioTokenMissingModel" in shown["text"] or time.time() > deadline:
            break
        time.sleep(0.5)
    at = shown["text"].find("AudioTokenMissingModel")
    print(f"the page after the failed fetch shows: {shown['text'][max(at - 100, 0):at + 500]!r}")
    assert shown["type"] == ("AudioTokenMissingModel" if shown["store"] else None), shown["type"]
    assert "AudioTokenMissingModel" in shown["text"], shown["text"][-3000:]
    for name in (EMBEDDER, BEATS):
        assert f"put {name}" in shown["text"], shown["text"][-3000:]
    assert "download.DownloadError" not in shown["text"]
    # The answer, one short line per file and the mirror setting, opens the error's text, and is drawn on the
    # node (the host's progress text). 1.58 removes a node's progress text when the job ends
    # (useProgressTextPreviews: onJobReset), so there the error panel is where it stays.
    short = err["exception_message"].split("\n\n")[0]
    assert f"AudioTokenMissingModel: {short}" in shown["text"], shown["text"][-3000:]
    on_node = page.js(NODE_TEXT_JS)
    print(f"the loader shows: {on_node!r}")
    assert on_node == (None if frontend_version(frontend) >= (1, 58) else short), on_node
    lines = short.splitlines()
    assert len(lines) == 4 and all(f"- {name} -> " in short for name in (EMBEDDER, BEATS)), short
    assert "AUDIOTOKEN_DOWNLOAD_MIRROR" in lines[-1], short
    assert pack_files(server)["audiotoken"] == [] and pack_files(server)["audio_encoders"] == []
    close_dialogs(page)


# The text the host sent to be drawn on the loader (its progress text), as the frontend keeps it on the node.
NODE_TEXT_JS = """(() => {
    const graph = window.app.rootGraph ?? window.app.graph;
    const node = graph._nodes.find(n => n.type === 'AudioTokenModelLoader');
    const widget = node?.widgets?.find(w => w.name === '$$node-text-preview');
    return widget ? String(widget.value ?? '') : null;
})()"""
