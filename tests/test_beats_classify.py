"""The AudioSet head: loading, padding, headless files, conversion; the label names; long audio in windows."""

from __future__ import annotations

import json

import pytest
import torch
from testkit.beats import tiny_official_cfg, tiny_official_state_dict, write_tiny_official_beats

from audiotoken_core import convert
from audiotoken_core.beats import load_beats, save_beats_safetensors
from audiotoken_core.labels import (
    beats_classes,
    head_classes,
    labels_text,
    ontology,
    parse_words,
    read_label_dict,
    scores_text,
    top_labels,
)
from audiotoken_core.pipeline import AudioTokenizer
from audiotoken_core.safeload import read_safetensors

SR = 16_000
STEERED = {"Speech": 4.0, "Music": 3.0, "Dog": 2.0, "Bark": 1.0, "Animal": 0.5, "Inside, small room": 0.2}


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    return write_tiny_official_beats(tmp_path_factory.mktemp("beats") / "tiny.pt", layers=2, dim=32, heads=2)


@pytest.fixture(scope="module")
def tiny(tiny_pt):
    return load_beats(tiny_pt)


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    path = tmp_path_factory.mktemp("beats") / "steered.pt"
    return load_beats(write_tiny_official_beats(path, layers=2, dim=32, heads=2, head_logits=STEERED))


def _noise(*shape, seed=0):
    return 0.1 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_head_gives_one_probability_per_class(tiny):
    probs = tiny.classify(_noise(2, SR))
    assert probs.shape == (2, 527) and probs.dtype == torch.float32
    assert ((probs > 0) & (probs < 1)).all()
    assert not torch.equal(probs[0], probs[1])


def test_padded_clip_scores_as_alone_and_padding_does_not_leak(tiny):
    wave = _noise(2, 24_000, seed=1)
    mask = torch.zeros(2, 24_000, dtype=torch.bool)
    mask[1, 9_000:] = True
    wave[1, 9_000:] = 50.0  # garbage in the padding
    batched = tiny.classify(wave, mask)
    torch.testing.assert_close(batched[1], tiny.classify(wave[1:, :9_000])[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched[0], tiny.classify(wave[:1])[0], rtol=1e-5, atol=1e-6)


def test_pretrained_checkpoint_has_no_head(tmp_path):
    path = write_tiny_official_beats(tmp_path / "pretrained.pt", layers=1, dim=16, heads=2, finetuned=False)
    model = load_beats(path)
    assert model.predictor is None and model.label_dict is None
    with pytest.raises(ValueError, match=r"no AudioSet head \(it is a pre-trained, not fine-tuned, checkpoint\)"):
        model.classify(_noise(1, SR))


def test_finetuned_cfg_with_stripped_head_loads_and_says_so(tmp_path):
    cfg = tiny_official_cfg(layers=1, dim=16, heads=2)
    state = {k: v for k, v in tiny_official_state_dict(cfg).items() if not k.startswith("predictor.")}
    torch.save({"cfg": cfg, "model": state}, tmp_path / "stripped.pt")
    model = load_beats(tmp_path / "stripped.pt")
    assert len(model.extract_layers(_noise(1, SR))) == 1
    with pytest.raises(ValueError, match="predictor.* are not in the file.*convert the official .pt again"):
        model.classify(_noise(1, SR))


def test_safetensors_and_convert_keep_head_and_label_dict(tiny, tiny_pt, tmp_path):
    kind, dst = convert.convert_file(tiny_pt, tmp_path / "converted.safetensors")
    assert kind == "beats"
    tensors, meta = read_safetensors(dst)
    assert torch.equal(tensors["predictor.weight"], tiny.predictor.weight)
    assert json.loads(meta["label_dict"]) == {str(i): mid for i, mid in tiny.label_dict.items()}
    wave = _noise(1, SR, seed=2)
    for path in (dst, save_beats_safetensors(tiny, tmp_path / "from_model.safetensors")):
        again = load_beats(path)
        assert again.label_dict == tiny.label_dict
        assert torch.equal(again.classify(wave), tiny.classify(wave))
    assert "AudioSet head (527 classes) with its label_dict" in convert._describe("beats", dst)


def test_label_dict_parsing():
    assert read_label_dict(None) is None
    assert read_label_dict({0: "/m/a", 1: "/m/b"}) == read_label_dict('{"0": "/m/a", "1": "/m/b"}') == {
        0: "/m/a", 1: "/m/b"}
    for bad in ("not json", ["/m/a"], {"x": "/m/a"}, {0: 3}):
        with pytest.raises(ValueError, match="f.pt: label_dict"):
            read_label_dict(bad, "f.pt")


def test_ontology_file_is_the_527_audioset_classes():
    rows = ontology()
    assert len(rows) == 527 and len({mid for mid, _ in rows}) == len({n for _, n in rows}) == 527
    assert rows[0] == ("/m/09x0r", "Speech") and rows[74] == ("/m/0bt9lr", "Dog")


def test_names_go_through_the_label_dict(tiny):
    classes = head_classes(527, tiny.label_dict)  # the factory's label_dict reverses the ontology order
    assert beats_classes(tiny) == classes
    assert classes[0].name == "Field recording" and classes[526].name == "Speech"
    plain = head_classes(527)
    assert plain[0].name == "Speech" and plain[0].mid == "/m/09x0r"
    odd = head_classes(3, {0: "/m/09x0r", 1: "/m/not_in_ontology"})
    assert [c.name for c in odd] == ["Speech", "/m/not_in_ontology", "class 2"]


def test_prompt_words_are_first_synonyms_unless_shared():
    by_name = {c.name: c for c in head_classes(527)}
    assert by_name["Vehicle horn, car horn, honking"].word == "vehicle horn"
    assert by_name["Dog"].word == "dog"
    assert by_name["Inside, small room"].word == "inside, small room"
    assert by_name["Male speech, man speaking"].synonyms() == ["male speech", "man speaking"]


def test_top_labels_k_threshold_and_exclusion(steered):
    classes = head_classes(527, steered.label_dict)
    probs = steered.classify(_noise(1, SR, seed=3))[0]
    names = lambda labels: [item.label.name for item in labels]  # noqa: E731
    assert names(top_labels(probs, classes, k=3)) == ["Speech", "Music", "Dog"]
    assert names(top_labels(probs, classes, k=10, threshold=0.7)) == ["Speech", "Music", "Dog", "Bark"]
    best = top_labels(probs, classes, k=3, exclude=parse_words("speech,  MUSIC\n"))
    assert names(best) == ["Dog", "Bark", "Animal"]
    assert labels_text(best) == "dog, bark, animal"
    assert scores_text(best[:1]).startswith("Dog 0.88")
    assert top_labels(probs, classes, k=3, threshold=0.999) == []
    # a synonym leaves its class out too
    assert "Inside, small room" not in names(top_labels(probs, classes, k=8, exclude={"small room"}))


def test_windows_are_cut_like_encode_and_the_tail_is_tiled(steered):
    hear = AudioTokenizer(steered)  # BEATs alone: what it heard, no tokens
    wave = _noise(2, 1, int(2.5 * SR), seed=4)  # [B, C, T]: two sounds, 1 s windows -> 1, 1, 0.5 s
    rows = hear.encode(wave, SR, mode="windows", duration_s=1.0, heard=True, batch_windows=4)
    assert rows.tokens == {} and rows.heard.shape == (6, 527)
    assert rows.spans[:3] == [(0, 0.0, 1.0), (0, 1.0, 2.0), (0, 2.0, 2.5)] and rows.spans[3][0] == 1
    tail = wave[1, :, 2 * SR :]
    torch.testing.assert_close(rows.heard[5], steered.classify(torch.cat([tail, tail], dim=-1))[0],
                               rtol=1e-5, atol=1e-6)
    mean = hear.encode(wave, SR, mode="mean", duration_s=1.0, heard=True)
    assert mean.spans == [(0, 0.0, 2.5), (1, 0.0, 2.5)]
    torch.testing.assert_close(mean.heard, rows.heard.view(2, 3, 527).mean(1), rtol=1e-5, atol=1e-6)


def test_progress_counts_windows_and_short_audio_is_tiled(steered):
    hear = AudioTokenizer(steered)
    calls = []
    hear.encode(_noise(1, 5 * SR), SR, mode="mean", duration_s=1.0, heard=True, batch_windows=2,
                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    short = _noise(1, 2000)  # shorter than one BEATs patch: repeated to fill the window, as Encode does
    heard = hear.encode(short, SR, mode="mean", heard=True)
    assert heard.spans == [(0, 0.0, 2000 / SR)]
    torch.testing.assert_close(heard.heard, steered.classify(short.repeat(1, 80)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mode must be one of"):
        hear.encode(_noise(1, SR), SR, mode="median", heard=True)
    with pytest.raises(ValueError, match="ask for what BEATs heard"):
        hear.encode(_noise(1, SR), SR)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_half_precision_on_gpu_matches_the_cpu(tiny_pt):
    wave, mask = _noise(2, 24_000, seed=5), torch.zeros(2, 24_000, dtype=torch.bool)
    mask[1, 10_000:] = True
    ref = load_beats(tiny_pt).classify(wave, mask)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)):
        probs = load_beats(tiny_pt, device="cuda", dtype=dtype).classify(wave.cuda(), mask.cuda())
        assert probs.dtype == torch.float32 and probs.device.type == "cuda"
        assert (probs.cpu() - ref).abs().max().item() < tol, dtype
