"""Every model family: the token goes where an embedder head fits, words elsewhere, token for token the host's own.

Tokenizer level for SDXL, SD3.5, Flux and Qwen-Image (tokenizers need no weights), a full encode on SDXL, and
the node's preview of which route each text encoder took.
"""

from __future__ import annotations

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import pack_module, small_sd1_clip, small_sdxl_clip  # noqa: E402

WORDS = "dog, bark, animal"
PROMPT = "a watercolor of (<audio>:1.2) at night"


class TokenizerOnlyClip:
    """What the splice needs of a CLIP to tokenize: `tokenizer`, `clone()`, `tokenize(text)` (as comfy.sd.CLIP)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def clone(self):
        return TokenizerOnlyClip(self.tokenizer)

    def tokenize(self, text):
        return self.tokenizer.tokenize_with_weights(text, False)


def family_tokenizer(family: str, embeddings: str):
    import comfy.sdxl_clip
    import comfy.text_encoders.flux as flux
    import comfy.text_encoders.qwen_image as qwen_image
    import comfy.text_encoders.sd3_clip as sd3

    make = {"sdxl": comfy.sdxl_clip.SDXLTokenizer, "sd3.5": sd3.SD3Tokenizer, "flux": flux.FluxTokenizer,
            "qwen-image": qwen_image.QwenImageTokenizer}[family]
    return make(embedding_directory=[embeddings])


def sd1_token(seed: int = 0) -> dict[str, torch.Tensor]:
    """What the official SD1 embedder gives: one 768-wide token for clip_l."""
    return {"l": torch.randn(1, 1, 768, generator=torch.Generator().manual_seed(seed)) * 0.02}


def host_reference(tokenizer, tokens: dict[str, torch.Tensor], routed: set[str], folder) -> dict:
    """The host's own result: `embedding:NAME` (a plain TI file) where the token goes, the words elsewhere."""
    from safetensors.torch import save_file

    save_file({f"clip_{k}": v[0].contiguous() for k, v in tokens.items()}, str(folder / "reference_sound.safetensors"))
    with_token = tokenizer.tokenize_with_weights(PROMPT.replace("<audio>", "embedding:reference_sound"), False)
    with_words = tokenizer.tokenize_with_weights(PROMPT.replace("<audio>", WORDS), False)
    return {k: with_token[k] if k in routed else with_words[k] for k in with_token}


def assert_same_tokens(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert len(ours[key]) == len(theirs[key]), key
        for chunk_a, chunk_b in zip(ours[key], theirs[key]):
            assert len(chunk_a) == len(chunk_b), key
            for a, b in zip(chunk_a, chunk_b):
                assert type(a[0]) is type(b[0]) and a[1:] == b[1:], (key, a, b)
                assert torch.equal(a[0], b[0]) if isinstance(a[0], torch.Tensor) else a[0] == b[0], (key, a, b)


@pytest.mark.parametrize("family,routed", [("sdxl", {"l"}), ("sd3.5", {"l"}), ("flux", {"l"}), ("qwen-image", set())],
                         ids=["sdxl", "sd3.5", "flux", "qwen-image"])
def test_token_where_a_head_fits_words_elsewhere(family, routed, tmp_path):
    splice = pack_module("splice")
    tokenizer = family_tokenizer(family, str(tmp_path))
    tokens = sd1_token()
    clip = TokenizerOnlyClip(tokenizer)
    assert {e.name for e in splice.clip_encoders(clip) if e.attr in splice.token_route(splice.clip_encoders(clip),
                                                                                        tokens)} == routed
    ours = splice.tokenize_with_sound(clip, PROMPT, tokens, [WORDS])
    assert len(ours) == 1
    assert_same_tokens(ours[0], host_reference(tokenizer, tokens, routed, tmp_path))


def test_sdxl_full_encode_equals_the_hosts_hybrid(tmp_path):
    """The official SD1 embedder on SDXL: token in clip_l, words in clip_g, cond and pooled as the host gives them."""
    splice = pack_module("splice")
    clip = small_sdxl_clip([str(tmp_path)])
    tokens = sd1_token(seed=3)
    reference_tokens = host_reference(clip.tokenizer, tokens, {"l"}, tmp_path)
    theirs = clip.encode_from_tokens_scheduled(reference_tokens)
    ours = splice.encode_with_tokens(clip, PROMPT, tokens, [WORDS])
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours[0][1]["pooled_output"], theirs[0][1]["pooled_output"], rtol=1e-6, atol=1e-6)


def test_preview_names_each_route_and_uses_heard_words(tmp_path):
    types = pack_module("types")
    node = pack_module("text_encode").AudioTokenTextEncode
    sound = types.AudioTokens(sd1_token(seed=4), heard=types.HeardRows([WORDS]))
    out = node.execute(small_sdxl_clip([str(tmp_path)]), sound, "a photo of <audio>")
    preview = out.ui.as_dict()["text"][0]
    assert "l (768): audio token" in preview, preview
    assert f"g (1280): words '{WORDS}' (what BEATs heard)" in preview, preview


def test_no_fitting_head_is_words_only_and_says_so(tmp_path):
    """An SD2 (h, 1024) embedder on an SD1 CLIP: the fallback text stands in, and the preview says why."""
    types = pack_module("types")
    node = pack_module("text_encode").AudioTokenTextEncode
    clip = small_sd1_clip([str(tmp_path)])
    sound = types.AudioTokens({"h": torch.randn(1, 1, 1024) * 0.02})
    out = node.execute(clip, sound, "a photo of <audio>", "fallback text", "rain on a roof")
    preview = out.ui.as_dict()["text"][0]
    assert "words only" in preview and "h (1024)" in preview and "'rain on a roof'" in preview, preview
    theirs = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of rain on a roof"))
    torch.testing.assert_close(out[0][0][0], theirs[0][0], rtol=1e-6, atol=1e-6)


def test_words_of_different_lengths_in_one_batch_are_refused_with_a_way_out(tmp_path):
    types = pack_module("types")
    node = pack_module("text_encode").AudioTokenTextEncode
    long_words = ", ".join(["dog"] * 80)  # pushes the second prompt past 75 tokens
    sounds = types.AudioTokens({"h": torch.randn(2, 1, 1024) * 0.02}, heard=types.HeardRows(["dog", long_words]))
    with pytest.raises(ValueError, match="different lengths.*shorten the prompt"):
        node.execute(small_sd1_clip([str(tmp_path)]), sounds, "a photo of <audio>")
