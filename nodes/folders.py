"""Model folders the pack reads: `models/audiotoken/` (embedders) and the host's `models/audio_encoders/` (BEATs)."""

from __future__ import annotations

import os

import folder_paths

EMBEDDER_FOLDER = "audiotoken"
ENCODER_FOLDER = "audio_encoders"
EMBEDDINGS_FOLDER = "embeddings"


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


def resolve(folder: str, name: str, what: str) -> str:
    """Full path of `name` in `folder`, or an error that says where the file was looked for."""
    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.isfile(path):
        where = ", ".join(folder_paths.get_folder_paths(folder)) or f"models/{folder}"
        raise FileNotFoundError(
            f"{what} '{name}' was not found in models/{folder} (searched: {where}). "
            f"Put the file there and press R in the UI to refresh the list.")
    return path


def file_fingerprint(folder: str, name: str) -> tuple:
    """(name, mtime_ns, size): changes when the file is replaced, so the host re-runs the loader."""
    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.isfile(path):
        return (name, None, None)
    st = os.stat(path)
    return (name, st.st_mtime_ns, st.st_size)
