"""Our Embedder against outputs of the official FGAEmbedder (provenance: fixtures/golden/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiotoken_core.embedder import OFFICIAL_KEYS, load_embedder, official_state_dict
from audiotoken_core.safeload import load_torch_checkpoint

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
OFFICIAL_BIN = GOLDEN / "embedder_tiny_official.bin"


@pytest.fixture(scope="module")
def io():
    return load_file(str(GOLDEN / "embedder_tiny_io.safetensors"))


@pytest.fixture(scope="module")
def model():
    # width 48 is no CLIP width, so the head is named explicitly
    return load_embedder(OFFICIAL_BIN, head="l")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def test_fixture_is_official_layout():
    state = load_torch_checkpoint(OFFICIAL_BIN)
    assert list(state) == list(OFFICIAL_KEYS)
    keys = json.loads((GOLDEN / "embedder_official_keys.json").read_text())
    assert list(keys["state_dict"]) == list(OFFICIAL_KEYS) and keys["params"] == 8_853_507


def test_deterministic_output_matches_reference_without_dropout(model, io):
    with torch.no_grad():
        out = model(io["features"])
    assert out.shape == (2, 1, 48)
    err = rel_err(out[:, 0], io["deterministic"])
    assert err < 1e-4, f"relative error {err:.3e}"


def test_faithful_output_matches_reference_under_the_same_seed(model, io):
    model.faithful_dropout = True
    try:
        with torch.no_grad():
            torch.manual_seed(77)  # the dropout seed the fixture was made with
            out = model(io["features"])
    finally:
        model.faithful_dropout = False
    err = rel_err(out[:, 0], io["faithful"])
    assert err < 1e-4, f"relative error {err:.3e}: the dropout mask differs from the reference's"
    # the reference's own stochastic output is far from the dropout-free one, so the match above is not luck
    assert rel_err(io["faithful"], io["deterministic"]) > 1e-2


def test_loaded_weights_are_the_file_bit_for_bit(model):
    state = load_torch_checkpoint(OFFICIAL_BIN)
    back = official_state_dict(model)
    assert all(torch.equal(back[k], state[k]) for k in OFFICIAL_KEYS)
