"""AudioTokenDownloadModels: the official AudioToken files, fetched on request into the right models folders.

The node lists the known files (`audiotoken_core.sources`) whether or not they are on disk. Queued, it downloads
the missing ones with the host's progress bar, verifies each before giving it its name, and outputs the names.
Nothing downloads unless a graph with this node is queued: that is the user's consent.
"""

from __future__ import annotations

import os

import comfy.utils
import folder_paths
from comfy_api.latest import io, ui

from ..audiotoken_core import download, sources
from . import host_compat
from .schema import schema
from .types import CATEGORY

NONE = "(none)"
# input id -> (kind in the sources table, what to tell the user it is for)
CHOICES = {
    "embedder": ("embedder", "for AudioToken Model Loader's embedder_name"),
    "audio_encoder": ("audio_encoder", "for AudioToken Model Loader's audio_encoder_name"),
    "lora": ("lora", "for the core Load LoRA (Model Only) node; optional, the paper uses no LoRA"),
}
_FOLDERS = ", ".join(f"models/{sources.official(kind).folder}" for kind, _ in CHOICES.values())


def ensure_model(folder: str, name: str) -> str:
    """Full path of an official file in its models folder, downloaded first (host progress bar) if absent.

    For other nodes too: a loader that offers an official file which is not on disk yet calls this.
    """
    found = folder_paths.get_full_path(folder, name)
    if found and os.path.isfile(found):
        return found
    source = sources.find(name, folder)
    if source is None:
        raise FileNotFoundError(f"'{name}' is not an official AudioToken file of models/{folder}; put it there by hand")
    target = folder_paths.get_folder_paths(folder)[0]
    bar = comfy.utils.ProgressBar(source.approx_bytes)

    def progress(done: int, total: int | None) -> None:
        # Also an interruption point: the server's progress hook raises when Cancel was pressed; the part
        # file stays, and the next queue resumes it.
        bar.update_absolute(done, total or max(done, source.approx_bytes))

    return str(download.fetch(source, target, progress=progress))


def _tooltip(kind: str, use: str) -> str:
    rows = sources.of_kind(kind)
    lines = [f"{s.name}: {s.note}; about {sources.human_size(s.approx_bytes)}, {s.licence}; saved in "
             f"models/{s.folder}. Verified after the download, before it gets its name: its {s.check_words} "
             f"must match; a download that does not match is deleted." for s in rows]
    return (f"Official file to fetch when missing ({use}). " + " ".join(lines)
            + f" Pick {NONE} to fetch nothing here. A file already in the folder is used as it is, unchecked.")


class AudioTokenDownloadModels(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        inputs = []
        for input_id, (kind, use) in CHOICES.items():
            names = [s.name for s in sources.of_kind(kind)]
            options = [NONE, *names] if kind == "lora" else [*names, NONE]
            inputs.append(io.Combo.Input(input_id, options=options, default=options[0], tooltip=_tooltip(kind, use)))
        return schema(
            node_id="AudioTokenDownloadModels",
            search_aliases=["download audiotoken models", "model download", "sound"],
            display_name="AudioToken Download Models",
            category=CATEGORY,
            is_output_node=True,
            description=("Downloads the official AudioToken files that are missing (embedder, BEATs, optionally "
                         f"the official LoRA) into {_FOLDERS}, verifies each, and outputs their names. Queue it once, then press R to refresh the "
                         "loaders' lists. Set AUDIOTOKEN_DOWNLOAD_MIRROR=http://HOST:PORT to use a mirror."),
            inputs=inputs,
            # Any type, not STRING: the host and the frontend accept a link from it into a loader's file combo
            # (a STRING output may not feed a combo), so a loader can wait for the file this node fetches.
            outputs=[io.AnyType.Output(display_name=f"{input_id}_name",
                                       tooltip=f"The file name in models/{sources.of_kind(kind)[0].folder} "
                                               f"({use}); empty when {NONE}. Link it into that loader's file "
                                               "input, and the loader runs after the download.")
                     for input_id, (kind, use) in CHOICES.items()],
        )

    @classmethod
    def validate_inputs(cls, **values):
        # The server does not check V3 combo values against their options, so do it here.
        for input_id, (kind, _) in CHOICES.items():
            value = values.get(input_id)
            names = [s.name for s in sources.of_kind(kind)]
            if value is not None and value != NONE and value not in names:
                return f"{input_id} must be one of {', '.join(names + [NONE])}, got '{value}'"
        return True

    @classmethod
    def fingerprint_inputs(cls, **values):
        # Runs again once a file it fetched was deleted or replaced.
        return tuple((v, _file_state(CHOICES[k][0], v)) for k, v in sorted(values.items()) if k in CHOICES)

    @classmethod
    def execute(cls, embedder, audio_encoder, lora=NONE) -> io.NodeOutput:
        host_compat.require("model folders")
        names, report = [], []
        for name in (embedder, audio_encoder, lora):
            if name == NONE:
                names.append("")
                continue
            source = sources.find(name)
            had = folder_paths.get_full_path(source.folder, name)
            path = ensure_model(source.folder, name)
            report.append(_result_line(source, path, fetched=not had))
            names.append(name)
        return io.NodeOutput(*names, ui=ui.PreviewText("\n\n".join(report) or "nothing chosen"))


def _result_line(source: sources.Source, path: str, fetched: bool) -> str:
    """What the node shows for one file: fetched or found, checked how, where it is."""
    size = sources.human_size(os.path.getsize(path))
    if not fetched:
        return f"{source.name}: already in {os.path.dirname(path)} ({size}; used as it is)"
    return (f"{source.name}: downloaded and verified into {os.path.dirname(path)} ({size}; matched its "
            f"{sources.resolved(source).check_words})")


def _file_state(kind: str, name: str):
    source = sources.find(name) if name and name != NONE else None
    if source is None or source.kind != kind:
        return None
    path = folder_paths.get_full_path(source.folder, name)
    if not path or not os.path.isfile(path):
        return None
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
