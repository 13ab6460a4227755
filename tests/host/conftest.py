"""Shared fixtures for the host-integration tests (real ComfyUI; need COMFYUI_PATH).

Each test module skips itself at import time when COMFYUI_PATH is unset, so the reason shows in the report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from host_env import COMFYUI_PATH, SKIP_REASON, comfy_in_process  # noqa: E402

# Set by scripts/test.sh for each host of the matrix: there a skipped host test is a failure, so a run can
# never pass on tests that did not run.
STRICT = bool(os.environ.get("AUDIOTOKEN_STRICT_HOST"))


def pytest_configure(config):
    if STRICT and not COMFYUI_PATH:
        raise pytest.UsageError("AUDIOTOKEN_STRICT_HOST is set but COMFYUI_PATH is not: no host to test")


def _fail_skip(report, when: str) -> None:
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"host test skipped during {when}, which the host matrix does not allow: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), "the test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), "collection")


@pytest.fixture(scope="session")
def host_assets(tmp_path_factory) -> dict[str, Path]:
    if not COMFYUI_PATH:
        pytest.skip(SKIP_REASON)
    comfy_in_process()  # the checkpoint factory takes key shapes from ComfyUI's modules
    from host_assets import build_assets

    return build_assets(tmp_path_factory.mktemp("audiotoken_assets"))


@pytest.fixture(scope="module")
def folders(host_assets, tmp_path_factory):
    """Point the host's model folders at the generated files, as extra_model_paths.yaml would (in-process tests)."""
    import folder_paths

    from inprocess import pack_module

    pack_module("extension")  # registers models/audiotoken
    embeddings = tmp_path_factory.mktemp("embeddings")
    folder_paths.add_model_folder_path("audiotoken", str(host_assets["audiotoken"]), is_default=True)
    folder_paths.add_model_folder_path("audio_encoders", str(host_assets["audio_encoders"]), is_default=True)
    folder_paths.add_model_folder_path("embeddings", str(embeddings), is_default=True)
    return {"embeddings": embeddings, **host_assets}


@pytest.fixture(scope="module")
def comfy_server(host_assets, tmp_path_factory):
    """One ComfyUI per test module, the pack symlinked under an odd folder name."""
    from host_harness import asset_server

    server = asset_server(COMFYUI_PATH, host_assets, tmp_path_factory.mktemp("comfy_base")).start()
    yield server
    server.stop()
