"""The toy world's flow-matching twin (benchmarks/toyworld --denoiser flow) at a size that runs in seconds."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from benchmarks.toyworld import flow_t2i, pictures  # noqa: E402
from benchmarks.toyworld.run import Settings, run  # noqa: E402

WORDS = ["engine", "siren"]


def test_token_written_at_the_placeholder_equals_the_class_word():
    """The class word's own T5 input row, written at <*>, gives exactly the text prompt's conditioning."""
    base = flow_t2i.build(WORDS, seed=0, layers=1)
    word_id = base.tokenizers[0]("siren", add_special_tokens=False)["input_ids"]
    assert len(word_id) == 1
    row = base.text_encoders[0].get_input_embeddings().weight[word_id].detach()[None]  # [1, 1, D]
    with torch.no_grad():
        audio = flow_t2i.encode_prompts(base, [flow_t2i.AUDIO_PROMPT], row)
        text = flow_t2i.encode_prompts(base, [flow_t2i.PROMPT.format("siren")])
    for key in text:
        torch.testing.assert_close(audio[key], text[key], rtol=0, atol=0)


def test_pretraining_lowers_the_flow_loss():
    base = flow_t2i.build(WORDS, seed=0, layers=1)
    pool = pictures.PicturePool(WORDS, 16, 0)
    losses = []
    flow_t2i.train_t2i(base, pool, 100, 16, 2e-3, 0, None,
                       lambda msg: losses.append(float(msg.split("loss")[1].split()[0])))
    assert losses and losses[-1] < 0.8  # the velocity target's variance is about 2 at the start
    assert not any(p.requires_grad for p in base.denoiser.parameters())


@pytest.mark.parametrize("denoiser", ["flow", "unet"])
def test_world_runs_end_to_end(tmp_path, denoiser):
    """Both worlds share the pictures, sounds, probe and the T2I recipe (t2i.train_jointly)."""
    s = Settings(denoiser=denoiser, classes=2, out=str(tmp_path), t2i_steps=4, t2i_batch=4, embed_steps=3,
                 embed_batch=4, embed_views=2, train_sounds=4, held_sounds=2, pictures_per_class=8,
                 classifier_steps=4, sample_steps=2, minutes=5)
    result = run(s)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["settings"]["denoiser"] == denoiser
    assert saved["steps_done"] == {"t2i_done": 4, "embed_done": 3}
    assert 0 <= result["audio_accuracy"] <= 1 and 0 <= result["probe_accuracy"] <= 1
    assert (tmp_path / "table.md").is_file() and (tmp_path / "toyworld-embedder.safetensors").is_file()
    if denoiser == "flow":
        assert (tmp_path / "toy-flow-t2i-k2.pt").is_file()
        # the embedder's head is T5's, named by the host's embedding key
        from audiotoken_core.embedder import load_embedder

        assert load_embedder(tmp_path / "toyworld-embedder.safetensors").widths == {"t5xxl": 64}
