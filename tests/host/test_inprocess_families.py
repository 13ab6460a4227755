"""Every model family: a learned token in every encoder a head fits, words elsewhere, equal to the host's own.

The host's own result is its textual-inversion path: the same vectors in a plain TI file (every head under its
host key, as Save Embedding writes), the prompt written with `embedding:NAME`. Tokenizer level for SDXL, SD3.5
(l, g, t5xxl), Flux.1 (l, t5xxl), Qwen-Image (qwen25_7b), Z-Image and Flux.2 klein (qwen3_4b; 0.33.0 only) and
Flux.2 dev (mistral3_24b, from a tiny tekken file the test writes; 0.33.0 only), with several vectors per T5 / LLM
head; full encodes through small text encoders built from the host's classes for SDXL, Flux.1 (CLIP-L + T5),
Z-Image (Qwen3), Flux.2 dev (Mistral Small 3, pruned to the 30 layers whose outputs 10, 20, 30 it reads; 0.33.0
only) and Qwen-Image (Qwen2.5-VL's language model; its class always builds the 32-block vision tower, which a
text prompt never reaches, so the test puts an empty module in its place).

Qwen-Image has no `embedding:` path of its own in either host: its tokenizer passes no embedding directory,
and its image-placeholder scan (`entry == 151655`) fails on a vector. Its reference is therefore the host's
sub-tokenizer with the directory set, on the prompt in the family's template, as the issue asks.
"""

from __future__ import annotations

import base64
import copy
import importlib
import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON, comfy_in_process

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import fill_random, pack_module, small_sd1_clip, small_sdxl_clip  # noqa: E402

WORDS = "dog, bark, animal"
PROMPT = "a watercolor of (<audio>:1.2) at night"
# (our prompt, the same prompt written for the host's parser, with weights, without weights)
PROMPTS = [
    ("a photo of <audio> at night", "a photo of embedding:{n} at night", "a photo of embedding:{n} at night"),
    ("cat,<audio>,dog", "cat, embedding:{n} ,dog", "cat, embedding:{n} ,dog"),
    ("a watercolor of (<audio>:1.2)", "a watercolor of (embedding:{n}:1.2)", "a watercolor of ( embedding:{n} :1.2)"),
    # a name runs to the next space; 0.3.64 does not end it at the template's `<|im_end|>`
    ("<audio>", "embedding:{n} ", "embedding:{n} "),
    ("night\n<audio>\tand <audio>", "night\nembedding:{n}\tand embedding:{n} ", "night\nembedding:{n}\tand embedding:{n} "),
]
PROMPT_IDS = ["middle", "punctuation", "weighted", "alone", "newline-tab-twice"]

# family -> (tokenizer module, class, heads {name: (width, vectors)}, parses weights)
FAMILIES = {
    "sdxl": ("comfy.sdxl_clip", "SDXLTokenizer", {"l": (768, 1), "g": (1280, 1)}, True),
    "sd3.5": ("comfy.text_encoders.sd3_clip", "SD3Tokenizer", {"l": (768, 1), "g": (1280, 1), "t5xxl": (4096, 3)},
              True),
    "flux": ("comfy.text_encoders.flux", "FluxTokenizer", {"l": (768, 1), "t5xxl": (4096, 4)}, True),
    "qwen-image": ("comfy.text_encoders.qwen_image", "QwenImageTokenizer", {"qwen25_7b": (3584, 2)}, False),
    "z-image": ("comfy.text_encoders.z_image", "ZImageTokenizer", {"qwen3_4b": (2560, 2)}, False),
    "flux2-klein": ("comfy.text_encoders.flux", "KleinTokenizer", {"qwen3_4b": (2560, 3)}, False),
    "flux2-dev": ("comfy.text_encoders.flux", "Flux2Tokenizer", {"mistral3_24b": (5120, 3)}, False),
}


def on_this_host(family: str) -> bool:
    """Whether the host under test has the family's tokenizer (Z-Image and Flux.2 came after 0.3.64). Read
    from its source at collection, because the host matrix runs no skipped test. `class NAME:` too (SDXL's, SD3's
    and Flux.1's tokenizers have no base class)."""
    module, name = FAMILIES[family][:2]
    source = Path(COMFYUI_PATH, *module.split(".")).with_suffix(".py")
    if not source.is_file():
        return False
    return re.search(rf"^class {name}\b", source.read_text(encoding="utf-8"), re.MULTILINE) is not None


HOST_FAMILIES = [f for f in FAMILIES if on_this_host(f)]


class TokenizerOnlyClip:
    """What the splice needs of a CLIP to tokenize: `tokenizer`, `clone()`, `tokenize(text)` (as comfy.sd.CLIP)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def clone(self):
        return TokenizerOnlyClip(self.tokenizer)

    def tokenize(self, text):
        return self.tokenizer.tokenize_with_weights(text, False)


# Mistral's tekken special tokens, in their ranks: the host's Mistral3Tokenizer starts with <s> (1), pads with <pad>
# (11), and Flux.2 dev's template is written in [SYSTEM_PROMPT] ... [/INST].
TEKKEN_SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                   "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                   "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"]
# What the tiny tekken vocabulary learns whole words from: the test's prompts and words, Flux.2 dev's system prompt.
FLUX2_SYSTEM_PROMPT = ("You are an AI that reasons about image descriptions. You give structured responses focusing "
                       "on object relationships, object attribution and actions without speculation.")
TEKKEN_CORPUS = " ".join([WORDS, PROMPT, *(p[0] for p in PROMPTS), FLUX2_SYSTEM_PROMPT])


def tiny_bpe_vocab(corpus: str, merges: int) -> list[bytes]:
    """Byte-level BPE trained on `corpus`: the 256 bytes (any text falls back to them), then `merges` tokens, each
    the most frequent adjacent pair (ties: the smaller pair), in the order learned, as tiktoken ranks them."""
    words = Counter(tuple(bytes([b]) for b in w.encode()) for w in re.findall(r" ?\w+| ?[^\w\s]+|\s+", corpus))
    vocab = [bytes([b]) for b in range(256)]
    for _ in range(merges):
        pairs = Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        left, right = min(pairs, key=lambda pair: (-pairs[pair], pair))
        vocab.append(left + right)
        merged = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i:i + 2] == (left, right):
                    out.append(left + right)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return vocab


def tiny_tekken_json(merges: int = 120) -> bytes:
    """A Mistral tekken file (what a Flux.2 dev checkpoint carries as `tekken_model`), ~400 tokens: special tokens
    at ranks 0-19, the BPE vocabulary after them. The host (`bpe_tokenizer.from_tekken_json`) reads the vocabulary,
    the special tokens and the two counts; it splits text with its own pattern, written here as the pattern."""
    comfy_in_process()  # idempotent; a test run on its own has not imported the host yet
    from comfy.text_encoders.bpe_tokenizer import _LLAMA_PATTERN

    vocab = tiny_bpe_vocab(TEKKEN_CORPUS, merges)
    return json.dumps({
        "config": {"pattern": _LLAMA_PATTERN, "num_vocab_tokens": len(TEKKEN_SPECIALS) + len(vocab),
                   "default_vocab_size": len(TEKKEN_SPECIALS) + len(vocab),
                   "default_num_special_tokens": len(TEKKEN_SPECIALS), "version": "v7"},
        "vocab": [{"rank": r, "token_bytes": base64.b64encode(t).decode(), "token_str": t.decode("utf-8", "replace")}
                  for r, t in enumerate(vocab)],
        "special_tokens": [{"rank": r, "token_str": t, "is_control": True} for r, t in enumerate(TEKKEN_SPECIALS)],
    }).encode()


def flux2_dev_tokenizer_data() -> dict:
    """As a Flux.2 dev text-encoder checkpoint hands it to the tokenizer: the tekken json as a uint8 tensor."""
    return {"tekken_model": torch.frombuffer(bytearray(tiny_tekken_json()), dtype=torch.uint8)}


# family -> its tokenizer_data, where the host ships no tokenizer files for it (Flux.2 dev's is in the checkpoint)
TOKENIZER_DATA = {"flux2-dev": flux2_dev_tokenizer_data}


def family_tokenizer(family: str, embeddings: str):
    comfy_in_process()
    module, name = FAMILIES[family][:2]
    extra = {"tokenizer_data": TOKENIZER_DATA[family]()} if family in TOKENIZER_DATA else {}
    return getattr(importlib.import_module(module), name)(embedding_directory=[embeddings], **extra)


def family_tokens(family: str, seed: int = 0, batch: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, n, w, generator=g) * 0.02 for k, (w, n) in FAMILIES[family][2].items()}


def write_reference(tokens: dict[str, torch.Tensor], folder, name: str, index: int = 0) -> None:
    """The plain TI file, written by Save Embedding's own writer: every head under its host key."""
    pack_module("embedding_file").write_embedding(folder / f"{name}.safetensors", tokens, index)


def host_tokenize(tokenizer, text: str, folder) -> dict:
    """The host's tokens for `text`; Qwen-Image: a copy of its sub-tokenizer with the directory set, on the
    prompt in its template, as its wrapper would pass it."""
    if type(tokenizer).__name__ == "QwenImageTokenizer":
        sub = copy.copy(tokenizer.qwen25_7b)
        sub.embedding_directory = [str(folder)]
        return {"qwen25_7b": sub.tokenize_with_weights(tokenizer.llama_template.format(text), False,
                                                       disable_weights=True)}
    return tokenizer.tokenize_with_weights(text, False)


def host_spelling(tokenizer, prompt: str) -> str:
    """The prompt as a user writes it for the host's own path. The host finds `embedding:` only after whitespace;
    Flux.2 dev's template puts `[INST]` right before the prompt, so there a leading `embedding:NAME` needs a space
    before it (a token of its own), as the splice writes it (splice._spaced). The other templates end in a newline."""
    template = getattr(tokenizer, "llama_template", "{}")
    before = template[:template.index("{}")]
    if prompt.startswith("embedding:") and before and not before[-1].isspace():
        return " " + prompt
    return prompt


def host_reference(tokenizer, tokens, routed: set[str], folder, host_prompt: str, words_prompt: str) -> dict:
    """The host's own result: `embedding:NAME` where a head fits (token lists keyed by head), the words
    elsewhere."""
    write_reference(tokens, folder, "reference_sound")
    with_token = host_tokenize(tokenizer, host_prompt.format(n="reference_sound"), folder)
    with_words = host_tokenize(tokenizer, words_prompt, folder)
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


def vectors_in(tokenized: dict, key: str) -> int:
    return sum(isinstance(e[0], torch.Tensor) for chunk in tokenized[key] for e in chunk)


@pytest.mark.parametrize("ours_prompt,weighted,unweighted", PROMPTS, ids=PROMPT_IDS)
@pytest.mark.parametrize("family", HOST_FAMILIES)
def test_every_head_places_its_vectors_as_the_host_does(family, ours_prompt, weighted, unweighted, tmp_path):
    splice = pack_module("splice")
    folder = tmp_path
    tokenizer = family_tokenizer(family, str(folder))
    clip = TokenizerOnlyClip(tokenizer)
    tokens = family_tokens(family)
    plan = splice.plan_splice(clip, tokens)
    assert {e.name for e in plan.encoders if plan.takes_tokens(e)} == set(tokens), "every head of the family fits"
    ours = splice.tokenize_with_sound(clip, ours_prompt, tokens, [WORDS], plan)
    assert len(ours) == 1
    host_prompt = host_spelling(tokenizer, weighted if FAMILIES[family][3] else unweighted)
    theirs = host_reference(tokenizer, tokens, set(ours[0]), folder, host_prompt, ours_prompt.replace("<audio>", WORDS))
    assert_same_tokens(ours[0], theirs)
    for head in ours[0]:  # the host keys its token lists by head name (l, g, t5xxl, qwen25_7b)
        assert vectors_in(ours[0], head) == ours_prompt.count("<audio>") * tokens[head].shape[1], head


if on_this_host("flux2-dev"):  # 0.3.64 has no Flux.2 dev tokenizer (and the host matrix runs no skipped test)

    def test_flux2_dev_finds_no_embedding_right_after_its_template(tmp_path):
        """Why host_spelling adds a space: `[INST]embedding:NAME` is words to the host, ` embedding:NAME` its three
        vectors; the splice writes the latter for a prompt that starts with the sound."""
        tokenizer = family_tokenizer("flux2-dev", str(tmp_path))
        tokens = family_tokens("flux2-dev")
        write_reference(tokens, tmp_path, "reference_sound")
        assert vectors_in(tokenizer.tokenize_with_weights("embedding:reference_sound"), "mistral3_24b") == 0
        assert vectors_in(tokenizer.tokenize_with_weights(" embedding:reference_sound"), "mistral3_24b") == 3
        ours = pack_module("splice").tokenize_with_sound(TokenizerOnlyClip(tokenizer), "<audio>", tokens, [WORDS])
        assert vectors_in(ours[0], "mistral3_24b") == 3


# The official SD1 embedder has only an `l` head: Flux.2 dev (no CLIP-L) and Qwen-Image get its words everywhere.
SD1_CASES = [(f, r) for f, r in [("sdxl", {"l"}), ("sd3.5", {"l"}), ("flux", {"l"}), ("qwen-image", set()),
                                 ("flux2-dev", set())] if on_this_host(f)]


@pytest.mark.parametrize("family,routed", SD1_CASES, ids=[f for f, _ in SD1_CASES])
def test_sd1_token_where_it_fits_words_elsewhere(family, routed, tmp_path):
    """The official SD1 embedder (one clip_l head) on each family: its token in clip_l, words in the rest."""
    splice = pack_module("splice")
    tokenizer = family_tokenizer(family, str(tmp_path))
    tokens = {"l": torch.randn(1, 1, 768, generator=torch.Generator().manual_seed(0)) * 0.02}
    clip = TokenizerOnlyClip(tokenizer)
    plan = splice.plan_splice(clip, tokens)
    assert {e.name for e in plan.encoders if plan.takes_tokens(e)} == routed
    ours = splice.tokenize_with_sound(clip, PROMPT, tokens, [WORDS], plan)
    theirs = host_reference(tokenizer, tokens, routed, tmp_path, PROMPT.replace("<audio>", "embedding:{n}"),
                            PROMPT.replace("<audio>", WORDS))
    assert_same_tokens(ours[0], theirs)


def test_a_batch_of_sounds_each_get_their_own_vectors(tmp_path):
    splice = pack_module("splice")
    tokenizer = family_tokenizer("flux", str(tmp_path))
    tokens = family_tokens("flux", seed=5, batch=2)
    ours = splice.tokenize_with_sound(TokenizerOnlyClip(tokenizer), "a photo of <audio>", tokens, ["a", "b"])
    for b in range(2):
        write_reference(tokens, tmp_path, f"sound_{b}", index=b)
        assert_same_tokens(ours[b], tokenizer.tokenize_with_weights(f"a photo of embedding:sound_{b}", False))


def test_save_embedding_file_is_read_by_every_family(tmp_path):
    """Save Embedding's file of a Flux embedder: the host's T5 tokenizer reads the t5xxl key, CLIP-L clip_l."""
    from safetensors.torch import load_file

    tokens = family_tokens("flux", seed=6)
    write_reference(tokens, tmp_path, "saved")
    assert {k: tuple(v.shape) for k, v in load_file(str(tmp_path / "saved.safetensors")).items()} == {
        "clip_l": (1, 768), "t5xxl": (4, 4096)}
    tokenizer = family_tokenizer("flux", str(tmp_path))
    out = tokenizer.tokenize_with_weights("a photo of embedding:saved", False)
    assert vectors_in(out, "l") == 1 and vectors_in(out, "t5xxl") == 4


# ----------------------------------------------------------------------------- full encodes


def tiny_clip(tokenizer_cls, model_cls, embeddings, options: dict, widths: dict[str, int], seed: int,
              tokenizer_data: dict | None = None):
    """A comfy.sd.CLIP from the host's own classes with small text encoders; `widths` narrows the tokenizers'
    embedding width to the small encoders' (the splice and the host read it from there alike); `tokenizer_data`
    as a checkpoint hands it over (Flux.2 dev's tekken file)."""
    comfy_in_process()
    import comfy.sd
    import comfy.supported_models_base

    target = comfy.supported_models_base.ClipTarget(tokenizer_cls, model_cls)
    clip = comfy.sd.CLIP(target=target, embedding_directory=[str(embeddings)], tokenizer_data=tokenizer_data or {},
                         model_options={**options, "dtype": torch.float32})
    for attr, width in widths.items():
        getattr(clip.tokenizer, attr).embedding_size = width
    fill_random(clip.cond_stage_model, seed=seed)
    return clip


def assert_same_encode(clip, ours_prompt: str, host_prompt: str, tokens, folder):
    splice = pack_module("splice")
    write_reference(tokens, folder, "reference_sound")
    theirs = clip.encode_from_tokens_scheduled(clip.tokenize(host_prompt.format(n="reference_sound")))
    ours = splice.encode_with_tokens(clip, ours_prompt, tokens, [WORDS])
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    for key in ("pooled_output", "attention_mask"):
        if key in theirs[0][1]:
            torch.testing.assert_close(ours[0][1][key], theirs[0][1][key], rtol=1e-6, atol=1e-6)
    return ours


SMALL_T5 = 64  # the small Flux T5's width


def small_flux_clip(embeddings):
    """Flux.1's CLIP-L (3 layers) + T5 (1 block, 64 wide), from the host's classes."""
    import comfy.text_encoders.flux as flux

    t5 = {"num_layers": 1, "d_model": SMALL_T5, "d_ff": 64, "num_heads": 2, "d_kv": 32}
    return tiny_clip(flux.FluxTokenizer, flux.FluxClipModel, embeddings,
                     {"clip_l_model_config": {"num_hidden_layers": 3}, "t5xxl_model_config": t5}, {"t5xxl": SMALL_T5},
                     4)


def test_flux_full_encode_equals_the_host(tmp_path):
    """A token in each of Flux's encoders: pooled and sequence as the host's."""
    clip = small_flux_clip(tmp_path)
    g = torch.Generator().manual_seed(7)
    tokens = {"l": torch.randn(1, 1, 768, generator=g) * 0.02, "t5xxl": torch.randn(1, 4, SMALL_T5, generator=g) * 0.5}
    ours = assert_same_encode(clip, PROMPTS[0][0], PROMPTS[0][1], tokens, tmp_path)
    plain = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a dog at night"))
    assert not torch.allclose(ours[0][0], plain[0][0]), "the T5 token changes the sequence"


def test_the_flux_templates_text_encode_equals_the_host(host_assets, tmp_path):
    """audiotoken_flux_token.json's sound -> Encode -> Text Encode with the template's own widgets, through a Flux
    embedder (clip_l 1 vector, t5xxl 4) and the small Flux encoders: both routes are tokens, and the conditioning
    (sequence and pooled) is the host's own for the prompt written with `embedding:NAME`. The template's image half
    (FluxGuidance, the sampler) is core ComfyUI."""
    import json

    from factories.embedder import write_tiny_embedder
    from host_assets import BEATS, BEATS_DIM, FLUX_TOKENS

    workflow = json.loads((Path(__file__).parents[2] / "example_workflows" / "audiotoken_flux_token.json").read_text())
    widgets = {n["type"]: n["widgets_values"] for n in workflow["nodes"]}
    embedder = write_tiny_embedder(tmp_path / "flux_small_t5.safetensors", in_dim=3 * BEATS_DIM,
                                   widths={"l": 768, "t5xxl": SMALL_T5}, n_tokens=FLUX_TOKENS, seed=2)
    model = pack_module("runtime").get_model(str(embedder), str(host_assets["audio_encoders"] / BEATS), "fp32")
    g = torch.Generator().manual_seed(9)
    audio = {"waveform": torch.randn(1, 2, 3 * 22050, generator=g) * 0.1, "sample_rate": 22050}
    tokens = pack_module("encode").AudioTokenEncode.execute(model, audio, *widgets["AudioTokenEncode"])[0]
    assert {k: v.shape[1] for k, v in tokens.tokens.items()} == FLUX_TOKENS

    clip = small_flux_clip(tmp_path)
    text, words, fallback = widgets["AudioTokenTextEncode"]
    assert "<audio>" in text
    out = pack_module("text_encode").AudioTokenTextEncode.execute(clip, tokens, text, words, fallback)
    preview = out.ui.as_dict()["text"][0]
    assert "l (768): audio token (1 vector)" in preview and f"t5xxl ({SMALL_T5}): audio token (4 vectors)" in preview
    write_reference(tokens.tokens, tmp_path, "reference_sound")
    theirs = clip.encode_from_tokens_scheduled(clip.tokenize(text.replace("<audio>", "embedding:reference_sound ")))
    ours = out[0]
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours[0][1]["pooled_output"], theirs[0][1]["pooled_output"], rtol=1e-6, atol=1e-6)


if on_this_host("z-image"):  # 0.3.64 has no Z-Image text encoder (and the host matrix runs no skipped test)

    def test_z_image_full_encode_equals_the_host(tmp_path):
        """Z-Image's Qwen3 (3 layers, as it reads the second to last; 128 wide): two vectors in the chat template,
        as the host's own path places them."""
        import comfy.text_encoders.z_image as z_image

        qwen3 = {"hidden_size": 128, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 1,
                 "num_key_value_heads": 1}
        clip = tiny_clip(z_image.ZImageTokenizer, z_image.ZImageTEModel, tmp_path, {"qwen3_4b_model_config": qwen3},
                         {"qwen3_4b": 128}, 5)
        tokens = {"qwen3_4b": torch.randn(1, 2, 128, generator=torch.Generator().manual_seed(8)) * 0.5}
        assert_same_encode(clip, PROMPTS[1][0], PROMPTS[1][2], tokens, tmp_path)


if on_this_host("flux2-dev"):  # 0.3.64 has no Flux.2 dev text encoder (and the host matrix runs no skipped test)

    FLUX2_DEV_WIDTH = 64  # the small Mistral's width; the conditioning is its 3 read layers side by side (192)

    def small_flux2_dev_clip(embeddings):
        """Flux.2 dev's Mistral Small 3 from the host's classes: flux2_te(pruned=True), the 30-layer text encoder
        without final norm, the fewest layers for the outputs 10, 20 and 30 it reads (30: the last layer's); 64
        wide, one head, the tiny tekken file's vocabulary, the tokenizer from that file as a checkpoint gives it."""
        comfy_in_process()
        import comfy.text_encoders.flux as flux

        data = flux2_dev_tokenizer_data()
        vocab = json.loads(bytes(data["tekken_model"]))["config"]["num_vocab_tokens"]
        mistral = {"hidden_size": FLUX2_DEV_WIDTH, "intermediate_size": 64, "num_attention_heads": 1,
                   "num_key_value_heads": 1, "vocab_size": vocab}
        clip = tiny_clip(flux.Flux2Tokenizer, flux.flux2_te(pruned=True), embeddings,
                         {"mistral3_24b_model_config": mistral}, {"mistral3_24b": FLUX2_DEV_WIDTH}, 12,
                         tokenizer_data=data)
        assert len(clip.cond_stage_model.mistral3_24b.transformer.model.layers) == 30
        return clip

    @pytest.mark.parametrize("prompt", [PROMPTS[1], PROMPTS[3]], ids=["punctuation", "alone"])
    def test_flux2_dev_full_encode_equals_the_host(prompt, tmp_path):
        """Three vectors in Flux.2 dev's template, through the small Mistral: conditioning (layers 10, 20, 30 side
        by side) and mask as the host's own `embedding:` path gives them; a prompt that starts with the sound is
        the host's ` embedding:NAME` (host_spelling)."""
        clip = small_flux2_dev_clip(tmp_path)
        tokens = {"mistral3_24b": torch.randn(1, 3, FLUX2_DEV_WIDTH, generator=torch.Generator().manual_seed(13)) * 0.5}
        ours = assert_same_encode(clip, prompt[0], host_spelling(clip.tokenizer, prompt[2]), tokens, tmp_path)
        other = pack_module("splice").encode_with_tokens(clip, prompt[0], {k: -v for k, v in tokens.items()}, [WORDS])
        for layer in range(3):  # each read layer's block of the conditioning depends on the vectors
            block = slice(layer * FLUX2_DEV_WIDTH, (layer + 1) * FLUX2_DEV_WIDTH)
            assert not torch.allclose(ours[0][0][..., block], other[0][0][..., block]), layer

    def test_flux2_dev_text_encode_names_mistral3_24b_and_equals_the_host(tmp_path):
        """The node on the small Flux.2 dev CLIP: the preview names the mistral3_24b route, the conditioning is the
        host's for `embedding:NAME`."""
        types = pack_module("types")
        clip = small_flux2_dev_clip(tmp_path)
        tokens = {"mistral3_24b": torch.randn(1, 3, FLUX2_DEV_WIDTH, generator=torch.Generator().manual_seed(14)) * 0.5}
        sound = types.AudioTokens(tokens, heard=types.HeardRows([WORDS]))
        out = pack_module("text_encode").AudioTokenTextEncode.execute(clip, sound, PROMPTS[0][0])
        preview = out.ui.as_dict()["text"][0]
        assert preview.splitlines() == [f"mistral3_24b ({FLUX2_DEV_WIDTH}): audio token (3 vectors)"], preview
        write_reference(tokens, tmp_path, "reference_sound")
        theirs = clip.encode_from_tokens_scheduled(clip.tokenize(PROMPTS[0][2].format(n="reference_sound")))
        torch.testing.assert_close(out[0][0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(out[0][0][1]["attention_mask"], theirs[0][1]["attention_mask"])


class NoVisionTower(torch.nn.Module):
    """Stands in for Qwen2.5-VL's 32-block vision tower (670M weights): a text prompt never reaches it."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *args, **kwargs):
        raise AssertionError("a text-only encode ran the vision tower")


def test_qwen_image_full_encode_equals_the_host(tmp_path, monkeypatch):
    """Qwen-Image's Qwen2.5-VL language model (2 layers, 128 wide) from the host's classes, its vision tower left
    out: two vectors in the prompt template, conditioning and mask as the host's sub-tokenizer with the directory
    set gives them (the family's own tokenizer reads no embedding directory)."""
    import comfy.text_encoders.qwen_image as qwen_image
    import comfy.text_encoders.qwen_vl as qwen_vl

    monkeypatch.setattr(qwen_vl, "Qwen2VLVisionTransformer", NoVisionTower)
    qwen25 = {"hidden_size": 128, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 1,
              "num_key_value_heads": 1}
    clip = tiny_clip(qwen_image.QwenImageTokenizer, qwen_image.QwenImageTEModel, tmp_path,
                     {"qwen25_7b_model_config": qwen25}, {"qwen25_7b": 128}, 6)
    tokens = {"qwen25_7b": torch.randn(1, 2, 128, generator=torch.Generator().manual_seed(10)) * 0.5}
    splice = pack_module("splice")
    write_reference(tokens, tmp_path, "reference_sound")
    host_tokens = host_tokenize(clip.tokenizer, PROMPTS[0][2].format(n="reference_sound"), tmp_path)
    assert vectors_in(host_tokens, "qwen25_7b") == 2
    theirs = clip.encode_from_tokens_scheduled(host_tokens)
    ours = splice.encode_with_tokens(clip, PROMPTS[0][0], tokens, [WORDS])
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    if "attention_mask" in theirs[0][1]:
        torch.testing.assert_close(ours[0][1]["attention_mask"], theirs[0][1]["attention_mask"])
    plain = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a dog at night"))
    assert not torch.allclose(ours[0][0][:, -8:], plain[0][0][:, -8:]), "the token changes the sequence"


def test_sdxl_full_encode_equals_the_hosts_hybrid(tmp_path):
    """The official SD1 embedder on SDXL: token in clip_l, words in clip_g, cond and pooled as the host gives them."""
    splice = pack_module("splice")
    clip = small_sdxl_clip([str(tmp_path)])
    tokens = {"l": torch.randn(1, 1, 768, generator=torch.Generator().manual_seed(3)) * 0.02}
    reference_tokens = host_reference(clip.tokenizer, tokens, {"l"}, tmp_path, PROMPT.replace("<audio>", "embedding:{n}"),
                                      PROMPT.replace("<audio>", WORDS))
    theirs = clip.encode_from_tokens_scheduled(reference_tokens)
    ours = splice.encode_with_tokens(clip, PROMPT, tokens, [WORDS])
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours[0][1]["pooled_output"], theirs[0][1]["pooled_output"], rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- the node's preview


def test_preview_names_each_route_and_uses_heard_words(tmp_path):
    types = pack_module("types")
    node = pack_module("text_encode").AudioTokenTextEncode
    sound = types.AudioTokens({"l": torch.randn(1, 1, 768) * 0.02}, heard=types.HeardRows([WORDS]))
    out = node.execute(small_sdxl_clip([str(tmp_path)]), sound, "a photo of <audio>")
    preview = out.ui.as_dict()["text"][0]
    assert "l (768): audio token (1 vector)" in preview, preview
    assert f"g (1280): words '{WORDS}' (what BEATs heard)" in preview, preview


def test_preview_of_a_flux_embedder_names_both_token_routes(tmp_path):
    splice = pack_module("splice")
    tokenizer = family_tokenizer("flux", str(tmp_path))
    clip = TokenizerOnlyClip(tokenizer)
    preview = splice.plan_splice(clip, family_tokens("flux")).describe("words 'dog'")
    assert preview.splitlines() == ["l (768): audio token (1 vector)", "t5xxl (4096): audio token (4 vectors)"]
    narrow = {"l": torch.zeros(1, 1, 768), "t5xxl": torch.zeros(1, 1, 512)}
    preview = splice.plan_splice(clip, narrow).describe("words 'dog'")
    assert "t5xxl (4096): words 'dog' (the embedder's t5xxl head is 512 wide)" in preview, preview


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
