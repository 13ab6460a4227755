"""The node search finds the pack by the words people type, on a host whose Schema takes search_aliases (0.33.0);
a host without the field (0.3.64) loads every node all the same. Each registered node has its help page."""

from __future__ import annotations

import dataclasses

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

from host_harness import REPO_ROOT  # noqa: E402
from inprocess import pack_module  # noqa: E402

# What a newcomer types (issue 28) and the nodes that must answer it.
WORDS = {
    "sound to image": {"AudioTokenEncode", "AudioTokenTextEncode"},
    "microphone": {"AudioTokenEncode"},
    "audio to image": {"AudioTokenEncode", "AudioTokenTextEncode"},
    "textual inversion": {"AudioTokenSaveEmbedding", "AudioTokenTextEncode"},
    "audioset tags": {"AudioTokenDescribe"},
    "prompt travel": {"AudioTokenSchedule"},
    "sound": {"AudioTokenEncode", "AudioTokenBlend", "AudioTokenSchedule", "AudioTokenDescribe"},
}


def test_node_info_carries_the_aliases_where_the_host_takes_them():
    nodes = pack_module("extension").NODES
    from comfy_api.latest import io

    infos = {node.GET_SCHEMA().node_id: node.GET_NODE_INFO_V1() for node in nodes}
    assert len(infos) == 8
    # Every registered node has its help page (tests/test_node_help.py checks what the pages hold).
    assert {p.stem for p in (REPO_ROOT / "web" / "docs").glob("*.md")} == set(infos)
    if "search_aliases" not in {f.name for f in dataclasses.fields(io.Schema)}:
        assert not any(info.get("search_aliases") for info in infos.values())
        return
    for node_id, info in infos.items():
        assert info.get("search_aliases"), node_id
    for word, node_ids in WORDS.items():
        found = {node_id for node_id, info in infos.items() if word in info["search_aliases"]}
        assert node_ids <= found, word
