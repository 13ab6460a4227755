"""Example workflows whose image model is too big to run here: the whole graph is checked, the audio part runs.

No tiny SDXL or Flux stand-in exists that the host accepts (its model detection matches full-size UNet and DiT
configs), so, as the issue allows, these workflows are tested in two halves:
- the whole graph loads in the real frontend with no missing nodes, converts to the same API prompt there as
  with ui_to_api, and resolves against the server's node definitions (`static_problems`: every required input
  present, every combo value offered, every link between matching types);
- its audio part (LoadAudio, the pack's loader and nodes, and core nodes fed only by them) runs on the server,
  on the tiny BEATs and embedder, with the rest of the frontend's prompt sent along and not run
  (`partial_execution_targets`, the server's own "run only these outputs").
The image-model files the workflows name are present as placeholders (`write_placeholders`), so that their
combos and the frontend's missing-models check resolve; a placeholder is never loaded, and loading one fails.
Every example workflow is either run whole (test_server_workflows / test_frontend_workflows) or listed here.
"""

from __future__ import annotations

import json
from pathlib import Path

PARTIAL = {
    "audiotoken_sdxl_hybrid.json":
        "SDXL base (6.9 GB) is too big to run here. The text-encode half of this graph, the official SD1 "
        "embedder's token in clip_l and BEATs's words in clip_g, is proven in process on a small SDXL CLIP by "
        "tests/host/test_inprocess_families.py::test_sdxl_full_encode_equals_the_hosts_hybrid.",
    "audiotoken_describe_flux.json":
        "Flux.1 dev (a 23.8 GB diffusion model, a 9.8 GB T5-XXL) is too big to run here; Describe's text reaches "
        "CLIP Text Encode (Flux) through core Concatenate, which runs.",
    "audiotoken_flux_token.json":
        "Flux.1 dev is too big to run here. The Text Encode half of this graph, with this template's own prompt, "
        "a Flux embedder's tokens in clip_l and t5xxl, is proven in process on Flux's small CLIP-L + T5 built from "
        "the host's classes, equal to the host's own embedding: path, by "
        "tests/host/test_inprocess_families.py::test_the_flux_templates_text_encode_equals_the_host.",
}
# Loaders of the image model: nodes downstream of one are not part of the audio part.
IMAGE_MODEL_LOADERS = {"CheckpointLoaderSimple", "UNETLoader", "DualCLIPLoader", "VAELoader"}
AUDIO_SOURCES = {"LoadAudio"}
SHOWS_TEXT = {"AudioTokenEncode", "AudioTokenDescribe"}  # pack nodes whose preview must come back
PLAIN_TYPES = {"STRING", "INT", "FLOAT", "BOOLEAN"}
PROBE = "PreviewAny"  # a core output node on both hosts: shows a value that crosses out of the audio part


def split_workflows(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(run whole, run in part): each example workflow in exactly one of them."""
    names = {p.name for p in paths}
    assert set(PARTIAL) <= names, f"PARTIAL names workflows that do not exist: {sorted(set(PARTIAL) - names)}"
    return [p for p in paths if p.name not in PARTIAL], [p for p in paths if p.name in PARTIAL]


def placeholder_models(paths: list[Path]) -> dict[str, set[str]]:
    """{models folder: file names} that the image-model loaders of the partial workflows name."""
    wanted: dict[str, set[str]] = {}
    for path in paths:
        if path.name not in PARTIAL:
            continue
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] in IMAGE_MODEL_LOADERS:
                for model in node.get("properties", {}).get("models", []):
                    wanted.setdefault(model["directory"], set()).add(model["name"])
    return wanted


def write_placeholders(models_dir: Path, paths: list[Path]) -> list[Path]:
    """A one-tensor safetensors file under each name: listed by the server, never a loadable model."""
    from safetensors.torch import save_file
    import torch

    written = []
    for folder, names in placeholder_models(paths).items():
        for name in sorted(names):
            target = models_dir / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            save_file({"audiotoken_test_placeholder": torch.zeros(1)}, str(target),
                      metadata={"note": "placeholder for a model too big for the tests; never loaded"})
            written.append(target)
    return written



def _links(node: dict):
    for name, value in node["inputs"].items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            yield name, value[0], int(value[1])


def _spec(info: dict, name: str):
    for section in ("required", "optional"):
        if name in info["input"].get(section, {}):
            return info["input"][section][name]
    return None


def _combo_options(spec) -> list | None:
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1:
        return spec[1].get("options")
    return None


def _types_match(sent: str, wanted: str) -> bool:
    if "*" in (sent, wanted):
        return True
    return bool(set(sent.split(",")) & set(wanted.split(",")))


def static_problems(prompt: dict, object_info: dict) -> list[str]:
    """What the server's validation would refuse in the whole prompt, checked against /object_info."""
    problems = []
    for node_id, node in prompt.items():
        kind = node["class_type"]
        info = object_info.get(kind)
        if info is None:
            problems.append(f"#{node_id}: the server has no node {kind}")
            continue
        for name in info["input"].get("required", {}):
            if name not in node["inputs"]:
                problems.append(f"#{node_id} {kind}: required input {name} missing")
        linked = {name for name, _, _ in _links(node)}
        for name, value in node["inputs"].items():
            spec = _spec(info, name)
            if spec is None or name in linked:
                continue
            options = _combo_options(spec)
            if options is not None and value not in options:
                problems.append(f"#{node_id} {kind}.{name}: {value!r} is not one of the server's options")
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if "min" in opts and value < opts["min"] or "max" in opts and value > opts["max"]:
                    problems.append(f"#{node_id} {kind}.{name}: {value} outside [{opts.get('min')}, {opts.get('max')}]")
        for name, src, slot in _links(node):
            if src not in prompt:
                problems.append(f"#{node_id} {kind}.{name}: linked to missing node #{src}")
                continue
            outputs = object_info.get(prompt[src]["class_type"], {}).get("output", [])
            spec = _spec(info, name)
            if slot >= len(outputs) or spec is None:
                problems.append(f"#{node_id} {kind}.{name}: bad link from #{src} slot {slot}")
                continue
            wanted = "COMBO" if isinstance(spec[0], list) else spec[0]
            if not _types_match(outputs[slot], wanted):
                problems.append(f"#{node_id} {kind}.{name}: gets {outputs[slot]} from #{src}, wants {wanted}")
    return problems



def audio_part(prompt: dict) -> set[str]:
    """The nodes that need no image model: the audio sources, what only they (and other such nodes) feed,
    and everything upstream of those (the pack's model loader)."""
    memo: dict[str, bool] = {}

    def clean(node_id: str) -> bool:
        if node_id not in memo:
            memo[node_id] = False  # no cycles in a valid prompt; this only stops a broken one from recursing
            node = prompt[node_id]
            memo[node_id] = (node["class_type"] not in IMAGE_MODEL_LOADERS
                             and all(src in prompt and clean(src) for _, src, _ in _links(node)))
        return memo[node_id]

    def upstream(node_id: str, seen: set[str]) -> set[str]:
        for _, src, _ in _links(prompt[node_id]):
            if src not in seen:
                seen.add(src)
                upstream(src, seen)
        return seen

    heard = {n for n, node in prompt.items() if node["class_type"] in AUDIO_SOURCES}
    part = {n for n in prompt if clean(n) and (n in heard or upstream(n, set()) & heard)}
    for n in list(part):
        part |= upstream(n, set())
    return part


def with_probes(prompt: dict, part: set[str], object_info: dict) -> tuple[dict, list[str], dict[str, str]]:
    """The prompt plus a PreviewAny on each node that is not an output node and whose value leaves the audio
    part (on its first plain output, e.g. Encode's count, else on the value that leaves); returns
    (prompt, the output nodes to run, {probe id: the node it shows})."""
    out = json.loads(json.dumps(prompt))
    crossing: dict[str, int] = {}
    for node_id, node in prompt.items():
        if node_id in part:
            continue
        for _, src, slot in _links(node):
            info = object_info[prompt[src]["class_type"]]
            if src in part and not info.get("output_node"):
                plain = [k for k, kind in enumerate(info["output"]) if kind in PLAIN_TYPES]
                crossing[src] = plain[0] if plain else min(slot, crossing.get(src, slot))
    next_id = max(int(n) for n in prompt if n.isdigit()) + 1
    probes = {}
    for src, slot in sorted(crossing.items()):
        probe_id = str(next_id)
        next_id += 1
        out[probe_id] = {"class_type": PROBE, "inputs": {"source": [src, slot]},
                         "_meta": {"title": f"test probe: #{src} output {slot}"}}
        probes[probe_id] = src
    targets = sorted(n for n in part if object_info[prompt[n]["class_type"]].get("output_node")) + sorted(probes)
    return out, targets, probes


def run_audio_part(server, prompt: dict, object_info: dict, workflow: dict | None = None) -> dict:
    """Queue the whole prompt (plus probes), running only its audio part; check it ran and showed its text."""
    part = audio_part(prompt)
    assert part, "no audio part in the prompt"
    assert not {prompt[n]["class_type"] for n in part} & IMAGE_MODEL_LOADERS
    probed, targets, probes = with_probes(prompt, part, object_info)
    assert targets, f"nothing in the audio part {sorted(part)} is or feeds an output"
    entry = server.run(probed, workflow, targets=targets, timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    outputs = entry.get("outputs", {})
    ran_outside = set(outputs) - part - set(probes)
    assert not ran_outside, f"nodes outside the audio part ran: {sorted(ran_outside)}"
    for target in targets:
        texts = outputs.get(target, {}).get("text")
        assert texts and all(isinstance(t, str) and t.strip() for t in texts), (target, outputs.get(target))
    # The pack's previews came back: Encode's (what BEATs heard), Describe's (the labels with their scores).
    for node_id in part:
        if prompt[node_id]["class_type"] in SHOWS_TEXT:
            texts = outputs.get(node_id, {}).get("text", [])
            assert any(t.strip() for t in texts), (node_id, prompt[node_id]["class_type"], outputs.get(node_id))
    entry["audio_part"], entry["probes"] = sorted(part), probes
    return entry
