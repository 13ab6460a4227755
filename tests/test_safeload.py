import collections
import pickle

import pytest
import torch

from audiotoken_core.safeload import (
    load_torch_checkpoint,
    read_safetensors,
    write_safetensors,
)


class NotATensor:
    """A class the safe unpickler must refuse to construct."""

    def __init__(self):
        self.x = 1


def test_plain_state_dict_loads(tmp_path):
    sd = collections.OrderedDict(w=torch.randn(3, 2))
    torch.save(sd, tmp_path / "a.bin")
    out = load_torch_checkpoint(tmp_path / "a.bin")
    assert torch.equal(out["w"], sd["w"])


def test_pickle_needing_code_is_refused(tmp_path):
    torch.save({"model": {}, "cfg": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="arbitrary code"):
        load_torch_checkpoint(tmp_path / "evil.pt")


def test_reduce_payload_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "boom.pt", "wb") as f:
        pickle.dump({"x": Boom()}, f)
    with pytest.raises(ValueError):
        load_torch_checkpoint(tmp_path / "boom.pt")


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_file(tmp_path, keep):
    torch.save({"w": torch.randn(256, 256)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="cut.pt"):
        load_torch_checkpoint(tmp_path / "cut.pt")


def test_empty_and_missing(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_torch_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        load_torch_checkpoint(tmp_path / "nope.pt")


def test_not_a_dict(tmp_path):
    torch.save(torch.zeros(2), tmp_path / "t.pt")
    with pytest.raises(ValueError, match="dict"):
        load_torch_checkpoint(tmp_path / "t.pt")


def test_safetensors_roundtrip_with_metadata(tmp_path):
    shared = torch.randn(4, 4)
    tensors = {"a": shared, "b": shared, "c": torch.arange(6).view(2, 3).t()}
    write_safetensors(tensors, tmp_path / "x.safetensors", {"cfg": {"n": 1}, "name": "x"})
    back, meta = read_safetensors(tmp_path / "x.safetensors")
    assert meta == {"cfg": '{"n": 1}', "name": "x"}
    for k, v in tensors.items():
        assert torch.equal(back[k], v)
    assert not list(tmp_path.glob(".*tmp"))


def test_truncated_safetensors(tmp_path):
    write_safetensors({"a": torch.randn(100, 100)}, tmp_path / "x.safetensors")
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "y.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="y.safetensors"):
        read_safetensors(tmp_path / "y.safetensors")


def test_written_file_is_not_private(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_safetensors({"a": torch.zeros(1)}, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
