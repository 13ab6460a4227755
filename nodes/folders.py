"""Model folders the pack reads: `models/audiotoken/` (embedders) and the host's `models/audio_encoders/` (BEATs).

The host keeps its own wav2vec2/Whisper encoders in `models/audio_encoders/` too; only BEATs files are offered.
"""

from __future__ import annotations

import itertools
import os

import folder_paths

from ..audiotoken_core import sources
from ..audiotoken_core.beats.sniff import EncoderFile, identify_encoder_file

EMBEDDER_FOLDER = sources.official("embedder").folder  # "audiotoken"
ENCODER_FOLDER = sources.official("audio_encoder").folder  # "audio_encoders"
EMBEDDINGS_FOLDER = "embeddings"
_ABSENT = itertools.count()  # file_fingerprint of a missing file: never equal to an earlier one

# What to tell about the files in models/audio_encoders that are not BEATs: the host's own encoders (and the
# core workflows that use them), and the pack's embedder put in the wrong folder.
KIND_NOTES = {"wav2vec2": ", which ComfyUI's own Audio Encoder Loader uses (Wan S2V)",
              "whisper": ", which ComfyUI's own Audio Encoder Loader uses (Wan HuMo)",
              "embedder": f"; it belongs in models/{EMBEDDER_FOLDER}"}
KIND_LABELS = {"beats_without_cfg": "BEATs weights without cfg", "wav2vec2": "wav2vec2, for ComfyUI's loader",
               "whisper": "Whisper, for ComfyUI's loader", "embedder": f"an embedder: move it to models/{EMBEDDER_FOLDER}",
               "other": "not an audio encoder", "unreadable": "unreadable"}
BEATS_NEEDED = (f"AudioToken needs a BEATs checkpoint: the official {sources.official('audio_encoder').name} "
                "(a dict with 'cfg' and 'model') or a .safetensors written by `python -m audiotoken_core.convert`; "
                "pick one the AudioToken Model Loader lists")


def register_folders() -> None:
    """Add `models/audiotoken/` without dropping what extra_model_paths.yaml registered before us.

    The yaml runs before packs import; `add_model_folder_path` creates unknown keys with an empty extension
    set (meaning "every file"), so we append our default folder and union in the model extensions.
    """
    default = os.path.join(folder_paths.models_dir, EMBEDDER_FOLDER)
    known = folder_paths.folder_names_and_paths
    if EMBEDDER_FOLDER in known:
        paths, exts = known[EMBEDDER_FOLDER]
        if default not in paths:
            paths.append(default)
        known[EMBEDDER_FOLDER] = (paths, set(exts) | set(folder_paths.supported_pt_extensions))
    else:
        known[EMBEDDER_FOLDER] = ([default], set(folder_paths.supported_pt_extensions))
    if ENCODER_FOLDER not in known:
        # Older hosts have no audio_encoders key; newer ones (0.3.64+) define it and we only reuse it.
        known[ENCODER_FOLDER] = ([os.path.join(folder_paths.models_dir, ENCODER_FOLDER)],
                                 set(folder_paths.supported_pt_extensions))


def list_files(folder: str) -> list[str]:
    return folder_paths.get_filename_list(folder)


def with_official(folder: str, names: list[str]) -> list[str]:
    """`names`, then each official file of `folder` that is not among them, under its plain name.

    A template or workflow that names the official file then validates before the file exists (and the
    frontend's missing-models scan, which flags a model-like combo value that is not among its options, finds
    nothing to flag); the loader fetches the file when the graph is queued (`official_to_fetch`).
    """
    return names + [s.name for s in sources.in_folder(folder) if s.name not in names]


def official_to_fetch(folder: str, name: str | None) -> str | None:
    """`name` when it is an official file of `folder` that is not on disk yet; None for any other name."""
    source = sources.find(name, folder) if name else None
    if source is None or source.name != name:  # a path in a subfolder is the user's own file
        return None
    path = folder_paths.get_full_path(folder, name)
    return None if path and os.path.isfile(path) else name


def fetch_note(folder: str) -> str:
    """One sentence for a file input's tooltip: which official files of `folder` are listed but not on disk yet.

    Only the names and sizes: the tooltip already says once how a listed official file is fetched."""
    absent = [s for s in sources.in_folder(folder) if official_to_fetch(folder, s.name)]
    if not absent:
        return ""
    files = ", ".join(f"{s.name} (about {sources.human_size(s.approx_bytes)})" for s in absent)
    return f" Not in models/{folder} yet: {files}."


def resolve(folder: str, name: str, what: str) -> str:
    """Full path of `name` in `folder`, or an error that says where the file was looked for."""
    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.isfile(path):
        where = ", ".join(folder_paths.get_folder_paths(folder)) or f"models/{folder}"
        raise FileNotFoundError(
            f"{what} '{name}' is not in models/{folder} (searched: {where}). Put the file there and press R in "
            "the UI to refresh the list, or pick another one.")
    return path


def file_fingerprint(folder: str, name: str) -> tuple:
    """(name, mtime_ns, size): changes when the file is replaced, so the host re-runs the loader.

    A file that is not there gets a new fingerprint on every call: the loader then always runs, and fetches an
    official file that was deleted since, instead of the host reusing the model it loaded from it before.
    """
    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.isfile(path):
        return (name, "absent", next(_ABSENT))
    st = os.stat(path)
    return (name, st.st_mtime_ns, st.st_size)


def encoder_files() -> list[tuple[str, EncoderFile]]:
    """Every file in models/audio_encoders with what it holds (headers only, cached per file state)."""
    found = []
    for name in list_files(ENCODER_FOLDER):
        path = folder_paths.get_full_path(ENCODER_FOLDER, name)
        if path is None:
            continue
        try:
            found.append((name, identify_encoder_file(path)))
        except OSError:  # removed since the host cached its listing
            continue
    return found


def beats_names(files: list[tuple[str, EncoderFile]]) -> list[str]:
    """The encoder files AudioToken can load; the host's own wav2vec2/Whisper files are left out."""
    return [name for name, what in files if what.is_beats]


def left_out_note(files: list[tuple[str, EncoderFile]], limit: int = 4) -> str:
    """One sentence naming the files beats_names() leaves out, for the dropdown's tooltip ("" if none)."""
    others = [f"{name} ({KIND_LABELS.get(what.kind, what.kind)})" for name, what in files if not what.is_beats]
    if not others:
        return ""
    more = f" and {len(others) - limit} more" if len(others) > limit else ""
    return f" Left out here: {', '.join(others[:limit])}{more}."


def not_beats_message(name: str, what: EncoderFile) -> str:
    return f"'{name}' in models/{ENCODER_FOLDER} is {what.description}{KIND_NOTES.get(what.kind, '')}. {BEATS_NEEDED}."


def resolve_beats(name: str) -> str:
    """Full path of a BEATs file in models/audio_encoders, or an error that says what the file is instead."""
    path = resolve(ENCODER_FOLDER, name, "Audio encoder")
    what = identify_encoder_file(path)
    if not what.is_beats:
        raise ValueError(not_beats_message(name, what))
    return path
