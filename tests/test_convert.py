"""`python -m audiotoken_core.convert`: official files → our .safetensors, exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from factories.embedder import write_tiny_embedder, write_tiny_official_embedder

from audiotoken_core import convert
from audiotoken_core.embedder import OFFICIAL_KEYS, load_embedder
from audiotoken_core.safeload import read_safetensors

IN = 48
ROOT = Path(__file__).resolve().parents[1]


def test_official_embedder_round_trip_is_bit_exact(tmp_path):
    src = write_tiny_official_embedder(tmp_path / "embedder_learned_embeds.bin", in_dim=IN, out_dim=768, seed=3)
    assert convert.main([str(src)]) == 0
    dst = tmp_path / "embedder_learned_embeds.safetensors"

    original = torch.load(src, weights_only=True)
    tensors, metadata = read_safetensors(dst)
    assert sorted(tensors) == sorted(f"l.{k}" for k in OFFICIAL_KEYS)
    for k, v in original.items():
        t = tensors[f"l.{k}"]
        assert t.dtype == v.dtype and torch.equal(t, v), k
    assert metadata["format"] == "audiotoken-embedder" and metadata["format_version"] == "2"
    assert json.loads(metadata["widths"]) == {"l": 768} and json.loads(metadata["layers"]) == [4, 8, 12]
    assert metadata["encoder_width"] == "16" and metadata["source"] == "official:embedder_learned_embeds.bin"

    a, b = load_embedder(src), load_embedder(dst)
    x = torch.randn(2, 11, IN)
    assert torch.equal(a(x), b(x))
    a.faithful_dropout = b.faithful_dropout = True
    torch.manual_seed(9)
    ya = a(x)
    torch.manual_seed(9)
    assert torch.equal(ya, b(x))


def test_1024_wide_embedder_becomes_head_h_and_head_override(tmp_path):
    src = write_tiny_official_embedder(tmp_path / "sd2.bin", in_dim=IN, out_dim=1024)
    kind, dst = convert.convert_file(src)
    assert kind == "embedder" and load_embedder(dst).widths == {"h": 1024}

    odd = write_tiny_official_embedder(tmp_path / "odd.bin", in_dim=IN, out_dim=32)
    with pytest.raises(ValueError, match="no known CLIP"):
        convert.convert_file(odd)
    assert not (tmp_path / "odd.safetensors").exists()
    _, dst = convert.convert_file(odd, tmp_path / "out" / "odd_l.safetensors", head="l")
    assert load_embedder(dst).widths == {"l": 32}


def test_refuses_to_overwrite_and_to_convert_safetensors(tmp_path, capsys):
    src = write_tiny_official_embedder(tmp_path / "e.bin", in_dim=IN)
    out = tmp_path / "e.safetensors"
    out.write_bytes(b"keep me")
    assert convert.main([str(src)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert convert.main([str(src), "--overwrite"]) == 0
    assert load_embedder(out).widths == {"l": 768}

    ours = write_tiny_embedder(tmp_path / "ours.safetensors", IN, {"l": 24})
    assert convert.main([str(ours), "-o", str(tmp_path / "again.safetensors")]) == 2
    assert "already a .safetensors" in capsys.readouterr().err


def test_bad_input_is_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "broken.bin"
    bad.write_bytes(b"\x80\x02garbage")
    assert convert.main([str(bad)]) == 2
    assert "broken.bin" in capsys.readouterr().err
    assert convert.main([str(tmp_path / "absent.bin")]) == 2


def test_beats_checkpoint_is_dispatched_to_the_beats_converter(tmp_path):
    from testkit.beats import write_tiny_official_beats

    from audiotoken_core.beats import load_beats

    src = write_tiny_official_beats(tmp_path / "beats.pt", layers=2, dim=32, heads=2)
    kind, dst = convert.convert_file(src)
    assert kind == "beats"
    assert "beats_cfg" in read_safetensors(dst)[1]
    assert load_beats(dst).num_layers == 2
    with pytest.raises(ValueError, match="--head"):
        convert.convert_file(src, tmp_path / "b2.safetensors", head="l")


def test_cli_help_runs_as_a_module():
    res = subprocess.run(
        [sys.executable, "-m", "audiotoken_core.convert", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0
    assert "embedder_learned_embeds.bin" in res.stdout and "--overwrite" in res.stdout
