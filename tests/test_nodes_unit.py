"""Host-free checks of the node pack: the entry point and the example workflow files."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
OUR_NODES = {"AudioTokenModelLoader", "AudioTokenEncode", "AudioTokenTextEncode", "AudioTokenSaveEmbedding",
             "AudioTokenBlend", "AudioTokenSchedule", "AudioTokenDescribe", "AudioTokenDownloadModels"}
CORE_NODES = {"CheckpointLoaderSimple", "LoadAudio", "RecordAudio", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode",
              "SaveImage", "SaveAnimatedWEBP", "LoraLoaderModelOnly", "MarkdownNote", "Note",
              # the Flux graphs (audiotoken_describe_flux.json, audiotoken_flux_token.json); each is in both
              # tested hosts
              "UNETLoader", "DualCLIPLoader", "VAELoader", "CLIPTextEncodeFlux", "FluxGuidance",
              "ConditioningZeroOut", "EmptySD3LatentImage", "StringConcatenate"}
# Where window_seconds sits among each node's saved widget values (its input order, optional inputs last).
WINDOW_WIDGET = {"AudioTokenEncode": 2, "AudioTokenDescribe": 3, "AudioTokenSchedule": 4}


def test_root_package_imports_without_comfyui():
    name = "audiotoken_root_import_check"
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    spec.loader.exec_module(module)
    assert inspect.iscoroutinefunction(module.comfy_entrypoint)
    # NODE_CLASS_MAPPINGS would make ComfyUI ignore comfy_entrypoint.
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")
    assert not {"torch", "comfy", "folder_paths"} & (set(sys.modules) - before)


def test_entrypoint_needs_the_host():
    name = "audiotoken_root_entry_check"
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if importlib.util.find_spec("comfy_api") is None:
        with pytest.raises(ImportError):
            asyncio.run(module.comfy_entrypoint())


@pytest.mark.parametrize("path", sorted((ROOT / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_nodes_use_only_relative_imports_of_the_pack(path):
    """`nodes` is ComfyUI's own module name, and the pack's folder name is arbitrary."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] not in {"nodes", "audiotoken_core", "train"}, node.module
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in {"nodes", "audiotoken_core", "train"}, alias.name


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_a_trained_embedder_names_its_folder_for_missing_models(path):
    """An embedder the user trains is missing on a fresh install; the frontend's Missing Models reads its folder
    from the node's `properties.models` entry ("Unknown" without one). Official files are listed, never missing."""
    from audiotoken_core import sources

    for n in json.loads(path.read_text())["nodes"]:
        if n["type"] != "AudioTokenModelLoader" or sources.find(n["widgets_values"][0], "audiotoken"):
            continue
        entries = {m["name"]: m for m in n.get("properties", {}).get("models", [])}
        assert entries[n["widgets_values"][0]]["directory"] == sources.official("embedder").folder, n


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_example_workflow_is_consistent_litegraph(path):
    wf = json.loads(path.read_text())
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert wf["version"] == 0.4 and wf["last_node_id"] >= max(nodes)
    assert {n["type"] for n in nodes.values()} <= OUR_NODES | CORE_NODES
    assert OUR_NODES & {n["type"] for n in nodes.values()}
    link_ids = [link[0] for link in wf["links"]]
    assert len(link_ids) == len(set(link_ids)) and wf["last_link_id"] >= max(link_ids)
    for link_id, src, src_slot, dst, dst_slot, kind in wf["links"]:
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        # A link out of an any-type ("*") output has the input's type, as the frontend saves it.
        assert link_id in out["links"] and inp["link"] == link_id and inp["type"] == kind and out["type"] in (kind, "*")
    for n in nodes.values():
        for inp in n.get("inputs", []):
            assert inp["link"] is None or inp["link"] in link_ids
        for model in n.get("properties", {}).get("models", []):
            assert model["url"].startswith("https://") and model["directory"] and model["name"]
            assert model["name"] in n["widgets_values"]
        if n["type"] == "LoadAudio":
            assert len(n["widgets_values"]) == 3 and n["widgets_values"][1:] == [None, None]
        if n["type"] == "AudioTokenTextEncode":
            assert "<audio>" in n["widgets_values"][0]
        if n["type"] in WINDOW_WIDGET:  # 0: the window the embedder records (test_server_workflows reads names)
            assert n["widgets_values"][WINDOW_WIDGET[n["type"]]] == 0.0, n
