"""Trainer building blocks: placeholder injection, losses, LoRA key format, CLI flags, checkpoints, batches."""

import json

import pytest
import torch

from factories.train_world import get_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return get_world(tmp_path_factory.getbasetemp() / "train_world", ("sd1", "sdxl"))


@pytest.fixture(scope="module")
def sd1(world):
    from train.models import load_base_model

    return load_base_model(world["sd1"])


def test_tokenize_marks_placeholder_positions(sd1):
    from train.inject import tokenize_with_placeholder

    tok = sd1.tokenizers[0]
    ids, marks = tokenize_with_placeholder(tok, "a photo of <*>", 1)
    plain = tok("a photo of dog", padding="max_length", max_length=tok.model_max_length).input_ids
    assert ids.shape == (77,) and int(marks.sum()) == 1
    pos = int(marks.nonzero()[0])
    assert ids[:pos].tolist() == plain[:pos] and ids[pos + 1] == tok.eos_token_id
    ids3, marks3 = tokenize_with_placeholder(tok, "a <audio> and <*> photo", 2)
    assert int(marks3.sum()) == 4
    ids0, marks0 = tokenize_with_placeholder(tok, "", 1)
    assert not marks0.any() and ids0[0] == tok.bos_token_id and ids0[1] == tok.eos_token_id


def test_token_reaches_clip_output_with_gradient(sd1):
    ids = sd1.prompt_inputs("a photo of <*>", 2, 1)
    token = torch.randn(2, 1, 32, requires_grad=True)
    hidden, pooled = sd1.encode(ids, {"l": token})
    assert hidden.shape == (2, 77, 32) and pooled is None
    hidden.square().mean().backward()
    assert token.grad is not None and float(token.grad.abs().sum()) > 0
    other, _ = sd1.encode(ids, {"l": token.detach() + 1.0})
    assert not torch.allclose(hidden.detach(), other)
    # the hook is gone afterwards: plain text encodes as it did before
    a, _ = sd1.encode(sd1.prompt_inputs("a photo of dog", 1, 1), None)
    b = sd1.text_encoders[0](sd1.prompt_inputs("a photo of dog", 1, 1)[0][0]).last_hidden_state
    assert torch.allclose(a, b)


def test_sdxl_two_heads_and_pooled(world):
    from train.models import load_base_model

    xl = load_base_model(world["sdxl"])
    assert xl.kind == "sdxl" and xl.heads == ["l", "g"] and xl.widths == {"l": 32, "g": 48}
    g = torch.randn(1, 1, 48, requires_grad=True)
    hidden, pooled = xl.encode(xl.prompt_inputs("a photo of <*>", 1, 1), {"l": torch.randn(1, 1, 32), "g": g})
    assert hidden.shape == (1, 77, 80) and pooled.shape == (1, 16)
    pooled.sum().backward()  # pooled comes from the EOS position, which attends to the token
    assert float(g.grad.abs().sum()) > 0


def test_losses():
    from diffusers import DDPMScheduler

    from train.losses import LossWeights, class_loss, diffusion_target, total_loss

    lat, noise, t = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.tensor([1, 500])
    assert torch.equal(diffusion_target(DDPMScheduler(prediction_type="epsilon"), lat, noise, t), noise)
    v = diffusion_target(DDPMScheduler(prediction_type="v_prediction"), lat, noise, t)
    assert v.shape == lat.shape and not torch.allclose(v, noise)
    tok = {"l": torch.ones(2, 1, 4)}
    loss, parts = total_loss(noise, noise, tok, LossWeights(l1=0.01))
    assert parts["mse"] == 0 and abs(float(loss) - 0.01) < 1e-7
    label = torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]])
    assert float(class_loss(tok["l"], label, torch.tensor([True, False]))) < 1e-10  # same direction
    opposite = class_loss(tok["l"], -label, torch.tensor([True, False]))
    assert abs(float(opposite) - 4.0) < 1e-5  # (1 - (-1))^2
    assert float(class_loss(tok["l"], label, torch.tensor([False, False]))) == 0.0
    _, parts = total_loss(noise, noise, tok, LossWeights(use_class=True), {"l": (-label, torch.tensor([True, False]))})
    assert abs(parts["class"] - 4.0) < 1e-5 and abs(parts["loss"] - (0.01 + 0.04)) < 1e-5


def test_lora_keys_are_what_comfyui_maps(sd1):
    """ComfyUI maps `lora_unet_` + diffusers UNet weight key (dots -> underscores, no `.weight`)."""
    import copy

    from train.lora import add_lora, load_lora, lora_state

    unet = copy.deepcopy(sd1.unet)
    comfy_names = {"lora_unet_" + k[: -len(".weight")].replace(".", "_"): v.shape
                   for k, v in sd1.unet.state_dict().items() if k.endswith(".weight")}
    params = add_lora(unet, rank=4)
    assert params and all(p.requires_grad for p in params)
    for p in params:  # non-zero up weights so the round trip below is meaningful
        torch.nn.init.normal_(p, std=0.1)
    state = lora_state(unet)
    modules = {k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0] for k in state}
    n_attn = sum(1 for k in sd1.unet.state_dict() if k.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight")))
    assert len(modules) == n_attn
    for name in modules:
        assert name in comfy_names, name
        up, down = state[f"{name}.lora_up.weight"], state[f"{name}.lora_down.weight"]
        assert (up @ down).shape == comfy_names[name] and down.shape[0] == 4
        assert float(state[f"{name}.alpha"]) == 4.0
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_out_0" in modules
    fresh = copy.deepcopy(sd1.unet)
    assert load_lora(fresh, state) == len(modules)
    again = lora_state(fresh)
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_cli_boolean_flags_and_config_file(tmp_path):
    from train.cli import config_from_args

    base = ["--data", "d", "--base-model", "m", "--beats", "b.pt"]
    cfg = config_from_args(base)
    assert cfg.scale_lr is True and cfg.lora is False and cfg.class_loss is False and cfg.layers == (4, 8, 12)
    assert (cfg.learning_rate, cfg.batch_size, cfg.grad_accum, cfg.adam_weight_decay, cfg.lr_scheduler) == (
        1e-5, 4, 4, 1e-2, "constant")
    cfg = config_from_args(base + ["--no-scale-lr", "--lora", "--class-loss", "--layers", "3,12", "--split", "all"])
    assert cfg.scale_lr is False and cfg.lora is True and cfg.class_loss is True and cfg.layers == (3, 12)
    assert cfg.split is None
    (tmp_path / "c.json").write_text(json.dumps({"data": "x", "base_model": "y", "beats": "z", "batch_size": 8}))
    cfg = config_from_args(["--config", str(tmp_path / "c.json"), "--batch-size", "2"])
    assert (cfg.data, cfg.batch_size) == ("x", 2)
    with pytest.raises(SystemExit):
        config_from_args(base + ["--lora", "False"])  # the original's type=bool trap is gone


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    from train.checkpoint import checkpoint_dirs, latest_checkpoint, load_checkpoint, save_checkpoint

    (tmp_path / ".tmp-step-00000009-123").mkdir(parents=True)  # debris of a killed save
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, {"state": {}, "param_groups": []},
                        {"lr_scheduler": {"x": step}}, {"note": "t"}, keep=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-00000003", "step-00000004"]
    assert not list(tmp_path.glob(".tmp-*"))
    (tmp_path / "step-00000005").mkdir()  # no state.json: not a finished checkpoint
    latest = latest_checkpoint(tmp_path)
    trainable, _, sched, state = load_checkpoint(latest)
    assert latest.name == "step-00000004" and float(trainable["w"][0]) == 4.0 and state["step"] == 4
    assert sched["lr_scheduler"]["x"] == 4


def test_batches_depend_only_on_step():
    from train.batches import StepBatches

    full = StepBatches(10, 3, seed=1, stop=12)
    resumed = StepBatches(10, 3, seed=1, start=7, stop=12)
    assert list(full)[7:] == list(resumed)
    epoch0 = [i for b in list(full)[:3] for _, i in b]
    assert len(set(epoch0)) == 9  # a permutation: no repeats within an epoch
    ranks = [StepBatches(10, 2, seed=1, rank=r, world=2, stop=2).batch_at(0) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    with pytest.raises(ValueError, match="fewer than one global batch"):
        StepBatches(3, 2, seed=0, world=2, stop=1)


def test_norm_regularizer_pulls_toward_a_word_scale():
    from train.losses import LossWeights, token_regularizer

    w = LossWeights(l1=0.0, norm=0.5)
    at_scale = {"l": torch.full((2, 1, 4), 0.5)}  # norm 1.0
    assert float(token_regularizer(at_scale, w, {"l": 1.0})) < 1e-10
    assert abs(float(token_regularizer({"l": torch.ones(2, 1, 4)}, w, {"l": 1.0})) - 0.5) < 1e-6  # (2 - 1)^2 * 0.5


def test_batch_contract_and_old_dicts():
    from train.batches import Batch, CachedInputs, Item, RawInputs, as_batch, collate

    items = [Item("a", "dog", CachedInputs(torch.zeros(3, 2), torch.zeros(4, 2, 2), torch.ones(4, 2, 2))), None,
             Item("b", None, CachedInputs(torch.ones(3, 2), torch.zeros(4, 2, 2), torch.ones(4, 2, 2)))]
    batch = collate(items)
    assert batch.ids == ["a", "b"] and batch.labels == ["dog", None] and batch.skipped == 1
    assert isinstance(batch.inputs, CachedInputs) and batch.inputs.features.shape == (2, 3, 2)
    assert collate([None]).inputs is None and len(collate([None])) == 0
    old = as_batch({"wave": torch.zeros(2, 8), "pixels": torch.zeros(2, 3, 8, 8)})
    assert isinstance(old.inputs, RawInputs) and len(old) == 2 and old.labels == [None, None]
    assert as_batch(batch) is batch


def test_optimizer_recipe_is_the_trainers():
    from train.config import TrainConfig
    from train.optim import build_optimization, effective_lr

    cfg = TrainConfig(learning_rate=1e-5, batch_size=4, grad_accum=4, max_steps=10, lr_scheduler="cosine")
    assert abs(effective_lr(cfg, world=2) - 3.2e-4) < 1e-12
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    opt = build_optimization(cfg, [a.parameters(), [], b.parameters()])
    assert len(opt.optimizer.param_groups) == 2 and len(opt.params) == 4 and opt.lr == 1.6e-4
    assert opt.optimizer.defaults["weight_decay"] == 1e-2


def test_embedder_fits_text_encoders():
    from audiotoken_core.prompt import check_fits, fits

    assert fits({"l": 768}, "l", 768) and not fits({"l": 768}, "g", 1280) and not fits({"l": 768}, "l", 1024)
    check_fits({"l": 768, "g": 1280}, {"l": 768})
    with pytest.raises(ValueError, match="no token for text encoder g"):
        check_fits({"l": 768}, {"l": 768, "g": 1280})
    with pytest.raises(ValueError, match="its l token is 768 wide, the text encoder 1024"):
        check_fits({"l": 768}, {"l": 1024})
