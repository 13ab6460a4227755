"""`audiotoken_core.file_format.sniff`: the one rule BEATs, embedder and audio-encoder-folder loaders share."""

from __future__ import annotations

import struct

import pytest
import torch
from safetensors.torch import save_file

from audiotoken_core import file_format as ff


def test_each_container_by_its_first_bytes(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "a.safetensors"))
    torch.save({"x": torch.zeros(2)}, tmp_path / "zip.pt")
    torch.save({"x": torch.zeros(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "text.bin").write_bytes(b"hello world, no tensors")
    found = {p.name: ff.sniff(p) for p in sorted(tmp_path.iterdir())}
    assert found == {"a.safetensors": ff.SAFETENSORS, "zip.pt": ff.TORCH_ZIP, "legacy.pt": ff.TORCH_PICKLE,
                     "empty.bin": ff.EMPTY, "text.bin": ff.UNKNOWN}
    assert ff.is_safetensors(tmp_path / "a.safetensors") and not ff.is_safetensors(tmp_path / "zip.pt")


def test_safetensors_whose_header_length_starts_like_a_pickle(tmp_path):
    header = b"{" + b" " * (0x80 - 2) + b"}"  # 128 bytes: the length's low byte is 0x80, the pickle opcode
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    assert path.read_bytes()[0] == 0x80
    assert ff.sniff(path) == ff.SAFETENSORS


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        ff.sniff(tmp_path / "nowhere.bin")
