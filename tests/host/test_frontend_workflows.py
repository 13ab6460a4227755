"""The real ComfyUI frontend, in headless Chromium, opens every example workflow and queues it.

test_server_workflows posts prompts made by ui_to_api; here the frontend itself turns the graph into the API
prompt, as it does for a user, so a widget-order or node-registration problem that only the frontend sees
shows up. One browser tab per frontend, shared by all workflows, like a user opening one file after another.

Every workflow runs on each frontend `frontend.frontends_for` names for this host: its own pinned one, and over
0.33.0 also 1.58.1 (the newest) and 1.53.10 (what ComfyUI 0.38 pins), served by the same backend with
--front-end-root. The requests a frontend makes that the backend answers with an error are printed per frontend
(test_frontend_backend_pairing), the record of what that pairing lacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host, pytest.mark.slow]

from frontend import (stand_in_recordings, MISSING_NODES_PROBE_JS, QUEUE_PROBE_JS, VISIBLE_DIALOGS_JS, Page, close_dialogs,  # noqa: E402
                      frontend_prompt, frontend_root, frontends_for, host_version, load_workflow,
                      queue_from_frontend, skip_first_run, start_chromium, unregistered_types)
from host_assets import LONG_RECORDING_WINDOWS  # noqa: E402
from host_harness import REPO_ROOT, asset_server, saved_images  # noqa: E402
from partial_runs import PARTIAL, run_audio_part, split_workflows, static_problems, write_placeholders  # noqa: E402
from ui_to_api import set_inputs, ui_to_api  # noqa: E402

WORKFLOWS = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
# Queued whole from the frontend, or (image model too big: partial_runs.PARTIAL) converted by the frontend and
# only the audio part of its prompt run.
FULL, PARTIAL_RUNS = split_workflows(WORKFLOWS)
EXPECTED_IMAGES = {"audiotoken_long_recording_windows.json": LONG_RECORDING_WINDOWS}
SHRINK = {"EmptyLatentImage": {"width": 64, "height": 64}, "KSampler": {"steps": 2}}

@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = start_chromium(tmp_path_factory.mktemp("chromium") / "profile")
    yield browser
    browser.stop()


FRONTENDS = frontends_for(COMFYUI_PATH)


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f"frontend-{v}" for v in FRONTENDS])
def frontend(request) -> str:
    return request.param


# Chromium first: a missing browser fails at once instead of after a minute of server start.
@pytest.fixture(scope="module")
def comfy_server(chromium, frontend, host_assets, tmp_path_factory):
    """One ComfyUI per frontend, serving that frontend; the image-model placeholders are there before it lists."""
    server = asset_server(COMFYUI_PATH, host_assets, tmp_path_factory.mktemp(f"comfy_frontend_{frontend}"),
                          front_end_root=frontend_root(frontend))
    write_placeholders(server.base / "models", WORKFLOWS)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(chromium, comfy_server):
    skip_first_run(comfy_server)
    tab = Page(chromium.cdp_port)
    tab.open_frontend(comfy_server.url + "/")
    tab.js(MISSING_NODES_PROBE_JS)
    tab.js(QUEUE_PROBE_JS)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get_json("/object_info")


def shrink_in_page(page: Page) -> list[str]:
    """Set the CPU-sized values on the loaded graph's widgets, as typing them into the nodes would."""
    return page.js(f"""(() => {{
        const values = {json.dumps(SHRINK)}, changed = [];
        for (const node of (window.app.rootGraph ?? window.app.graph)._nodes) {{
            for (const [name, value] of Object.entries(values[node.type] ?? {{}})) {{
                const widget = node.widgets?.find(w => w.name === name);
                if (widget) {{ widget.value = value; changed.push(`${{node.type}}.${{name}}`); }}
            }}
        }}
        return changed.sort();
    }})()""")


def assert_prompt_matches_ui_to_api(ran: dict, workflow: dict, object_info: dict, shrink: dict = SHRINK) -> None:
    """The frontend's conversion agrees with ui_to_api, which the server tests rely on.

    The frontend may add inputs the server ignores (1.27 sends LoadAudio's `audioUI` preview widget).
    """
    expected = ui_to_api(workflow, object_info)
    for class_type, values in shrink.items():
        set_inputs(expected, class_type, **values)
    assert set(ran) == set(expected), (sorted(ran), sorted(expected))
    for node_id, node in expected.items():
        assert ran[node_id]["class_type"] == node["class_type"]
        for name, value in node["inputs"].items():
            assert ran[node_id]["inputs"].get(name) == value, (node_id, node["class_type"], name, ran[node_id])


def open_workflow(page: Page, path: Path) -> dict:
    """Open an example workflow as a user would; it must load with no missing nodes and no missing-X dialog."""
    workflow = json.loads(path.read_text())
    leftover = close_dialogs(page)
    assert not leftover, f"dialogs that Escape does not close: {leftover}"
    assert unregistered_types(page, workflow) == [], "node types the frontend does not know"

    load_workflow(page, workflow, path.stem)
    assert page.js("window.__audiotokenMissingNodes") == [], "the frontend reported missing nodes"
    dialogs = page.js(VISIBLE_DIALOGS_JS)
    assert not [d for d in dialogs if "missing" in d.lower()], dialogs
    return workflow


def test_frontend_backend_pairing(page, frontend):
    """The frontend is the one asked for, and what it asked of this backend in vain is on record (printed)."""
    assert page.js("window.__COMFYUI_FRONTEND_VERSION__") == frontend
    failed = sorted(set(page.failed_requests()))
    print(f"frontend {frontend} over ComfyUI {host_version(COMFYUI_PATH)}: requests answered with an error: "
          f"{failed or 'none'}")


def test_every_example_workflow_is_queued_whole_or_in_part():
    assert sorted(FULL + PARTIAL_RUNS) == WORKFLOWS and not set(FULL) & set(PARTIAL_RUNS)
    assert {p.name for p in PARTIAL_RUNS} == set(PARTIAL)


@pytest.mark.parametrize("path", FULL, ids=[p.stem for p in FULL])
def test_frontend_runs_example_workflow(page, comfy_server, object_info, path: Path):
    workflow = open_workflow(page, path)

    expected_changes = sorted(f"{node['type']}.{name}" for node in workflow["nodes"]
                              for name in SHRINK.get(node["type"], {}))
    assert shrink_in_page(page) == expected_changes
    assert stand_in_recordings(page) == sum(node["type"] == "RecordAudio" for node in workflow["nodes"])

    entry = comfy_server.wait_history(queue_from_frontend(page), timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    assert len(saved_images(entry)) == EXPECTED_IMAGES.get(path.name, 1)
    assert_prompt_matches_ui_to_api(entry["prompt"][2], workflow, object_info)


@pytest.mark.parametrize("path", PARTIAL_RUNS, ids=[p.stem for p in PARTIAL_RUNS])
def test_frontend_converts_example_workflow_and_its_audio_part_runs(page, comfy_server, object_info, path: Path):
    """Image model too big to run here (partial_runs.PARTIAL says why for each): the frontend opens the graph
    and converts all of it; the server runs the audio part of that prompt, the rest sent along unrun."""
    workflow = open_workflow(page, path)
    prompt = frontend_prompt(page)
    assert_prompt_matches_ui_to_api(prompt, workflow, object_info, shrink={})
    assert static_problems(prompt, object_info) == []
    entry = run_audio_part(comfy_server, prompt, object_info, workflow)
    assert saved_images(entry) == []
