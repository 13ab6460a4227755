import json
import math
from pathlib import Path

import pytest
import torch
from testkit.beats import tiny_official_cfg, tiny_official_state_dict, write_tiny_official_beats
from safetensors import safe_open

from audiotoken_core.beats import (
    ITER3_AS2M_CFG,
    BEATs,
    BEATsConfig,
    build_beats,
    compute_fbank,
    load_beats,
    num_frames,
    num_tokens,
    save_beats_safetensors,
)
from audiotoken_core.beats.fbank import min_samples

SR = 16_000
GOLDEN = Path(__file__).parent / "fixtures" / "golden"


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    return write_tiny_official_beats(tmp_path_factory.mktemp("beats") / "tiny.pt")


@pytest.fixture(scope="module")
def tiny(tiny_pt):
    return load_beats(tiny_pt)


def _wave(*lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(lengths), max(lengths))
    mask = torch.ones(len(lengths), max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        wave[i, :n] = 0.1 * torch.randn(n, generator=g)
        mask[i, :n] = False
    return wave, mask


def test_loaded_model_reports_its_file_config(tiny):
    assert isinstance(tiny, BEATs)
    assert not tiny.training
    assert tiny.embed_dim == 64 and tiny.num_layers == 12
    # taken from the file, not from the (different) BEATsConfig defaults
    assert tiny.cfg.max_distance == 800 and tiny.cfg.deep_norm and tiny.cfg.gru_rel_pos
    assert not any(p.requires_grad for p in tiny.parameters())
    # the fine-tuned checkpoint's AudioSet head is kept (tests/test_beats_classify.py uses it)
    assert tiny.predictor is not None and tiny.predictor.out_features == 527


def test_full_size_cfg_is_the_reference_cfg_at_the_released_widths():
    # The golden file's cfg was written for the reference implementation: every option but the widths.
    golden = torch.load(GOLDEN / "beats_tiny_official.pt", weights_only=True)["cfg"]
    widths = {"embed_dim", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads", "conv_pos",
              "conv_pos_groups"}
    assert list(ITER3_AS2M_CFG) == list(golden)
    options = {k: v for k, v in ITER3_AS2M_CFG.items() if k not in widths}
    assert options == {k: v for k, v in golden.items() if k not in widths}
    cfg = BEATsConfig.from_dict(dict(ITER3_AS2M_CFG))
    cfg.validate()
    with torch.device("meta"):
        full = BEATs(cfg, with_head=True)
    assert (full.num_layers, full.embed_dim, cfg.head_dim) == (12, 768, 64)
    assert sum(p.numel() for p in full.parameters()) == 90_717_055


@pytest.mark.parametrize("samples", [min_samples(), 3000, SR, SR + 1, 24_000, 5 * SR])
def test_fbank_frames_and_token_count(tiny, samples):
    frames = 1 + (samples - 400) // 160
    feats, counts = compute_fbank(torch.randn(1, samples) * 0.1)
    assert feats.shape == (1, frames, 128) and counts == [frames]
    assert num_frames(samples) == frames
    expected = (frames // 16) * 8
    assert num_tokens(samples) == tiny.tokens_for_samples(samples) == expected
    outs = tiny.extract_layers(torch.randn(2, samples) * 0.1)
    assert len(outs) == 12
    assert all(o.shape == (2, expected, 64) for o in outs)


def test_real_window_token_counts():
    assert num_tokens(10 * SR) == 496
    assert num_tokens(5 * SR) == 248


def test_too_short_clip_is_rejected(tiny):
    with pytest.raises(ValueError, match="at least one"):
        tiny.extract_layers(torch.zeros(1, min_samples() - 1))
    wave, mask = _wave(SR, 1000)
    with pytest.raises(ValueError, match="at least one"):
        tiny.extract_layers(wave, mask)


def test_padded_batch_matches_each_clip_alone(tiny):
    lengths = (SR, 24_000, 7_000)
    wave, mask = _wave(*lengths)
    batched = tiny.extract_layers(wave, mask)
    token_mask = tiny.token_padding_mask(wave, mask)
    assert token_mask.shape == batched[0].shape[:2]
    for i, n in enumerate(lengths):
        alone = tiny.extract_layers(wave[i : i + 1, :n])
        valid = alone[0].shape[1]
        assert valid == num_tokens(n) == int((~token_mask[i]).sum())
        for layer_batched, layer_alone in zip(batched, alone):
            torch.testing.assert_close(layer_batched[i, :valid], layer_alone[0], rtol=1e-4, atol=1e-4)
            assert torch.all(layer_batched[i, valid:] == 0)


def test_padding_garbage_does_not_leak(tiny):
    wave, mask = _wave(SR, 24_000)
    noisy = wave.clone()
    noisy[0, SR:] = 5.0 * torch.randn(24_000 - SR)
    clean_out = tiny.extract_layers(wave, mask)
    noisy_out = tiny.extract_layers(noisy, mask)
    for a, b in zip(clean_out, noisy_out):
        assert torch.equal(a, b)


def test_padding_mask_must_be_trailing(tiny):
    wave, mask = _wave(SR, SR)
    mask[0, 100:200] = True
    with pytest.raises(ValueError, match="trailing"):
        tiny.extract_layers(wave, mask)
    with pytest.raises(ValueError, match="shape"):
        tiny.extract_layers(wave, mask[:, :-1])


def test_eval_outputs_are_deterministic(tiny):
    wave, mask = _wave(SR, 20_000, seed=3)
    first = tiny.extract_layers(wave, mask)
    second = tiny.extract_layers(wave, mask)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_safetensors_round_trip_is_exact(tiny, tiny_pt, tmp_path):
    from_path = save_beats_safetensors(tiny_pt, tmp_path / "a.safetensors")
    from_model = save_beats_safetensors(tiny, tmp_path / "b.safetensors")
    with safe_open(str(from_path), framework="pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    tables = [k for k in keys if "relative_attention_bias" in k]
    assert tables == ["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    assert "encoder.pos_conv.0.weight_g" in keys and "encoder.pos_conv.0.weight_v" in keys
    assert {"predictor.weight", "predictor.bias"} <= keys
    assert json.loads(meta["beats_cfg"])["max_distance"] == 800
    assert json.loads(meta["label_dict"])["0"] == tiny.label_dict[0]

    wave, mask = _wave(SR, 20_000, seed=5)
    expected = tiny.extract_layers(wave, mask)
    for path in (from_path, from_model):
        converted = load_beats(path)
        assert converted.cfg == tiny.cfg
        for a, b in zip(converted.extract_layers(wave, mask), expected):
            assert torch.equal(a, b)


class _NotATensor:
    def __reduce__(self):
        # unpickling this would call print(): exactly the code execution the loader must refuse
        return (print, ("pwned",))


def test_checkpoint_needing_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    cfg = tiny_official_cfg(layers=1, dim=16, heads=2, finetuned=False)
    torch.save({"cfg": cfg, "model": tiny_official_state_dict(cfg), "extra": _NotATensor()}, path)
    with pytest.raises(ValueError, match="arbitrary code"):
        load_beats(path)


def test_truncated_files_raise_value_error(tiny_pt, tmp_path):
    data = tiny_pt.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt"):
        load_beats(cut)

    full = save_beats_safetensors(tiny_pt, tmp_path / "full.safetensors").read_bytes()
    cut_st = tmp_path / "cut.safetensors"
    cut_st.write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="cut.safetensors"):
        load_beats(cut_st)


def test_checkpoint_without_cfg_is_rejected(tmp_path):
    path = tmp_path / "bare.pt"
    cfg = tiny_official_cfg(layers=1, dim=16, heads=2)
    torch.save(tiny_official_state_dict(cfg), path)
    with pytest.raises(ValueError, match="'cfg' and 'model'"):
        load_beats(path)


def test_weights_that_contradict_cfg_are_rejected(tmp_path):
    cfg = tiny_official_cfg(layers=2, dim=16, heads=2)
    state = tiny_official_state_dict(cfg)
    path = tmp_path / "wrong.pt"
    torch.save({"cfg": dict(cfg, encoder_ffn_embed_dim=48), "model": state}, path)
    with pytest.raises(ValueError, match="wrong.pt.*do not match"):
        load_beats(path)


def test_unshared_relative_position_tables_are_rejected():
    cfg = tiny_official_cfg(layers=2, dim=16, heads=2)
    state = tiny_official_state_dict(cfg)
    state["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(320, 2)
    with pytest.raises(ValueError, match="layers 0 and 1 differ"):
        build_beats(BEATsConfig.from_dict(cfg), state)


def test_unsupported_config_is_rejected():
    cfg = tiny_official_cfg(layers=1, dim=16, heads=2)
    with pytest.raises(ValueError, match="layer_norm_first"):
        build_beats(BEATsConfig.from_dict(dict(cfg, layer_norm_first=True, deep_norm=False)), {})


def test_loading_adopts_the_checkpoint_tensors_without_copying():
    cfg = tiny_official_cfg(layers=2, dim=16, heads=2)
    state = tiny_official_state_dict(cfg)
    model = build_beats(BEATsConfig.from_dict(cfg), state)
    assert model.encoder.layers[1].fc1.weight.data_ptr() == state["encoder.layers.1.fc1.weight"].data_ptr()
    assert model.encoder.pos_conv.weight_v.data_ptr() == state["encoder.pos_conv.0.weight_v"].data_ptr()


def test_parametrized_weight_norm_keys_load_the_same(tmp_path):
    cfg = tiny_official_cfg(layers=2, dim=16, heads=2)
    state = tiny_official_state_dict(cfg)
    renamed = dict(state)
    renamed["encoder.pos_conv.0.parametrizations.weight.original0"] = renamed.pop("encoder.pos_conv.0.weight_g")
    renamed["encoder.pos_conv.0.parametrizations.weight.original1"] = renamed.pop("encoder.pos_conv.0.weight_v")
    wave = torch.randn(1, SR) * 0.1
    a = build_beats(BEATsConfig.from_dict(cfg), state).extract_layers(wave)
    b = build_beats(BEATsConfig.from_dict(cfg), renamed).extract_layers(wave)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_dtype_argument_casts_weights_and_outputs(tiny_pt):
    wave = torch.randn(1, SR) * 0.1
    ref = load_beats(tiny_pt).extract_layers(wave)
    double = load_beats(tiny_pt, dtype=torch.float64)
    out = double.extract_layers(wave)
    assert out[-1].dtype == torch.float64
    for a, b in zip(out, ref):
        assert (a.float() - b).abs().max() / b.abs().max() < 1e-4


def test_config_round_trips_unknown_keys():
    cfg = dict(tiny_official_cfg(), some_future_option=3)
    parsed = BEATsConfig.from_json(BEATsConfig.from_dict(cfg).to_json())
    assert parsed.to_dict() == cfg
    assert math.isclose(parsed.layer_wise_gradient_decay_ratio, 0.6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_matches_cpu(tiny_pt):
    wave, mask = _wave(SR, 24_000)
    ref = load_beats(tiny_pt).extract_layers(wave, mask)
    for dtype, tol in ((torch.float32, 1e-4), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)):
        model = load_beats(tiny_pt, device="cuda", dtype=dtype)
        out = model.extract_layers(wave.cuda(), mask.cuda())
        for a, b in zip(out, ref):
            assert a.dtype == dtype and a.device.type == "cuda"
            assert ((a.float().cpu() - b).abs().max() / b.abs().max()).item() < tol


def test_model_built_from_cfg_alone_is_initialised():
    model = BEATs(BEATsConfig.from_dict(tiny_official_cfg(layers=2, dim=16, heads=2))).eval()
    assert all(torch.isfinite(o).all() for o in model.extract_layers(torch.randn(1, SR) * 0.1))
