"""The host details the pack relies on are checked once at load; a changed host gives one clear message."""

from __future__ import annotations

import logging

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import pack_module, small_sd1_clip  # noqa: E402


@pytest.fixture
def compat():
    module = pack_module("host_compat")
    module.reset()
    yield module
    module.reset()


def sound_tokens() -> dict[str, torch.Tensor]:
    return {"l": torch.randn(1, 1, 768, generator=torch.Generator().manual_seed(0)) * 0.02}


def test_this_host_serves_every_feature(compat):
    assert compat.check_host() == {}
    assert compat.comfyui_version() not in ("", "unknown")


def wrong_vectors(name, folder, size, key=None):
    """A loader that finds the file but gives something else: what a host changing its lookup would do."""
    return torch.zeros(1, size)


def test_changed_embedding_loader_is_one_log_line_and_the_node_error(compat, monkeypatch, caplog, tmp_path):
    import comfy.sd1_clip

    monkeypatch.setattr(comfy.sd1_clip, "load_embed", wrong_vectors)
    with caplog.at_level(logging.ERROR, logger="audiotoken"):
        problems = compat.check_host()
        compat.check_host()  # asked again: still one line
    assert list(problems) == ["text encode"]
    lines = [r.getMessage() for r in caplog.records if r.name == "audiotoken"]
    assert len(lines) == 1
    assert f"ComfyUI {compat.comfyui_version()}" in lines[0] and "load_embed" in lines[0], lines[0]

    node = pack_module("text_encode").AudioTokenTextEncode
    clip = small_sd1_clip([str(tmp_path)])
    with pytest.raises(RuntimeError) as err:
        node.execute(clip, pack_module("types").AudioTokens(sound_tokens()), "a photo of <audio>")
    assert str(err.value) == problems["text encode"]


def test_missing_model_management_function_fails_the_loader_with_the_same_message(compat, monkeypatch):
    import comfy.model_management

    monkeypatch.delattr(comfy.model_management, "load_models_gpu")
    problems = compat.check_host()
    assert "comfy.model_management.load_models_gpu" in problems["model loading"]
    loader = pack_module("model_loader").AudioTokenModelLoader
    with pytest.raises(RuntimeError) as err:
        loader.execute("any.bin", "any.pt", "auto")
    assert str(err.value) == problems["model loading"]


def test_prompt_parsing_that_drops_the_sound_is_caught_not_drawn(compat, monkeypatch, tmp_path):
    """Checks passed at load, but this host's tokenizer does not place the vectors: the encode must fail."""
    import comfy.sd1_clip

    assert compat.check_host() == {}
    monkeypatch.setattr(comfy.sd1_clip, "load_embed", wrong_vectors)
    splice = pack_module("splice")
    with pytest.raises(RuntimeError, match=r"placed 0 of 2 audio vectors in the l prompt"):
        splice.encode_with_tokens(small_sd1_clip([str(tmp_path)]), "<audio> and <audio>", sound_tokens())


def refuse(*args, **kwargs):
    """A governed build's load_embed under a model policy that forbids embeddings."""
    return None


def test_a_host_that_refuses_embedding_files_says_so_at_start_up_and_in_text_encode(compat, monkeypatch, caplog,
                                                                                 tmp_path):
    import comfy.sd1_clip

    monkeypatch.setattr(comfy.sd1_clip, "load_embed", refuse)
    with caplog.at_level(logging.ERROR, logger="audiotoken"):
        problems = compat.check_host()
    assert problems == {"text encode": compat.embeddings_refused_message()}
    assert [r.getMessage() for r in caplog.records if r.name == "audiotoken"] == \
        [f"[AudioToken] {problems['text encode']}"]
    message = problems["text encode"]
    assert "refuses embedding files" in message and "model policy" in message and "changed" not in message
    node = pack_module("text_encode").AudioTokenTextEncode
    with pytest.raises(RuntimeError) as err:
        node.execute(small_sd1_clip([str(tmp_path)]), pack_module("types").AudioTokens(sound_tokens()),
                     "a photo of <audio>")
    assert str(err.value) == message


def test_a_refusal_after_start_up_is_the_same_message_not_a_changed_host(compat, monkeypatch, tmp_path):
    """The policy came into force after the checks at load (or covers only some folders): the same message."""
    import comfy.sd1_clip

    assert compat.check_host() == {}
    monkeypatch.setattr(comfy.sd1_clip, "load_embed", refuse)
    node = pack_module("text_encode").AudioTokenTextEncode
    with pytest.raises(RuntimeError) as err:
        node.execute(small_sd1_clip([str(tmp_path)]), pack_module("types").AudioTokens(sound_tokens()),
                     "a photo of <audio>")
    assert str(err.value) == compat.embeddings_refused_message()
