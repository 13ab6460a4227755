"""What container a weight file is, from its first bytes: the one sniffing rule every loader uses.

* safetensors: an 8-byte little-endian header length, then the JSON header, which starts with `{`;
* torch zip (`torch.save` since torch 1.6): a zip archive, `PK\\x03\\x04`;
* torch legacy pickle: the pickle protocol opcode `0x80`.

safetensors is checked first: its first byte is the header length's low byte, which can be 0x80 like a pickle's.
"""

from __future__ import annotations

import os

SAFETENSORS = "safetensors"
TORCH_ZIP = "torch_zip"
TORCH_PICKLE = "torch_pickle"
EMPTY = "empty"
UNKNOWN = "unknown"

TORCH_FORMATS = (TORCH_ZIP, TORCH_PICKLE)


def sniff(path: str | os.PathLike) -> str:
    """One of SAFETENSORS, TORCH_ZIP, TORCH_PICKLE, EMPTY, UNKNOWN; OSError when the file cannot be read."""
    with open(path, "rb") as f:
        head = f.read(9)
    if not head:
        return EMPTY
    if len(head) == 9 and head[8:9] == b"{":
        return SAFETENSORS
    if head.startswith(b"PK\x03\x04"):
        return TORCH_ZIP
    if head[:1] == b"\x80":
        return TORCH_PICKLE
    return UNKNOWN


def is_safetensors(path: str | os.PathLike) -> bool:
    return sniff(path) == SAFETENSORS

