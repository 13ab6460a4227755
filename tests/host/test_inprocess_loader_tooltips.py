"""The Model Loader's file tooltips say once how a listed official file is fetched (issue 28, first contact 5:
the embedder_name tooltip said it twice) and name the official files not on disk yet."""

from __future__ import annotations

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

from inprocess import pack_module  # noqa: E402


def test_file_tooltips_say_how_official_files_are_fetched_once():
    pack_module("extension")  # registers the model folders, as loading the pack does
    loader = pack_module("model_loader").AudioTokenModelLoader
    folders = pack_module("folders")
    inputs = loader.GET_NODE_INFO_V1()["input"]["required"]
    for name, folder in (("embedder_name", folders.EMBEDDER_FOLDER), ("audio_encoder_name", folders.ENCODER_FOLDER)):
        tip = inputs[name][1]["tooltip"]
        assert tip.count("queueing the graph") == 1 and tip.count("download") == 1, tip
        assert folders.fetch_note(folder) in tip, tip
        assert "Not in models/" in tip, tip  # the in-process host starts without the official files
