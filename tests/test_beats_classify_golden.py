"""Our AudioSet head against the reference implementation (see fixtures/golden/README.md, "BEATs AudioSet head")."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiotoken_core.beats import load_beats

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
MAX_REL_ERR = 1e-4


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def _logit(p: torch.Tensor) -> torch.Tensor:
    # Probabilities sit near 0.5 here, where the sigmoid flattens differences; logits show them undamped.
    return torch.log(p / (1 - p))


@pytest.fixture(scope="module")
def golden():
    return load_file(GOLDEN / "beats_classify_io.safetensors")


@pytest.fixture(scope="module")
def model():
    return load_beats(GOLDEN / "beats_tiny_official.pt")


def _assert_close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape and ours.dtype == torch.float32
    assert _rel_err(ours, ref) < MAX_REL_ERR, f"probabilities: relative error {_rel_err(ours, ref):.2e}"
    assert _rel_err(_logit(ours), _logit(ref)) < MAX_REL_ERR, "logits differ"


def test_probabilities_match_reference_without_padding(golden, model):
    with torch.no_grad():
        ours = model.classify(golden["wave"])
    _assert_close(ours, golden["probs"])


def test_probabilities_match_reference_with_padding_mask(golden, model):
    wave = golden["wave"].clone()
    valid = golden["valid_samples"]
    wave[1, int(valid[1]):] = golden["pad_fill"]  # loud noise where clip 1 is padding
    mask = torch.arange(wave.shape[1])[None, :] >= valid[:, None]
    with torch.no_grad():
        ours = model.classify(wave, mask)
    _assert_close(ours, golden["probs_padded"])
    # the padded clip scores as it does alone (the reference's own padded result equals its clip-alone result)
    with torch.no_grad():
        alone = model.classify(wave[1:, : int(valid[1])])
    _assert_close(alone, golden["probs_short_alone"])


def test_label_dict_is_read_from_the_file(model):
    assert model.label_dict is not None and len(model.label_dict) == 527
    assert model.label_dict[0] == "/m/golden0000" and model.label_dict[526] == "/m/golden0526"
