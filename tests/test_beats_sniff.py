"""Telling BEATs files from the other audio encoders that share models/audio_encoders, from headers only."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from testkit.beats import tiny_official_cfg, tiny_official_state_dict, write_tiny_official_beats
from safetensors.torch import save_file

from audiotoken_core.beats import load_beats, save_beats_safetensors
from audiotoken_core.beats import sniff
from audiotoken_core.beats.sniff import classify_state_dict, identify_encoder_file


@pytest.fixture(scope="module")
def beats_pt(tmp_path_factory):
    return write_tiny_official_beats(tmp_path_factory.mktemp("sniff") / "beats.pt", layers=2, dim=32, heads=4)


def test_official_and_converted_beats_are_beats(beats_pt, tmp_path):
    converted = save_beats_safetensors(load_beats(beats_pt), tmp_path / "beats.safetensors")
    assert identify_encoder_file(beats_pt).is_beats
    assert identify_encoder_file(converted).is_beats


def test_wav2vec2_is_recognised_as_the_host_does(tmp_path):
    # the host keys on encoder.layer_norm.bias, optionally under a "wav2vec2." prefix, and sizes by its width
    base = tmp_path / "w2v_base.safetensors"
    save_file({"encoder.layer_norm.bias": torch.zeros(768),
               "feature_projection.projection.weight": torch.zeros(768, 512)}, str(base))
    large = tmp_path / "w2v_large.bin"
    torch.save({"wav2vec2.encoder.layer_norm.bias": torch.zeros(1024)}, large)
    found = identify_encoder_file(base)
    assert (found.kind, found.description) == ("wav2vec2", "a wav2vec2 audio encoder (base, 768 wide)")
    assert identify_encoder_file(large).description == "a wav2vec2 audio encoder (large, 1024 wide)"


def test_whisper_bare_beats_embedders_and_other_state_dicts():
    assert classify_state_dict({"model.encoder.embed_positions.weight": (1500, 1280)}).kind == "whisper"
    # BEATs has an encoder.layer_norm as well: it must not pass for wav2vec2
    bare = {k: tuple(v.shape) for k, v in tiny_official_state_dict(tiny_official_cfg(layers=1, dim=16)).items()}
    assert classify_state_dict(bare).kind == "beats_without_cfg"
    assert classify_state_dict({"l.fga.un_models.0.embed.weight": (768, 768, 1)}).kind == "embedder"
    other = classify_state_dict({"fc.weight": (2, 2)})
    assert other.kind == "other" and "'fc.weight'" in other.description


def test_embedder_files_are_told_apart(tmp_path):
    from factories.embedder import write_tiny_embedder, write_tiny_official_embedder

    official = write_tiny_official_embedder(tmp_path / "embedder_learned_embeds.bin", in_dim=96)
    ours = write_tiny_embedder(tmp_path / "embedder.safetensors", in_dim=96, widths={"l": 768, "g": 1280})
    assert identify_encoder_file(official).kind == identify_encoder_file(ours).kind == "embedder"


def test_unreadable_files_say_why(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(4096))
    text = tmp_path / "notes.bin"
    text.write_text("not a model\n")
    truncated = tmp_path / "cut.pt"
    torch.save({"cfg": {}, "model": {"w": torch.zeros(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    for path in (empty, junk, text, truncated):
        found = identify_encoder_file(path)
        assert found.kind == "unreadable" and found.description.startswith("a file AudioToken cannot read ("), path
    assert "empty" in identify_encoder_file(empty).description


def test_legacy_pickle_is_read(tmp_path):
    legacy = tmp_path / "legacy.pt"
    cfg = tiny_official_cfg(layers=1, dim=16)
    torch.save({"cfg": cfg, "model": tiny_official_state_dict(cfg)}, legacy, _use_new_zipfile_serialization=False)
    assert identify_encoder_file(legacy).is_beats


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_code_needing_pickles_are_not_run(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"cfg": _RunsCode(marker), "model": {}}, evil)
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(pickle.dumps(_RunsCode(marker), protocol=2))
    for path in (evil, legacy):
        assert identify_encoder_file(path).kind == "unreadable"
    assert not marker.exists()


def test_results_are_cached_per_file_state(beats_pt, monkeypatch):
    calls = []
    real = sniff.load_torch_checkpoint
    monkeypatch.setattr(sniff, "load_torch_checkpoint", lambda p: calls.append(p) or real(p))
    st = beats_pt.stat()
    os.utime(beats_pt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    for _ in range(3):
        assert identify_encoder_file(beats_pt).is_beats
    assert len(calls) == 1
    os.utime(beats_pt, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    identify_encoder_file(beats_pt)
    assert len(calls) == 2


def test_zip_checkpoints_are_memory_mapped(beats_pt, monkeypatch):
    # mmap=True maps the tensors instead of reading them: the header-only promise for .pt files
    seen = {}
    real = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    sniff._identify.cache_clear()
    identify_encoder_file(beats_pt)
    assert seen.get("mmap") is True and seen.get("weights_only") is True
