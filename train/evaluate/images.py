"""The evaluation's image files: where each row's PNGs and the reference frames live, how they are written,
and the `generation.json` that says which settings made a row's images."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from audiotoken_core.safeload import atomic_write, atomic_write_text

SIGNATURE_FILE = "generation.json"


def safe_name(clip_id: str) -> str:
    """A file name for a clip id (ids may hold '/' or '@' from manifests); a short hash keeps it unique."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    return f"{base}-{hashlib.sha1(clip_id.encode('utf-8')).hexdigest()[:8]}"


def image_path(root: Path, row: str, clip_id: str, seed: int) -> Path:
    return root / row / f"{safe_name(clip_id)}_s{seed}.png"


def reference_path(root: Path, clip_id: str) -> Path:
    return root / "reference" / f"{safe_name(clip_id)}.png"


def row_images(row: str, clips, images_root: Path, seeds) -> tuple[np.ndarray, list[Path]]:
    """(owner clip index per image, image paths) of a row, in a fixed order."""
    if row == "ground_truth":
        return np.arange(len(clips)), [reference_path(images_root, c.id) for c in clips]
    owner, paths = [], []
    for i, c in enumerate(clips):
        for s in seeds:
            owner.append(i)
            paths.append(image_path(images_root, row, c.id, s))
    return np.asarray(owner, dtype=np.int64), paths


def save_image(path: Path, image) -> None:
    # the temp name ends in .png: PIL picks the format from it
    atomic_write(path, lambda tmp: image.convert("RGB").save(tmp), suffix=".tmp.png")


def open_image(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def check_signature(folder: Path, signature: dict, overwrite: bool) -> bool:
    """True when images already in `folder` were made with `signature` (so they can be reused).

    A folder made with other settings is an error unless `overwrite`, because silently mixing two settings
    in one row would make the numbers meaningless."""
    sig_file = folder / SIGNATURE_FILE
    if not sig_file.is_file():
        return False
    saved = json.loads(sig_file.read_text(encoding="utf-8"))
    if saved == json.loads(json.dumps(signature)):
        return True
    if overwrite:
        return False
    changed = sorted(k for k in set(saved) | set(signature) if saved.get(k) != signature.get(k))
    raise ValueError(
        f"{folder} holds images generated with other settings (differs in: {', '.join(changed)}). "
        "Use another --out, or pass --overwrite to regenerate them."
    )


def write_signature(folder: Path, signature: dict) -> None:
    atomic_write_text(folder / SIGNATURE_FILE, json.dumps(signature, indent=2, sort_keys=True))
