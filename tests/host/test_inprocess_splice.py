"""The audio splice equals the host's own textual-inversion path, on SD1.5 and SDXL CLIPs (in-process)."""

from __future__ import annotations


import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import pack_module, sd15_clip, small_sd1_clip, small_sd2_clip, small_sdxl_clip  # noqa: E402

LONG = " ".join(f"word{i}" for i in range(80))
# (our prompt, the same prompt written for a textual-inversion file called {n})
PROMPTS = [
    ("a photo of <audio>", "a photo of embedding:{n}"),
    ("(<audio>:1.3) in the rain, <audio>", "(embedding:{n}:1.3) in the rain, embedding:{n}"),
    ("<audio>, " + LONG + " <audio> at the end", "embedding:{n}, " + LONG + " embedding:{n} at the end"),
    ("cat,<audio>,dog\n((<audio>))", "cat, embedding:{n} ,dog\n((embedding:{n}))"),
]


def random_tokens(widths: dict[str, int], batch: int, n_tokens: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, n_tokens, w, generator=g) * 0.02 for k, w in widths.items()}


def write_ti_files(tokens, folder, stem: str) -> list[str]:
    """One textual-inversion file per sound, in the plain `{clip_l: [n, 768], ...}` layout users download."""
    from safetensors.torch import save_file

    names = []
    for b in range(next(iter(tokens.values())).shape[0]):
        name = f"{stem}_{b}"
        save_file({f"clip_{k}": v[b].contiguous() for k, v in tokens.items()}, str(folder / f"{name}.safetensors"))
        names.append(name)
    return names


def assert_same_conditioning(ours, theirs):
    assert len(ours) == len(theirs) == 1
    torch.testing.assert_close(ours[0][0], theirs[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours[0][1]["pooled_output"], theirs[0][1]["pooled_output"], rtol=1e-6, atol=1e-6)


def host_reference(clip, ti_text: str, names: list[str]):
    """What the host gives for each sound's TI file, stacked on the batch axis like the pack does."""
    splice = pack_module("splice")
    per_sound = [clip.encode_from_tokens_scheduled(clip.tokenize(ti_text.format(n=name))) for name in names]
    return splice.stack_conditionings(per_sound)


@pytest.fixture(scope="module")
def embeddings_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def sd1_clip(embeddings_dir):
    return small_sd1_clip([str(embeddings_dir)])


@pytest.fixture(scope="module")
def sdxl_clip(host_assets, embeddings_dir):
    return small_sdxl_clip([str(embeddings_dir)])


@pytest.mark.parametrize("prompt,ti_prompt,n_tokens", [(*p, 1) for p in PROMPTS] + [(*PROMPTS[1], 2)],
                         ids=["simple", "weighted-twice", "long", "punctuation", "weighted-twice-2-tokens"])
def test_sd1_matches_textual_inversion(sd1_clip, embeddings_dir, prompt, ti_prompt, n_tokens):
    splice = pack_module("splice")
    tokens = random_tokens({"l": 768}, batch=2, n_tokens=n_tokens, seed=n_tokens)
    names = write_ti_files(tokens, embeddings_dir, f"sd1_n{n_tokens}")
    ours = splice.encode_with_tokens(sd1_clip, prompt, tokens)
    theirs = host_reference(sd1_clip, ti_prompt, names)
    assert ours[0][0].shape[0] == 2 and ours[0][1]["pooled_output"].shape[0] == 2
    assert_same_conditioning(ours, theirs)


@pytest.mark.parametrize("prompt,ti_prompt", PROMPTS, ids=["simple", "weighted-twice", "long", "punctuation"])
def test_sdxl_matches_textual_inversion(sdxl_clip, embeddings_dir, prompt, ti_prompt):
    splice = pack_module("splice")
    # Batch stacking is covered on SD1; one sound keeps the 1280-wide clip_g runs few on a CPU.
    tokens = random_tokens({"l": 768, "g": 1280}, batch=1, n_tokens=1, seed=7)
    names = write_ti_files(tokens, embeddings_dir, "sdxl")
    ours = splice.encode_with_tokens(sdxl_clip, prompt, tokens)
    theirs = host_reference(sdxl_clip, ti_prompt, names)
    assert ours[0][0].shape[-1] == 2048 and ours[0][1]["pooled_output"].shape == (1, 1280)
    assert_same_conditioning(ours, theirs)


def test_sd15_checkpoint_clip_matches_textual_inversion(host_assets, embeddings_dir):
    """The full CLIP-L as CheckpointLoaderSimple builds it from an SD1.5 file."""
    from host_assets import CHECKPOINT

    splice = pack_module("splice")
    clip = sd15_clip(host_assets["checkpoints"] / CHECKPOINT, [str(embeddings_dir)])
    tokens = random_tokens({"l": 768}, batch=1, n_tokens=1, seed=11)
    names = write_ti_files(tokens, embeddings_dir, "sd15")
    prompt, ti_prompt = PROMPTS[1]
    assert_same_conditioning(splice.encode_with_tokens(clip, prompt, tokens), host_reference(clip, ti_prompt, names))


def test_sd2_matches_textual_inversion(embeddings_dir):
    splice = pack_module("splice")
    clip = small_sd2_clip([str(embeddings_dir)])
    tokens = random_tokens({"h": 1024, "l": 768}, batch=1, n_tokens=1, seed=12)  # the extra l head is unused
    names = write_ti_files({"h": tokens["h"]}, embeddings_dir, "sd2")
    prompt, ti_prompt = PROMPTS[1]
    ours = splice.encode_with_tokens(clip, prompt, tokens)
    assert ours[0][0].shape[-1] == 1024
    assert_same_conditioning(ours, host_reference(clip, ti_prompt, names))


def test_placeholder_changes_the_conditioning(sd1_clip):
    splice = pack_module("splice")
    a = splice.encode_with_tokens(sd1_clip, "a photo of <audio>", random_tokens({"l": 768}, 1, 1, seed=1))
    b = splice.encode_with_tokens(sd1_clip, "a photo of <audio>", random_tokens({"l": 768}, 1, 1, seed=2))
    assert not torch.allclose(a[0][0], b[0][0])


def test_shared_clip_is_not_modified(sd1_clip):
    splice = pack_module("splice")
    tokenizer, sub = sd1_clip.tokenizer, sd1_clip.tokenizer.clip_l
    directories = list(sub.embedding_directory)
    before = sd1_clip.encode_from_tokens_scheduled(sd1_clip.tokenize("a photo of a dog"))
    splice.encode_with_tokens(sd1_clip, "a photo of <audio>", random_tokens({"l": 768}, 1, 1, seed=3))
    assert sd1_clip.tokenizer is tokenizer and sd1_clip.tokenizer.clip_l is sub
    assert sub.embedding_directory == directories and "_try_get_embedding" not in vars(sub)
    after = sd1_clip.encode_from_tokens_scheduled(sd1_clip.tokenize("a photo of a dog"))
    torch.testing.assert_close(before[0][0], after[0][0], rtol=0, atol=0)


def test_prompt_without_placeholder_says_how_to_fix(sd1_clip):
    splice = pack_module("splice")
    with pytest.raises(ValueError, match="Write <audio> where the sound belongs"):
        splice.encode_with_tokens(sd1_clip, "a photo of a dog", random_tokens({"l": 768}, 1, 1, seed=5))
