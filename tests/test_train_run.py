"""End-to-end training with tiny random models: outputs, reproducibility, SIGKILL + resume, NaN guard,
the uncached original recipe, SD2/SDXL variants, precompute sharding, and image generation."""

from pathlib import Path

import pytest
import torch

from factories.train_world import fixed_batch_losses, get_world, sigkill_after_first_checkpoint, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return get_world(tmp_path_factory.getbasetemp() / "train_world", ("sd1",))


@pytest.fixture(scope="module")
def first_run(world, tmp_path_factory):
    from train.loop import train

    out = tmp_path_factory.mktemp("run1")
    cfg = tiny_config(world, out, class_loss=True, validation_every=2, validation_steps=2, validation_count=1,
                      tensorboard=True)
    return cfg, train(cfg)


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_output_loads_in_node_loader(first_run, world):
    from audiotoken_core.embedder import load_embedder
    from audiotoken_core.pipeline import AudioTokenizer
    from audiotoken_core.beats import load_beats

    cfg, path = first_run
    emb = load_embedder(path)
    assert emb.head_names == ["l"] and emb.widths == {"l": 32} and emb.meta.layers == (4, 8, 12)
    assert emb.meta.training["steps"] == 4 and emb.meta.training["batch_size"] == 2
    assert emb.meta.training["class_loss"] is True and emb.meta.training["prediction_type"] == "epsilon"
    tokens = AudioTokenizer(load_beats(world["beats"]), emb).encode(torch.randn(1, 16000), 16000).tokens
    assert tokens["l"].shape == (1, 1, 32) and torch.isfinite(tokens["l"]).all()
    out = Path(cfg.output_dir)
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-00000002", "step-00000004"]
    assert (out / "validation" / "step-00000004.png").is_file()
    assert list((out / "tensorboard").glob("events.*"))
    import json

    index = json.loads((Path(cfg.cache_dir) / "index.json").read_text())
    assert index["skipped"] == ["broken"] and len(index["clips"]) == 6  # corrupt file counted, not fatal
    assert all(len(c["windows"]) == 2 for c in index["clips"])


def test_seeded_runs_are_equal(first_run, world, tmp_path):
    from train.loop import train

    cfg, path = first_run
    # same seed and data, validation off: validation must not disturb the training randomness either
    again = train(tiny_config(world, tmp_path, class_loss=True))
    a, b = _tensors(path), _tensors(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = train(tiny_config(world, tmp_path / "s1", class_loss=True, seed=1, max_steps=1, cache_dir=None))
    assert not torch.equal(_tensors(other)["l.fc2.weight"], a["l.fc2.weight"])


def test_sigkill_then_resume_matches_uninterrupted(world, tmp_path):
    from train.loop import train

    steps = dict(max_steps=8, checkpoint_every=2)
    reference = _tensors(train(tiny_config(world, tmp_path / "ref", **steps)))

    out = tmp_path / "killed"
    killed_at = sigkill_after_first_checkpoint(tiny_config(world, out, **steps))
    assert not (out / "audiotoken-embedder.safetensors").exists()
    assert 2 <= killed_at < 8

    resumed = _tensors(train(tiny_config(world, out, resume=True, **steps)))
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_nonfinite_loss_stops_with_message(world, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from train.losses import NonFiniteLossError
    from train.loop import train

    src = tiny_config(world, tmp_path).cache_path
    train(tiny_config(world, tmp_path / "warm", max_steps=1, precompute_only=True))  # make sure the cache exists
    bad = tmp_path / "nan_cache"
    shutil.copytree(src, bad)
    for shard in (bad / "shards").glob("*.safetensors"):
        t = load_file(str(shard))
        save_file({k: (v * float("nan")) if k.endswith(".features") else v for k, v in t.items()}, str(shard))
    with pytest.raises(NonFiniteLossError, match="NaN/Inf in 2 consecutive steps"):
        train(tiny_config(world, tmp_path / "out", cache_dir=str(bad), max_nonfinite_steps=2))


def test_original_recipe_without_cache_skips_corrupt_clips(world, tmp_path, caplog):
    from audiotoken_core.embedder import load_embedder
    from train.loop import train

    # 7 clips (one broken), batch 2: the broken one lands in some micro-batch and is skipped there
    path = train(tiny_config(world, tmp_path, cache=False, max_steps=3, checkpoint_every=3, batch_size=2))
    assert load_embedder(path).meta.training["cache"] is False
    assert "skipping clip broken" in caplog.text


def test_loss_decreases_on_a_fixed_batch(world, first_run):
    from audiotoken_core.beats import load_beats

    from train.cache import CachedDataset
    from train.batches import collate
    from train.trainable import build_embedder
    from train.trainer import Trainer
    from train.models import load_base_model

    cfg, _ = first_run
    base = load_base_model(world["sd1"])
    beats = load_beats(world["beats"])
    torch.manual_seed(0)
    embedder = build_embedder(cfg, base, beats.embed_dim, "tiny").train()
    data = CachedDataset(cfg.cache_dir)
    batch = collate([data[(0, i)] for i in range(4)])
    trainer = Trainer(cfg, base, embedder, device="cpu")
    losses = fixed_batch_losses(trainer, embedder, batch, steps=15)
    # a random tiny UNet leaves the token little room, but the diffusion loss must go down steadily
    falls = sum(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] - 2e-3 and falls >= 9, losses


def test_precompute_shards_by_process_and_resumes(world, tmp_path):
    from audiotoken_core.beats import load_beats
    from audiotoken_core.pipeline import AudioTokenizer

    from train.cache import CachedDataset, merge_index, precompute, prepare_cache_dir
    from train.data import open_dataset
    from train.trainable import build_embedder
    from train.models import load_base_model

    cfg = tiny_config(world, tmp_path)
    base = load_base_model(world["sd1"])
    beats = load_beats(world["beats"])
    features = AudioTokenizer(beats, build_embedder(cfg, base, beats.embed_dim, "tiny")).features
    ds = open_dataset(cfg.data)
    kw = dict(fingerprint={"t": 1}, window_s=1.0, size=(32, 24), policy="squash", windows_per_clip=1, seed=0,
              batch_size=3, shard_windows=2, progress=False)
    assert prepare_cache_dir(tmp_path / "c", {"t": 1}) is False
    c0 = precompute(ds, tmp_path / "c", features, base.vae, rank=0, world=2, **kw)
    assert prepare_cache_dir(tmp_path / "c", {"t": 1}) is False  # same settings: partial work is kept
    assert precompute(ds, tmp_path / "c", features, base.vae, rank=0, world=2, **kw) == {"windows": 0, "skipped": 0}
    c1 = precompute(ds, tmp_path / "c", features, base.vae, rank=1, world=2, **kw)
    assert c0["windows"] + c1["windows"] == 6 and c0["skipped"] + c1["skipped"] == 1
    index = merge_index(tmp_path / "c", {"t": 1}, len(ds))
    assert [c["id"] for c in index["clips"]] == [c.id for c in ds if c.id != "broken"]
    item = CachedDataset(tmp_path / "c")[(0, 0)]
    assert item.inputs.features.dtype == torch.float16 and item.inputs.mean.shape == (4, 12, 16)
    assert prepare_cache_dir(tmp_path / "c", {"t": 2}) is True  # other settings: old work is dropped
    assert not (tmp_path / "c" / "index.json").exists() and not list((tmp_path / "c").rglob("*.safetensors"))


@pytest.mark.parametrize("variant", ["sd2", "sdxl"])
def test_other_families_train_and_generate(variant, world, tmp_path):
    from audiotoken_core.embedder import load_embedder
    from train.generate import AudioImageGenerator
    from train.loop import train

    w = get_world(world["root"], (variant,))
    path = train(tiny_config(w, tmp_path, variant=variant, max_steps=1, cache_windows=1, checkpoint_every=1))
    emb = load_embedder(path)
    if variant == "sd2":
        assert emb.widths == {"h": 48} and emb.meta.training["prediction_type"] == "v_prediction"
    else:
        assert emb.widths == {"l": 32, "g": 48}
    gen = AudioImageGenerator.from_files(w[variant], path, w["beats"])
    images = gen.images_for_audio(torch.randn(2, 8000), 8000, seeds=[0], steps=2, height=32, width=32)
    assert len(images) == 1 and images[0][0].size == (32, 32)


def test_generate_api_and_cli(first_run, world, tmp_path, capsys):
    from factories.media import write_wav
    from train.generate import AudioImageGenerator, main

    _, path = first_run
    gen = AudioImageGenerator.from_files(world["sd1"], path, world["beats"])
    tokens = gen.tokens_for_audio(torch.randn(16000), 16000)
    rows = gen.images_for_tokens({"l": tokens["l"].repeat(2, 1, 1)}, seeds=[1, 2], steps=2, height=32, width=40)
    assert len(rows) == 2 and all(len(r) == 2 and r[0].size == (40, 32) for r in rows)
    assert rows[0][0].tobytes() == rows[1][0].tobytes()  # same token and seed -> same image
    assert gen.images_for_text("a photo of dog", seeds=[0], steps=2, height=32, width=32)[0].size == (32, 32)
    with pytest.raises(ValueError, match="placeholder"):
        gen.images_for_tokens(tokens, prompt="a photo", steps=1)

    rc = main(["--audio", str(tmp_path / "none.wav"), "--base-model", str(tmp_path / "sd"), "--embedder",
               str(tmp_path / "e.safetensors"), "--beats", str(tmp_path / "BEATs.pt")])
    err = capsys.readouterr().err
    assert rc == 2
    for name in ("BEATs.pt", "e.safetensors", "model_index.json", "none.wav"):
        assert name in err
    assert "huggingface-cli download" in err and "BEATs_iter3_plus_AS2M" in err

    sound = write_wav(tmp_path / "bell.wav", seconds=1.0, rate=44100, channels=2)
    rc = main(["--audio", str(sound), "--base-model", str(world["sd1"]), "--embedder", str(path), "--beats",
               str(world["beats"]), "--out", str(tmp_path / "gen"), "--steps", "2", "--height", "32", "--width", "32",
               "--device", "cpu", "--dtype", "fp32"])
    assert rc == 0 and (tmp_path / "gen" / "bell_seed0.png").is_file()
