"""The Embedder module and its file formats (tiny models; the golden comparison is in test_embedder_golden.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from factories.embedder import make_tiny_embedder, official_state, write_tiny_embedder, write_tiny_official_embedder
from safetensors.torch import save_file

from audiotoken_core.embedder import (
    HOST_KEY_WIDTHS,
    OFFICIAL_KEYS,
    AudioEmbedder,
    EmbedderMeta,
    embedding_key,
    head_name,
    load_embedder,
    official_shapes,
    official_state_dict,
    save_embedder,
)
from audiotoken_core.safeload import read_safetensors

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
IN = 48  # three BEATs layers of width 16


def feats(b=2, n=9, d=IN, seed=0):
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- structure


def test_full_size_matches_official_keys_shapes_and_param_count():
    with torch.device("meta"):
        model = AudioEmbedder(2304, {"l": 768})
    official = json.loads((GOLDEN / "embedder_official_keys.json").read_text())["state_dict"]
    ours = {k: list(v.shape) for k, v in model.heads["l"].state_dict().items()}
    assert list(ours) == list(official) == list(OFFICIAL_KEYS)
    assert ours == official
    assert sum(p.numel() for p in model.parameters()) == 8_853_507
    assert model.meta.encoder_width == 768 and model.meta.layers == (4, 8, 12)


def test_multi_head_multi_token_keys_and_shapes():
    model = AudioEmbedder(IN, {"l": 24, "g": 40}, n_tokens=3, hidden_dim=20)
    for name, width in (("l", 24), ("g", 40)):
        state = model.heads[name].state_dict()
        assert {k: tuple(v.shape) for k, v in state.items()} == official_shapes(IN, width, 20, 3)
    assert state["fga.un_models.0.feature_reduce.weight"].shape == (3, 40, 1)
    assert state["fga.reduce_potentials.0.weight"].shape == (3, 2, 1)


def test_forward_returns_tensor_for_one_head_and_dict_for_several():
    one = make_tiny_embedder(IN, {"l": 24})
    out = one(feats())
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 24)
    assert set(one.forward_dict(feats())) == {"l"}

    several = make_tiny_embedder(IN, {"l": 24, "h": 32, "g": 40}, n_tokens=4)
    out = several(feats())
    assert {k: tuple(v.shape) for k, v in out.items()} == {"l": (2, 4, 24), "h": (2, 4, 32), "g": (2, 4, 40)}


def test_token_k_uses_row_k_and_the_shared_pairwise_potential():
    multi = make_tiny_embedder(IN, {"l": 24}, n_tokens=3, seed=3)
    x = feats()
    tokens = multi(x)
    for k in range(3):
        single = make_tiny_embedder(IN, {"l": 24}, n_tokens=1)
        state = multi.heads["l"].state_dict()
        for key in ("fga.un_models.0.feature_reduce.weight", "fga.un_models.0.feature_reduce.bias",
                    "fga.reduce_potentials.0.weight"):
            state[key] = state[key][k : k + 1]
        single.heads["l"].load_state_dict(state)
        torch.testing.assert_close(single(x)[:, 0], tokens[:, k], rtol=1e-6, atol=1e-7)


def test_output_is_an_attention_weighted_mean_of_fc2_outputs():
    model = make_tiny_embedder(IN, {"l": 24})
    one_step = feats(n=1)
    same = one_step.expand(2, 7, IN)  # identical steps: any softmax weighting returns that step
    head = model.heads["l"]
    expected = head.fc2(torch.nn.functional.gelu(head.fc1(one_step)))
    torch.testing.assert_close(model(same), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- dropout


def test_eval_is_deterministic():
    model = make_tiny_embedder(IN, {"l": 24})
    x = feats()
    assert torch.equal(model(x), model(x))


def test_train_mode_applies_unary_dropout():
    model = make_tiny_embedder(IN, {"l": 24}).train()
    x = feats()
    torch.manual_seed(1)
    a = model(x)
    b = model(x)
    assert not torch.equal(a, b)
    torch.manual_seed(1)
    assert torch.equal(a, model(x))
    assert not torch.equal(a, model.eval()(x))


def test_faithful_dropout_is_stochastic_in_eval_and_seed_reproducible():
    model = make_tiny_embedder(IN, {"l": 24})
    model.faithful_dropout = True
    assert not model.training
    x = feats()
    torch.manual_seed(5)
    a = model(x)
    b = model(x)
    assert not torch.equal(a, b)
    torch.manual_seed(5)
    assert torch.equal(a, model(x))
    model.faithful_dropout = False
    assert torch.equal(model(x), model(x))


def test_gradients_reach_every_parameter():
    model = make_tiny_embedder(IN, {"l": 24, "g": 16}, n_tokens=2).train()
    out = model(feats())
    sum(v.square().mean() for v in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


# ----------------------------------------------------------------------------- mask


def test_mask_equals_dropping_padded_steps():
    model = make_tiny_embedder(IN, {"l": 24, "g": 16}, n_tokens=2)
    x = feats(b=2, n=10)
    lengths = [10, 6]
    mask = torch.arange(10)[None, :] < torch.tensor(lengths)[:, None]
    padded = x.clone()
    padded[1, 6:] = float("nan")  # padding content must not leak into any output
    out = model(padded, mask)
    for i, n in enumerate(lengths):
        alone = model(x[i : i + 1, :n])
        for name in out:
            torch.testing.assert_close(out[name][i : i + 1], alone[name], rtol=1e-5, atol=1e-6)


def test_all_true_mask_equals_no_mask():
    model = make_tiny_embedder(IN, {"l": 24})
    x = feats()
    torch.testing.assert_close(model(x, torch.ones(2, 9, dtype=torch.bool)), model(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "mask, match",
    [
        (torch.ones(2, 8, dtype=torch.bool), "mask must be a bool tensor of shape"),
        (torch.ones(2, 9), "mask must be a bool tensor"),
        (torch.tensor([[True] * 9, [False] * 9]), "at least one valid time step"),
    ],
)
def test_bad_masks_are_rejected(mask, match):
    with pytest.raises(ValueError, match=match):
        make_tiny_embedder(IN, {"l": 24})(feats(), mask)


def test_bad_feature_shapes_are_rejected():
    model = make_tiny_embedder(IN, {"l": 24})
    with pytest.raises(ValueError, match=r"features \[batch, time, 48\]"):
        model(torch.randn(2, 9, 47))
    with pytest.raises(ValueError, match="features"):
        model(torch.randn(9, IN))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_dim=IN, widths={}), "at least one head"),
        (dict(in_dim=IN, widths={"a.b": 8}), "plain identifier"),
        (dict(in_dim=IN, widths={"l": 8}, n_tokens=0), "n_tokens"),
        (dict(in_dim=IN, widths={"l": 8, "t5xxl": 8}, n_tokens={"l": 1}), "n_tokens names heads"),
        (dict(in_dim=IN, widths={"l": 8}, n_tokens={"l": 0}), "at least 1 per head"),
        (dict(in_dim=IN, widths={"clip_l": 8}), "name the head for the host's clip_l 'l'"),
        (dict(in_dim=47, widths={"l": 8}), "EmbedderMeta"),
        (dict(in_dim=IN, widths={"l": 8}, meta=EmbedderMeta(encoder_width=10)), "takes 48"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AudioEmbedder(**kwargs)


def test_meta_with_other_layers():
    meta = EmbedderMeta(layers=(6, 12), encoder_width=20, window_seconds=5.0)
    model = AudioEmbedder(40, {"h": 16}, n_tokens=2, meta=meta)
    assert model.meta.layers == (6, 12) and model.meta.widths == {"h": 16} and model.meta.n_tokens == {"h": 2}


# ----------------------------------------------------------------------------- formats


def test_our_format_round_trip_keeps_tensors_meta_and_outputs(tmp_path):
    meta = EmbedderMeta(layers=(3, 12), encoder_width=24, window_seconds=5.0, training={"steps": 10, "lr": 1e-5})
    model = make_tiny_embedder(IN, {"l": 24, "g": 40}, n_tokens=2, hidden_dim=30, meta=meta)
    path = save_embedder(model, tmp_path / "e.safetensors")
    tensors, metadata = read_safetensors(path)
    assert metadata["format"] == "audiotoken-embedder" and metadata["format_version"] == "2"
    assert json.loads(metadata["layers"]) == [3, 12] and json.loads(metadata["widths"]) == {"l": 24, "g": 40}
    assert json.loads(metadata["n_tokens"]) == {"l": 2, "g": 2}
    assert "l.fc1.weight" in tensors and "g.fga.reduce_potentials.0.weight" in tensors
    assert metadata["window_seconds"] == "5.0" and "sample_rate" not in metadata  # BEATs reads 16 kHz only

    loaded = load_embedder(path)
    assert not loaded.training and not loaded.faithful_dropout
    assert loaded.meta == model.meta
    assert loaded.hidden_dim == 30 and loaded.head_names == ["l", "g"]
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert all(p.requires_grad for p in loaded.parameters())
    x = feats()
    for name, out in model(x).items():
        assert torch.equal(out, loaded(x)[name])


def test_heads_have_their_own_token_counts_and_round_trip(tmp_path):
    """Flux's two encoders: one CLIP-L token, four T5 tokens; format version 2 keeps the counts per head."""
    model = make_tiny_embedder(IN, {"l": 24, "t5xxl": 40}, n_tokens={"l": 1, "t5xxl": 4})
    assert model.n_tokens == model.meta.n_tokens == {"l": 1, "t5xxl": 4}
    assert {k: tuple(v.shape) for k, v in model.heads["t5xxl"].state_dict().items()} == official_shapes(IN, 40, None, 4)
    out = model(feats())
    assert out["l"].shape == (2, 1, 24) and out["t5xxl"].shape == (2, 4, 40)
    path = save_embedder(model, tmp_path / "flux.safetensors")
    tensors, metadata = read_safetensors(path)
    assert json.loads(metadata["n_tokens"]) == {"l": 1, "t5xxl": 4}
    loaded = load_embedder(path)
    assert loaded.n_tokens == {"l": 1, "t5xxl": 4} and loaded.meta == model.meta
    assert all(torch.equal(a, b) for a, b in zip(model(feats()).values(), loaded(feats()).values()))
    _resave(path, tensors, {**metadata, "n_tokens": json.dumps({"l": 1, "t5xxl": 2})})
    with pytest.raises(ValueError, match="metadata n_tokens .* disagrees with the tensors"):
        load_embedder(path)


def test_version_1_files_still_load(tmp_path):
    """Version 1 wrote one count for every head ("2"); such a file reads as that count per head."""
    model = make_tiny_embedder(IN, {"l": 24, "g": 40}, n_tokens=2)
    tensors, metadata = read_safetensors(save_embedder(model, tmp_path / "new.safetensors"))
    v1 = _resave(tmp_path / "v1.safetensors", tensors,
                 {**metadata, "format_version": "1", "n_tokens": "2", "sample_rate": "16000"})
    loaded = load_embedder(v1)  # the sample rate those files wrote is ignored
    assert loaded.n_tokens == {"l": 2, "g": 2} and loaded.meta == model.meta
    assert all(torch.equal(a, b) for a, b in zip(model(feats()).values(), loaded(feats()).values()))
    # version 1 never held heads of different counts: such a file is not one
    mixed = make_tiny_embedder(IN, {"l": 24, "g": 40}, n_tokens={"l": 1, "g": 2})
    tensors, metadata = read_safetensors(save_embedder(mixed, tmp_path / "mixed.safetensors"))
    _resave(v1, tensors, {**metadata, "format_version": "1", "n_tokens": "1"})
    with pytest.raises(ValueError, match="head 'g' has in/hidden/tokens 48/48/2, other heads 48/48/1"):
        load_embedder(v1)


def test_heads_are_named_by_the_hosts_embedding_keys():
    assert [embedding_key(h) for h in ("l", "g", "h", "t5xxl", "qwen25_7b", "qwen3_4b")] == [
        "clip_l", "clip_g", "clip_h", "t5xxl", "qwen25_7b", "qwen3_4b"]
    assert all(embedding_key(head_name(k)) == k for k in HOST_KEY_WIDTHS)
    assert head_name("clip_l") == "l" and head_name("clip_vision") == "clip_vision"
    model = make_tiny_embedder(IN, {"l": 24, "qwen25_7b": 16})
    assert model.embedding_keys == {"l": "clip_l", "qwen25_7b": "qwen25_7b"}


@pytest.mark.parametrize("width, head", [(768, "l"), (1024, "h")])
def test_official_bin_is_detected_with_official_defaults(tmp_path, width, head):
    path = write_tiny_official_embedder(tmp_path / "embedder_learned_embeds.bin", in_dim=IN, out_dim=width)
    model = load_embedder(path)
    assert model.head_names == [head] and model.widths == {head: width} and model.n_tokens == {head: 1}
    m = model.meta
    assert m.audio_encoder == "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2"
    assert (m.layers, m.encoder_width) == ((4, 8, 12), 16)
    assert (m.window_seconds, m.source) == (10.0, "official:embedder_learned_embeds.bin")
    state = torch.load(path, weights_only=True)
    back = official_state_dict(model)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_official_width_without_a_known_clip_needs_a_head(tmp_path):
    path = write_tiny_official_embedder(tmp_path / "e.bin", in_dim=IN, out_dim=24)
    with pytest.raises(ValueError, match="token width 24 matches no known CLIP"):
        load_embedder(path)
    assert load_embedder(path, head="l").widths == {"l": 24}


def test_official_state_resaved_as_safetensors_loads(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file(dict(official_state(IN, 768)), str(path))
    assert load_embedder(path).widths == {"l": 768}


def test_device_and_dtype(tmp_path):
    path = write_tiny_embedder(tmp_path / "e.safetensors", IN, {"l": 24})
    model = load_embedder(path, device="cpu", dtype=torch.float64, faithful_dropout=True)
    assert all(p.dtype == torch.float64 for p in model.parameters()) and model.faithful_dropout
    assert model(feats().double()).dtype == torch.float64


def _resave(path, tensors, metadata):
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_unknown_format_version_is_refused(tmp_path):
    path = write_tiny_embedder(tmp_path / "e.safetensors", IN, {"l": 24})
    tensors, metadata = read_safetensors(path)
    _resave(path, tensors, {**metadata, "format_version": "7"})
    with pytest.raises(ValueError, match="format_version '7' is not supported"):
        load_embedder(path)


def test_foreign_safetensors_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not an AudioToken embedder file"):
        load_embedder(_resave(tmp_path / "x.safetensors", {"w": torch.zeros(2)}, {"format": "other"}))
    with pytest.raises(ValueError, match="BEATs"):
        load_embedder(_resave(tmp_path / "b.safetensors", {"w": torch.zeros(2)}, {"beats_cfg": "{}"}))


def test_metadata_disagreeing_with_tensors_is_refused(tmp_path):
    path = write_tiny_embedder(tmp_path / "e.safetensors", IN, {"l": 24})
    tensors, metadata = read_safetensors(path)
    _resave(path, tensors, {**metadata, "widths": json.dumps({"l": 24, "g": 40}), "n_tokens": "1"})
    with pytest.raises(ValueError, match="metadata lists heads"):
        load_embedder(path)
    _resave(path, tensors, {**metadata, "widths": json.dumps({"l": 32})})
    with pytest.raises(ValueError, match="disagree"):
        load_embedder(path)
    _resave(path, tensors, {**metadata, "encoder_width": "17"})
    with pytest.raises(ValueError, match=r"e\.safetensors: metadata says 3 BEATs layers of width 17"):
        load_embedder(path)
    _resave(path, tensors, {**metadata, "layers": "[4, 8"})
    with pytest.raises(ValueError, match="malformed embedder metadata"):
        load_embedder(path)


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path):
    state = official_state(IN, 768)
    del state["fga.pp_models.0.embed_Y.bias"]
    state["fga.spatial_pool.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.bin")
    named = r"missing keys: fga\.pp_models\.0\.embed_Y\.bias; unexpected keys: fga\.spatial_pool\.extra"
    with pytest.raises(ValueError, match=named):
        load_embedder(tmp_path / "keys.bin")

    state = official_state(IN, 768)
    state["fga.un_models.0.embed.weight"] = torch.zeros(768, 768)
    torch.save(state, tmp_path / "shape.bin")
    with pytest.raises(ValueError, match=r"fga\.un_models\.0\.embed\.weight \[768, 768\] \(expected \[768, 768, 1\]\)"):
        load_embedder(tmp_path / "shape.bin")


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_truncated_files_raise_value_error(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".bin":
        write_tiny_official_embedder(full, in_dim=IN, out_dim=768)
    else:
        write_tiny_embedder(full, IN, {"l": 24})
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut"):
        load_embedder(cut)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_embedder(tmp_path / "empty.bin")


class _NeedsCode:
    # unpickling calls a global outside torch's allow-list; harmless here, but must be refused
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_needing_code_is_refused(tmp_path):
    path = tmp_path / "evil.bin"
    torch.save({"fc1.weight": _NeedsCode()}, path)
    with pytest.raises(ValueError, match="arbitrary code"):
        load_embedder(path)
    # a legacy (non-zip) pickle as well
    legacy = tmp_path / "legacy.bin"
    torch.save({"x": _NeedsCode()}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError):
        load_embedder(legacy)


def test_beats_checkpoint_is_not_an_embedder(tmp_path):
    torch.save({"cfg": {"encoder_layers": 2}, "model": {"w": torch.zeros(1)}}, tmp_path / "beats.pt")
    with pytest.raises(ValueError, match="BEATs"):
        load_embedder(tmp_path / "beats.pt")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_embedder("/nonexistent/embedder.bin")
