"""Test-wide settings: never reach a model hub, keep torch small and deterministic on CPU."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models are dispatch-bound: one thread is faster and steadier on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def beats_rows(tokenizer, monkeypatch):
    """Rows (windows) that reach the module's `tokenizer` BEATs, one entry per pass, whatever the batching."""
    rows = []
    real = tokenizer.beats.extract_layers

    def counting(wave, padding_mask=None):
        rows.append(wave.shape[0])
        return real(wave, padding_mask=padding_mask)

    monkeypatch.setattr(tokenizer.beats, "extract_layers", counting)
    return rows
