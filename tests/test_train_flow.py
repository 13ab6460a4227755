"""The flow-matching families (Flux.1, SD3.5, Qwen-Image, Z-Image, Flux.2 klein, Flux.2 dev) on tiny random configs of the
real diffusers and transformers classes: detection from the folder, a few steps, the loss falling on a fixed batch,
bit-identical resume (also after SIGKILL, for Flux), DDP, drawing with train.generate, and the injected token equal
to the pipeline's own `encode_prompt` with the vector written into the input embeddings at the placeholder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from factories.train_world import (fixed_batch_losses, get_world, sigkill_after_first_checkpoint, tiny_config,
                                   with_flow_families)

from testkit.flow import FAMILIES

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
HEADS = {"flux": {"l": 32, "t5xxl": 96}, "sd3": {"l": 32, "g": 48, "t5xxl": 96}, "qwen_image": {"qwen25_7b": 64},
         "z_image": {"qwen3_4b": 56}, "flux2_klein": {"qwen3_4b": 40},
         "flux2": {"mistral3_24b": 24}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return with_flow_families(get_world(tmp_path_factory.getbasetemp() / "train_world", ()))


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _config(world, out, family, **kw):
    settings = dict(variant=family, max_steps=2, cache_windows=1, checkpoint_every=1, learning_rate=1e-3)
    settings.update(kw)
    return tiny_config(world, out, **settings)


def test_family_is_read_from_the_folder(world, tmp_path):
    import json

    from train.families import family_for
    from train.models import load_base_model

    expected = {"flux": "Flux", "sd3": "SD3", "qwen_image": "QwenImage", "z_image": "ZImage",
                "flux2_klein": "Flux2Klein", "flux2": "Flux2"}
    assert load_base_model(get_world(world["root"], ("sd1",))["sd1"]).kind == "sd1"
    for family in FAMILIES:
        base = load_base_model(world[family])
        assert type(base).__name__ == expected[family] and base.kind == family
        assert base.widths == HEADS[family] and base.prediction_type == "flow"
        assert not any(p.requires_grad for m in base.frozen_modules() for p in m.parameters())
    # a bf16 run loads the big parts in bf16 (host memory), the VAE in fp32 (the cache encodes in it)
    half = load_base_model(world["qwen_image"], dtype=torch.bfloat16)
    assert half.denoiser.dtype == torch.bfloat16 and half.text_encoders[0].dtype == torch.bfloat16
    assert next(half.vae.parameters()).dtype == torch.float32
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ValueError, match="WanPipeline in model_index.json is not a family"):
        family_for(odd)


@pytest.mark.parametrize("family", FAMILIES)
def test_trains_resumes_bit_identically_and_draws(family, world, tmp_path):
    from audiotoken_core.embedder import load_embedder
    from train.generate import AudioImageGenerator
    from train.loop import train

    steps = dict(max_steps=4, checkpoint_every=2)
    # validation images must not disturb the training randomness either
    reference = train(_config(world, tmp_path / "ref", family, validation_every=4, validation_steps=2,
                              validation_count=1, validation_size="32x32", **steps))
    assert (tmp_path / "ref" / "validation" / "step-00000004.png").is_file()
    emb = load_embedder(reference)
    assert emb.widths == HEADS[family]
    assert emb.meta.training["base_model_kind"] == family and emb.meta.training["prediction_type"] == "flow"
    # stop at step 2, then continue to 4 from the checkpoint: the same weights, bit for bit
    train(_config(world, tmp_path / "cut", family, max_steps=2, checkpoint_every=2))
    resumed = train(_config(world, tmp_path / "cut", family, resume=True, **steps))
    a, b = _tensors(reference), _tensors(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    if family == "flux":  # the command line too
        from factories.media import write_wav
        from train.generate import main

        sound = write_wav(tmp_path / "bell.wav", seconds=1.0, rate=16000)
        rc = main(["--audio", str(sound), "--base-model", str(world[family]), "--embedder", str(reference),
                   "--beats", str(world["beats"]), "--out", str(tmp_path / "gen"), "--steps", "2", "--height", "32",
                   "--width", "32", "--device", "cpu", "--guidance", "3.5"])
        assert rc == 0 and (tmp_path / "gen" / "bell_seed0.png").is_file()
    gen = AudioImageGenerator.from_files(world[family], reference, world["beats"])
    rows = gen.images_for_audio(torch.randn(2, 8000), 8000, seeds=[0, 0], steps=2, height=32, width=32)
    assert len(rows) == 1 and [im.size for im in rows[0]] == [(32, 32)] * 2
    assert rows[0][0].tobytes() == rows[0][1].tobytes()  # same token and seed -> same image


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_decreases_on_a_fixed_batch(family, world, tmp_path):
    from audiotoken_core.beats import load_beats
    from train.batches import collate
    from train.cache import CachedDataset
    from train.loop import train
    from train.models import load_base_model
    from train.trainable import build_embedder
    from train.trainer import Trainer

    cfg = _config(world, tmp_path, family, max_steps=1, cache_windows=1, precompute_only=True)
    train(cfg)  # the cache
    base = load_base_model(world[family])
    torch.manual_seed(0)
    embedder = build_embedder(cfg, base, load_beats(world["beats"]).embed_dim, "tiny").train()
    data = CachedDataset(cfg.cache_path)
    batch = collate([data[(i, 0)] for i in range(4)])
    trainer = Trainer(cfg, base, embedder, device="cpu")
    losses = fixed_batch_losses(trainer, embedder, batch, steps=12)
    falls = sum(b < a for a, b in zip(losses, losses[1:]))
    # deterministic steps (same noise, timesteps, dropout): a steady fall is the optimisation, whatever its size
    # (a random tiny transformer reads the text weakly: Qwen-Image's falls by ~1e-4 of the loss)
    assert losses[-1] < losses[0] and falls >= 8, losses


def _standin_hooks(encoders_and_tokens, seen):
    """Forward hooks writing `tokens[k]` over the k-th stand-in position of each encoder's input ids (the
    pipeline's own tokenization), recording the ids the pipeline fed in. Every vocabulary-sized embedding table
    of the encoder is hooked: whichever the forward calls fires."""
    handles = []
    for encoder, standin, tokens in encoders_and_tokens:
        tables = [m for m in encoder.modules() if isinstance(m, torch.nn.Embedding)
                  and m.weight.shape[1] == tokens.shape[-1] and m.weight.shape[0] > standin]
        def hook(module, args, output, standin=standin, tokens=tokens, encoder=encoder):
            ids = args[0]
            seen.setdefault(id(encoder), []).append(ids.clone())
            out = output.clone()
            where = ids == standin
            out[where] = tokens.reshape(-1, tokens.shape[-1]).repeat(ids.shape[0], 1).to(out.dtype)
            return out

        handles += [table.register_forward_hook(hook) for table in tables]
    return handles


def _pipeline_encode(base, prompt):
    pipe = base.pipe
    if base.kind == "flux":
        embeds, pooled, _ = pipe.encode_prompt(prompt=prompt, prompt_2=None, device="cpu")
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
    if base.kind == "sd3":
        embeds, _, pooled, _ = pipe.encode_prompt(prompt=prompt, prompt_2=None, prompt_3=None, device="cpu",
                                                  do_classifier_free_guidance=False)
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
    if base.kind == "qwen_image":
        embeds, mask = pipe.encode_prompt(prompt=prompt, device="cpu")
        return {"prompt_embeds": embeds, "prompt_embeds_mask": mask}
    if base.kind in ("flux2_klein", "flux2"):
        embeds, _ = pipe.encode_prompt(prompt=prompt, device="cpu")
        return {"prompt_embeds": embeds}
    embeds, _ = pipe.encode_prompt(prompt=prompt, device="cpu", do_classifier_free_guidance=False)
    return {"prompt_embeds": embeds}


@pytest.mark.parametrize("family", FAMILIES)
def test_token_sits_where_the_pipeline_puts_the_placeholder(family, world):
    """Our encode with two tokens at `<*>` == the pipeline's encode_prompt of the prompt with the placeholder
    spelled as stand-in words, their rows of the input embeddings overwritten with the same vectors."""
    from train.inject import stand_in_word
    from train.models import load_base_model

    base = load_base_model(world[family])
    prompt = "a photo of <*> in the rain"
    torch.manual_seed(1)
    tokens = {h: torch.randn(1, 2, w) for h, w in base.widths.items()}
    inputs = base.prompt_inputs(prompt, 1, 2)
    with torch.no_grad():
        ours = base.encode(inputs, tokens)
        plain = base.encode(inputs, None)

    standins, marks = [], []
    for tok, enc, head, item in zip(base.tokenizers, base.text_encoders, base.heads,
                                    inputs if len(base.heads) > 1 else [inputs]):
        ids, mark = item[0], item[-1]
        (standin,) = set(ids[mark].tolist())
        assert int(mark.sum()) == 2 and int((ids == standin).sum()) == 2
        standins.append((enc, standin, tokens[head]))
        marks.append((ids, mark))
    word = stand_in_word(base.tokenizers[0])
    assert all(stand_in_word(t) == word for t in base.tokenizers)
    seen = {}
    handles = _standin_hooks(standins, seen)
    try:
        with torch.no_grad():
            theirs = _pipeline_encode(base, prompt.replace("<*>", f"{word} {word}"))
    finally:
        for h in handles:
            h.remove()
    for (enc, standin, _), (ids, mark) in zip(standins, marks):
        fed = seen[id(enc)][0].cpu()
        assert torch.equal(fed, ids) and torch.equal(fed == standin, mark)  # same ids, same place
    for key, value in theirs.items():
        mine = ours[key]
        if value is None:  # Qwen-Image's encode_prompt: an all-valid mask is None
            assert key == "prompt_embeds_mask" and bool(mine.all())
            continue
        if isinstance(value, list):
            assert len(value) == len(mine) and all(torch.equal(a, b) for a, b in zip(value, mine))
        else:
            assert torch.equal(value.to(mine.dtype), mine), key
    for key, value in ours.items():  # the tokens reach every part of the conditioning
        if "mask" not in key:
            a = value[0] if isinstance(value, list) else value
            b = plain[key][0] if isinstance(plain[key], list) else plain[key]
            assert not torch.equal(a, b), key
    if family == "sd3":  # each of the three encoders' own rows: CLIP-L, CLIP-G (77 rows side by side), then T5
        delta = (ours["prompt_embeds"] - plain["prompt_embeds"]).abs().sum(1)[0]
        assert float(delta[:32].sum()) > 0 and float(delta[32:80].sum()) > 0
        assert float((ours["prompt_embeds"] - plain["prompt_embeds"])[0, 77:].abs().sum()) > 0


def test_gradient_reaches_the_tokens_through_checkpointed_transformer(world):
    from train.models import load_base_model

    base = load_base_model(world["flux"])
    base.enable_gradient_checkpointing()
    assert base.denoiser.gradient_checkpointing
    tokens = {h: torch.randn(1, 1, w, requires_grad=True) for h, w in base.widths.items()}
    cond = base.encode(base.prompt_inputs("a photo of <*>", 1, 1), tokens)
    latents = torch.randn(1, 4, 8, 8)
    noisy, t, target, _ = base.noisy_input(latents, torch.Generator().manual_seed(0))
    with torch.enable_grad():
        base.denoiser.train()  # checkpointing runs only in training mode; the weights stay frozen
        loss = torch.nn.functional.mse_loss(base.predict(noisy, t, cond, torch.float32), target)
        loss.backward()
    assert all(float(t.grad.abs().sum()) > 0 for t in tokens.values())
    assert not any(p.grad is not None for p in base.denoiser.parameters())


def test_lora_and_odd_frame_sizes_are_refused(world, tmp_path):
    from train.loop import train

    with pytest.raises(ValueError, match="only the Embedder trains"):
        train(_config(world, tmp_path, "flux", lora=True))
    from train.models import load_base_model

    base = load_base_model(world["qwen_image"])
    # --frame-size is already a multiple of 8; with SD's VAE (/8) 8 x odd gives an odd latent side
    with pytest.raises(ValueError, match="12x10 do not fit qwen_image's 2x2 latent patches"):
        base.latents(torch.zeros(1, 4, 5, 6), torch.ones(1, 4, 5, 6), torch.zeros(1, 4, 5, 6))


def test_flow_objective_matches_the_schedulers_table():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from train.families.flow import loss_weighting, pack_2x2, sample_density, unpack_2x2

    u = sample_density("logit_normal", 10000, torch.Generator().manual_seed(0))
    assert 0 < float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.01
    assert torch.equal(sample_density("none", 4, torch.Generator().manual_seed(3)),
                       torch.rand(4, generator=torch.Generator().manual_seed(3)))
    assert loss_weighting("none", torch.ones(2)) is None
    x = torch.randn(2, 4, 6, 8)
    from diffusers import FluxPipeline

    assert torch.equal(pack_2x2(x), FluxPipeline._pack_latents(x, 2, 4, 6, 8))
    assert torch.equal(unpack_2x2(pack_2x2(x), 6, 8), x)
    shifted = FlowMatchEulerDiscreteScheduler(shift=3.0)
    plain = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    # SD3's static shift pushes training toward noise; Flux's dynamic shift is a sampling-time matter
    assert float(shifted.sigmas[500]) > float(plain.sigmas[500]) + 0.2


def test_sigkill_then_resume_matches_uninterrupted_flux(world, tmp_path):
    from train.loop import train

    steps = dict(max_steps=6, checkpoint_every=2)
    reference = _tensors(train(_config(world, tmp_path / "ref", "flux", **steps)))
    out = tmp_path / "killed"
    killed_at = sigkill_after_first_checkpoint(_config(world, out, "flux", **steps))
    assert 2 <= killed_at < 6
    resumed = _tensors(train(_config(world, out, "flux", resume=True, **steps)))
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_with_gradient_checkpointing(family, world, tmp_path):
    """The GPU recipe (bf16 weights and autocast, checkpointing through the frozen transformer), here on CPU."""
    from audiotoken_core.embedder import load_embedder
    from train.loop import train

    path = train(_config(world, tmp_path, family, mixed_precision="bf16", gradient_checkpointing=True))
    emb = load_embedder(path)
    assert emb.meta.training["mixed_precision"] == "bf16"
    assert all(torch.isfinite(p).all() for p in emb.parameters())


def test_original_recipe_without_cache_through_the_video_vae(world, tmp_path):
    """Per-step VAE encoding (no cache) through Qwen-Image's video VAE, seen as an image VAE."""
    from audiotoken_core.embedder import load_embedder
    from train.loop import train

    path = train(_config(world, tmp_path, "qwen_image", cache=False, cache_dir=None, max_steps=1))
    assert load_embedder(path).meta.training["cache"] is False


def _host_tokenizers():
    trees = sorted((REPO.parent / "shared" / "hosts").glob("comfyui-*/comfy"))
    return trees[-1] if trees else None


@pytest.mark.skipif(_host_tokenizers() is None,
                    reason="needs a ComfyUI tree in ../shared/hosts for real tokenizer files")
def test_placeholder_on_the_real_tokenizers():
    """CLIP-L, T5-XXL and Qwen2.5 as shipped (ComfyUI's copies of their files): the stand-ins are one token each,
    marked exactly, a real word equal to the stand-in stays text, and Qwen-Image's 34 dropped template tokens are
    exactly its system prefix."""
    from transformers import CLIPTokenizer, Qwen2TokenizerFast, T5TokenizerFast

    from train.inject import stand_in_word, tokenize_marked

    comfy = _host_tokenizers()
    toks = {"clip": CLIPTokenizer.from_pretrained(comfy / "sd1_tokenizer"),
            "t5": T5TokenizerFast.from_pretrained(comfy / "text_encoders" / "t5_tokenizer"),
            "qwen": Qwen2TokenizerFast.from_pretrained(comfy / "text_encoders" / "qwen25_tokenizer")}
    for name, tok in toks.items():
        assert stand_in_word(tok) == "dog", name
        ids, _, marks = tokenize_marked(tok, "a dog photo of <*>, and <*> in the rain", 2)
        words = tok.convert_ids_to_tokens(ids[0].tolist())
        dog = [i for i, w in enumerate(words) if w.strip("▁Ġ").replace("</w>", "") == "dog"]
        assert len(dog) == 5 and marks[0].nonzero().flatten().tolist() == dog[1:], (name, words)
    qwen = toks["qwen"]
    template, drop = _qwen_image_template()
    ids, _, marks = tokenize_marked(qwen, template.format("a photo of <*>"), 1)
    assert qwen.decode(ids[0, :drop]).endswith("<|im_start|>user\n")
    assert qwen.decode(ids[0, drop:]).startswith("a photo")
    assert int(marks[0, :drop].sum()) == 0 and int(marks.sum()) == 1


def _qwen_image_template():
    """The pipeline sets its template and drop index in __init__: read them from a tiny one."""
    from testkit.flow import tiny_flow_pipeline

    pipe = tiny_flow_pipeline("qwen_image")
    return pipe.prompt_template_encode, pipe.prompt_template_encode_start_idx


def test_ddp_two_processes_flux(world, tmp_path):
    """accelerate DDP (two CPU processes over gloo, launched by torchrun): precompute sharded, gradients exchanged,
    one Embedder written."""
    import socket

    from audiotoken_core.embedder import load_embedder

    cfg = _config(world, tmp_path / "out", "flux", batch_size=1, cache_dir=str(tmp_path / "cache"))
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                          "127.0.0.1", "--master_port", str(port), "-m", "train",
                          "--config", str(tmp_path / "cfg.json")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    log = run.stdout + run.stderr
    assert "x2" in log and "precompute[0]" in log and "precompute[1]" in log
    emb = load_embedder(tmp_path / "out" / "audiotoken-embedder.safetensors")
    assert emb.meta.training["world_size"] == 2 and emb.widths == HEADS["flux"]
    assert all(torch.isfinite(p).all() for p in emb.parameters())


def test_tokens_per_head(world, tmp_path):
    """--head-tokens: Flux.1 with one CLIP-L token and three T5 tokens at the same placeholder."""
    from audiotoken_core.embedder import load_embedder
    from train.generate import AudioImageGenerator
    from train.loop import train
    from train.models import load_base_model

    path = train(_config(world, tmp_path, "flux", max_steps=1, head_tokens=["t5xxl=3"]))
    emb = load_embedder(path)
    assert emb.n_tokens == {"l": 1, "t5xxl": 3} and emb.meta.n_tokens == {"l": 1, "t5xxl": 3}
    (_, clip_marks), (_, t5_marks) = load_base_model(world["flux"]).prompt_inputs("a <*> photo", 1, emb.n_tokens)
    assert int(clip_marks.sum()) == 1 and int(t5_marks.sum()) == 3
    gen = AudioImageGenerator.from_files(world["flux"], path, world["beats"])
    assert gen.images_for_audio(torch.randn(1, 8000), 8000, steps=1, height=32, width=32)[0][0].size == (32, 32)
    with pytest.raises(ValueError, match="HEAD=COUNT"):
        _config(world, tmp_path, "flux", head_tokens=["t5xxl"]).validate()
    with pytest.raises(ValueError, match="names head 'g'"):
        train(_config(world, tmp_path / "g", "flux", head_tokens=["g=2"]))
