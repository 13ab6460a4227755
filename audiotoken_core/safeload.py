"""Loading weight files without executing code from them, with errors a user can act on; writing any file
atomically (`atomic_write`), so a crash never leaves half of one under its final name."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError

from . import file_format


def load_torch_checkpoint(path: str | os.PathLike) -> dict:
    """`torch.load` restricted to tensors and plain containers.

    A checkpoint that needs arbitrary unpickling could run code on load, so it is refused rather than
    trusted; the error says how to get a safe file instead.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name}: the file is empty (0 bytes); download it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "GLOBAL" in msg:
            raise ValueError(
                f"{path.name}: refusing to load, the file needs arbitrary code to unpickle "
                f"({_first_line(msg)}). Only plain tensor checkpoints are accepted; convert it with "
                "`python -m audiotoken_core.convert` from a trusted environment, or use a .safetensors file."
            ) from exc
        raise ValueError(f"{path.name}: not a readable torch checkpoint ({_first_line(msg)})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, SafetensorError) as exc:
        # SafetensorError: torch 2.15's torch.load reads a file named *.safetensors with safetensors itself.
        raise ValueError(
            f"{path.name}: the file is truncated or corrupt ({_first_line(str(exc))}); download it again"
        ) from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path.name}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a .safetensors file; corrupt files raise ValueError."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{path.name}: not a valid .safetensors file, it may be truncated ({_first_line(str(exc))})"
        ) from exc
    return tensors, meta


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, suffix: str = ".tmp",
                 fsync: bool = True) -> Path:
    """`write(tmp)` fills a temp file beside `path`, which then replaces `path` in one rename.

    A crash at any moment leaves the old file or the new one under the final name, never half of one.
    `suffix` ends the temp name, for writers that pick the format from it (PIL: ".tmp.png").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if fsync:  # the rename must not reach the disk before the data it points at
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        # mkstemp makes the file private (0600); outputs should get the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_safetensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, object] | None = None
) -> Path:
    """Write atomically (`atomic_write`). Non-string metadata values are JSON-encoded, as safetensors
    only stores strings."""
    from safetensors.torch import save_file

    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    # safetensors refuses shared or non-contiguous storage; a private contiguous copy of each is cheap here
    clean = {k: v.detach().contiguous().clone() if _shares_storage(v, tensors) else v.detach().contiguous()
             for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(clean, str(tmp), metadata=meta))


def _shares_storage(t: torch.Tensor, tensors: dict[str, torch.Tensor]) -> bool:
    ptr = t.untyped_storage().data_ptr()
    return sum(1 for v in tensors.values() if v.untyped_storage().data_ptr() == ptr) > 1


def _is_zip(path: Path) -> bool:
    # mmap needs torch's zip format; a legacy pickle cannot be mapped
    return file_format.sniff(path) == file_format.TORCH_ZIP


def _first_line(msg: str) -> str:
    line = msg.strip().splitlines()[0] if msg.strip() else "unknown error"
    return line[:300]
