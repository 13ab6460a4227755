"""Atomic training checkpoints: written into a temp folder, fsynced, then renamed into place.

A run killed at any moment leaves either the previous complete checkpoint or the new one, never a
half-written folder under a final name. Batches and randomness are functions of the step (see
`batches.py`), so embedder + optimizer + scheduler state and the step number are all a resume needs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch

_NAME = re.compile(r"^step-(\d{8})$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def checkpoint_dirs(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(root: str | Path) -> Path | None:
    dirs = checkpoint_dirs(root)
    return dirs[-1] if dirs else None


def save_checkpoint(root: str | Path, step: int, trainable: dict[str, torch.Tensor], optimizer_state: dict,
                    scheduler_state: dict, state: dict, keep: int = 3) -> Path:
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-step-*"):  # leftovers of a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "trainable.safetensors"))
    torch.save(optimizer_state, tmp / "optimizer.pt")
    torch.save(scheduler_state, tmp / "scheduler.pt")
    (tmp / "state.json").write_text(json.dumps(dict(state, step=step), indent=1, sort_keys=True))
    for f in tmp.iterdir():
        _fsync_file(f)
    _fsync_dir(tmp)
    if final.exists():
        old = root / f".old-step-{step:08d}-{os.getpid()}"
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in checkpoint_dirs(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, dict, dict]:
    from safetensors.torch import load_file

    path = Path(path)
    try:
        trainable = load_file(str(path / "trainable.safetensors"))
        optimizer_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        scheduler_state = torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True)
        state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"checkpoint {path} is unreadable ({exc}); delete it to resume from an earlier one") from exc
    return trainable, optimizer_state, scheduler_state, state
