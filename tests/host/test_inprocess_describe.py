"""AudioToken Describe in-process: k, threshold, exclusion, windows, batches, and a BEATs file without a head."""

from __future__ import annotations

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS_DIM, EMBEDDER  # noqa: E402
from inprocess import pack_module, small_sd1_clip  # noqa: E402

# The tiny head is steered to hear these (logits; every other class sits at -6, probability 0.0025).
HEARD = {"Speech": 4.0, "Music": 3.0, "Dog": 2.0, "Bark": 1.0, "Animal": 0.5}


@pytest.fixture(scope="module")
def beats_files(tmp_path_factory):
    from testkit.beats import write_tiny_official_beats

    root = tmp_path_factory.mktemp("describe_encoders")
    with torch.random.fork_rng(devices=[]):
        steered = write_tiny_official_beats(root / "beats_finetuned_steered.pt", dim=BEATS_DIM, head_logits=HEARD)
        pretrained = write_tiny_official_beats(root / "beats_pretrained.pt", dim=BEATS_DIM, finetuned=False)
    return {"steered": steered, "pretrained": pretrained}


def load(host_assets, beats_path):
    runtime = pack_module("runtime")
    return runtime.get_model(str(host_assets["audiotoken"] / EMBEDDER), str(beats_path), "auto")


@pytest.fixture(scope="module")
def model(host_assets, beats_files):
    return load(host_assets, beats_files["steered"])


def audio(seconds: float, rate: int = 16000, channels: int = 1, batch: int = 1, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"waveform": torch.randn(batch, channels, int(seconds * rate), generator=g) * 0.1, "sample_rate": rate}


def describe(model, sound, **kw):
    node = pack_module("describe").AudioTokenDescribe
    out = node.execute(model, sound, **{"window_seconds": 2.0, **kw})
    return out[0], out.ui.as_dict()["text"][0]


def test_schema_is_a_listed_output_node_with_tooltips():
    node = pack_module("describe").AudioTokenDescribe
    assert node in pack_module("extension").NODES
    schema = node.define_schema()
    assert schema.node_id == "AudioTokenDescribe" and schema.display_name == "AudioToken Describe"
    assert schema.is_output_node
    assert all(i.tooltip for i in schema.inputs) and all(o.tooltip for o in schema.outputs)
    assert [(o.io_type, o.is_output_list) for o in schema.outputs] == [("STRING", True)]
    assert node.validate_inputs(mode="first").startswith("mode must be one of mean, windows")
    assert node.validate_inputs(mode="windows") is True


def test_top_k_labels_as_prompt_text_and_preview_with_scores(model):
    texts, preview = describe(model, audio(3.0), k=3)
    assert texts == ["speech, music, dog"]
    assert preview.startswith("Speech 0.98 | Music 0.95 | Dog 0.88"), preview
    texts, _ = describe(model, audio(3.0), k=1)
    assert texts == ["speech"]


def test_threshold_cuts_and_an_empty_text_names_the_best_guess(model):
    texts, _ = describe(model, audio(3.0), k=10, threshold=0.7)
    assert texts == ["speech, music, dog, bark"]
    texts, preview = describe(model, audio(3.0), k=3, threshold=0.99)
    assert texts == [""]
    assert preview.startswith("nothing scored 0.99 or more (best: Speech 0.98"), preview


def test_excluded_words_make_room_for_the_next_labels(model):
    texts, preview = describe(model, audio(3.0), k=3, exclude="Speech, music")
    assert texts == ["dog, bark, animal"]
    assert "Speech" not in preview and "Music" not in preview


def test_windows_mode_gives_one_text_per_window_like_encode(model):
    sound = audio(5.0, batch=2, channels=2, rate=44100)  # 2 s windows: 2 full ones and a 1 s tail, per sound
    texts, preview = describe(model, sound, mode="windows")
    _, count = pack_module("encode").AudioTokenEncode.execute(model, sound, mode="windows", window_seconds=2.0)
    assert len(texts) == count == 6 and set(texts) == {"speech, music, dog"}
    *lines, window = preview.splitlines()
    assert window == "window 2 s"
    assert len(lines) == 6 and lines[0].startswith("sound 1, 0.0-2.0 s: Speech")
    assert lines[2].startswith("sound 1, 4.0-5.0 s:") and lines[3].startswith("sound 2, 0.0-2.0 s:")


def test_mean_mode_gives_one_text_per_sound(model):
    texts, preview = describe(model, audio(5.0, batch=2), mode="mean")
    assert texts == ["speech, music, dog"] * 2
    assert preview.splitlines()[1].startswith("sound 2, 0.0-5.0 s: Speech")


def test_text_works_in_a_plain_prompt(model, tmp_path):
    texts, _ = describe(model, audio(3.0), exclude="speech, music")
    clip = small_sd1_clip([str(tmp_path)])
    cond = clip.encode_from_tokens_scheduled(clip.tokenize(f"a photo of {texts[0]}"))
    assert cond[0][0].shape == (1, 77, 768)


def test_checkpoint_without_head_is_a_clear_error(host_assets, beats_files):
    headless = load(host_assets, beats_files["pretrained"])
    with pytest.raises(ValueError) as info:
        describe(headless, audio(3.0))
    message = str(info.value)
    assert message.startswith("beats_pretrained.pt: this BEATs checkpoint has no AudioSet head")
    assert "pre-trained, not fine-tuned" in message
    # the same file still encodes: only the head is missing
    tokens, count = pack_module("encode").AudioTokenEncode.execute(headless, audio(3.0), window_seconds=2.0)
    assert count == 1


def test_audio_shorter_than_the_window_is_repeated_as_encode_does(model):
    texts, preview = describe(model, audio(0.1))  # shorter than one BEATs patch, until repeated
    assert texts == ["speech, music, dog"], preview


@pytest.fixture
def beats_rows(model, monkeypatch):
    """Rows that reach the model's BEATs, one entry per pass."""
    rows, beats = [], model.tokenizer.beats
    real = beats.extract_layers
    monkeypatch.setattr(beats, "extract_layers",
                        lambda wave, *a, **kw: rows.append(wave.shape[0]) or real(wave, *a, **kw))
    return rows


@pytest.mark.parametrize("mode,rows", [("first", 2), ("windows", 6)])
def test_encode_hears_in_its_one_beats_pass_and_describe_in_one_more(model, beats_rows, mode, rows):
    """With the AudioSet head, Encode's words cost no BEATs row: 1 per sound (first), 1 per window (windows)."""
    sound = audio(5.0, batch=2)  # 2 s windows: 2 full ones and a 1 s tail, per sound
    tokens, count = pack_module("encode").AudioTokenEncode.execute(model, sound, mode=mode, window_seconds=2.0)
    assert sum(beats_rows) == count == rows == len(tokens.heard.words)
    beats_rows.clear()
    texts, _ = describe(model, sound, mode="windows" if mode == "windows" else "mean")
    assert sum(beats_rows) == 6  # Describe: one pass over Encode's windows, no second run
    if mode == "windows":
        assert texts == tokens.heard.words  # the same windows, the same words, in the same order
