"""Convert a UI ("workflow", LiteGraph) JSON into the API format that POST /prompt executes.

`widgets_values` is positional: one value per widget input, in the node's input order, plus one extra
value after each input that has a control_after_generate widget ("randomize"/"fixed"). Upload and preview
pseudo-widgets (LoadAudio's [file, null, null]) come last and are ignored. Nodes that the server does not
know (MarkdownNote, Note: frontend-only) and muted nodes are dropped.
"""

from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_NAMES = {"seed", "noise_seed"}
MUTED_MODES = {2, 4}


def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_control(name: str, spec) -> bool:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "control_after_generate" in opts:
        return bool(opts["control_after_generate"])
    # The frontend adds a control widget to INT seeds even when the node does not ask for one.
    return spec[0] == "INT" and name in SEED_NAMES


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind not in object_info or node.get("mode", 0) in MUTED_MODES:
            continue
        info = object_info[kind]
        values = list(node.get("widgets_values") or [])
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs, pos = {}, 0
        for section in ("required", "optional"):
            for name in info.get("input_order", {}).get(section, []):
                spec = info["input"][section][name]
                if _is_widget(spec):
                    if pos < len(values):
                        inputs[name] = values[pos]
                    pos += 1
                    if _has_control(name, spec):
                        pos += 1
                if name in linked:
                    link = links[linked[name]]
                    inputs[name] = [str(link[1]), int(link[2])]
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs, "_meta": {"title": node.get("title", kind)}}
    return prompt


def set_inputs(prompt: dict, class_type: str, **values) -> int:
    """Override widget values on every node of `class_type` (e.g. shrink images for CPU tests)."""
    hits = 0
    for node in prompt.values():
        if node["class_type"] == class_type:
            for key, value in values.items():
                if not isinstance(node["inputs"].get(key), list):
                    node["inputs"][key] = value
            hits += 1
    return hits
