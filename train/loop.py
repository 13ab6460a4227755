"""The training run: `train(config) -> path of the saved Embedder`.

Only the Embedder (and an optional UNet LoRA) trains. With the cache on (default), BEATs and the VAE run
once in a precompute pass and a step costs Embedder + text encoder(s) + UNet; with `cache=False` every
step decodes, runs BEATs and the VAE, as the original code does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch

from .batches import RawViews, StepBatches, collate
from .config import TrainConfig
from .inject import PromptEncoder, label_token_embeddings
from .losses import LossWeights, NonFiniteLossError, diffusion_target, total_loss

log = logging.getLogger("train")

EMBEDDER_FILE = "audiotoken-embedder.safetensors"
LORA_FILE = "audiotoken-lora.safetensors"


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"  # CPU autocast is slower than fp32 for these models


def _dtype(mixed: str) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed, torch.float32)


def step_seed(seed: int, micro_step: int, rank: int) -> int:
    return (int(seed) * 1_000_003 + int(micro_step) * 7919 + int(rank) * 104_729) % (2**63 - 1)


class Trainer:
    """Holds the models and computes the loss of one micro-batch; shared by `train` and the benchmark."""

    def __init__(self, config: TrainConfig, base, embedder, *, device, weight_dtype=torch.float32,
                 autocast=None, beats_tokenizer=None, rank: int = 0):
        self.config, self.base, self.embedder = config, base, embedder
        self.device, self.weight_dtype, self.rank = torch.device(device), weight_dtype, rank
        self.autocast = autocast or nullcontext
        self.beats_tokenizer = beats_tokenizer  # AudioTokenizer, needed only without the cache
        self.prompts = PromptEncoder(base)
        self.ids = None
        self.weights = LossWeights(config.lambda_l1, config.lambda_l2, config.lambda_class, config.class_loss)
        self._label_cache: dict[tuple[str, str], tuple[torch.Tensor, bool]] = {}

    def _prompt_ids(self, batch: int):
        if self.ids is None or self.ids[0][0].shape[0] != batch:
            self.ids = self.prompts.ids(self.config.prompt, batch, self.config.n_tokens, self.device)
        return self.ids

    def _class_targets(self, labels: list[str | None]):
        if not self.weights.use_class:
            return None
        out = {}
        for tok, enc, head in zip(self.base.tokenizers, self.base.text_encoders, self.base.heads):
            rows, has = [], []
            for label in labels:
                key = (head, label or "")
                if key not in self._label_cache:
                    emb, ok = label_token_embeddings(tok, enc, [label])
                    self._label_cache[key] = (emb[0], bool(ok[0]))
                rows.append(self._label_cache[key][0])
                has.append(self._label_cache[key][1])
            out[head] = (torch.stack(rows), torch.tensor(has, device=rows[0].device))
        return out

    @torch.no_grad()
    def frozen_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(features, latent mean, latent std)`: from the cache, or computed now (original recipe)."""
        if "features" in batch:
            return (batch["features"].to(self.device, non_blocking=True),
                    batch["mean"].to(self.device, non_blocking=True),
                    batch["std"].to(self.device, non_blocking=True))
        feats = self.beats_tokenizer.features(batch["wave"].to(self.device))
        vae = self.base.vae
        dist = vae.encode(batch["pixels"].to(self.device, next(vae.parameters()).dtype)).latent_dist
        return feats, dist.mean.float(), dist.std.float()

    def loss(self, batch: dict, micro_step: int) -> tuple[torch.Tensor, dict]:
        seed = step_seed(self.config.seed, micro_step, self.rank)
        torch.manual_seed(seed)  # the Embedder's training dropout draws from the global generator
        gen = torch.Generator().manual_seed(seed)
        feats, mean, std = self.frozen_inputs(batch)
        bsz = feats.shape[0]
        sched = self.base.noise_scheduler
        # every random draw comes from the step's own CPU generator: identical on any device and on resume
        eps_latent = torch.randn(mean.shape, generator=gen).to(self.device)
        noise = torch.randn(mean.shape, generator=gen).to(self.device)
        timesteps = torch.randint(0, sched.config.num_train_timesteps, (bsz,), generator=gen).to(self.device)
        latents = (mean.float() + std.float() * eps_latent) * self.base.latent_scale
        noisy = sched.add_noise(latents, noise, timesteps)
        with self.autocast():
            tokens = _forward_dict(self.embedder, feats.float())
            hidden, pooled = self.prompts.encode(self._prompt_ids(bsz), tokens)
            kwargs = {}
            if self.base.is_sdxl:
                h, w = latents.shape[-2] * self.base.vae_downsample, latents.shape[-1] * self.base.vae_downsample
                time_ids = torch.tensor([[h, w, 0, 0, h, w]], device=self.device, dtype=hidden.dtype).repeat(bsz, 1)
                kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
            pred = self.base.unet(noisy.to(self.weight_dtype), timesteps, hidden.to(self.weight_dtype), **kwargs).sample
        target = diffusion_target(sched, latents, noise, timesteps)
        return total_loss(pred, target, tokens, self.weights, self._class_targets(batch.get("label") or [None] * bsz))


def _forward_dict(embedder, feats):
    module = embedder.module if hasattr(embedder, "module") else embedder
    if module is embedder:
        return embedder.forward_dict(feats)
    out = embedder(feats)  # through DDP's forward, so gradients are synchronised
    return out if isinstance(out, dict) else {module.head_names[0]: out}


def cache_fingerprint(config: TrainConfig, dataset, vae, beats_path: str) -> dict:
    beats = Path(beats_path)
    stat = beats.stat()
    return {
        "data": str(Path(config.data).resolve()),
        "split": config.split,
        "exclude": sorted(str(Path(p).resolve()) for p in config.exclude),
        "clips": len(dataset),
        "first_ids": [c.id for c in dataset.clips[:3]],
        "layers": list(config.layers),
        "window_seconds": config.window_seconds,
        "frame_size": config.frame_size,
        "resize": config.resize,
        "cache_windows": config.cache_windows,
        "cache_dtype": config.cache_dtype,
        "seed": config.seed,
        "beats": [str(beats.resolve()), stat.st_size, int(stat.st_mtime)],
        "vae": json.loads(json.dumps(dict(vae.config), default=str)),
    }


def _trainable_state(embedder, unet, lora: bool) -> dict[str, torch.Tensor]:
    from audiotoken_core.embedder import embedder_tensors

    state = {f"embedder.{k}": v for k, v in embedder_tensors(embedder).items()}
    if lora:
        from .lora import lora_state

        state.update({f"lora.{k}": v for k, v in lora_state(unet).items()})
    return state


def _load_trainable(state: dict[str, torch.Tensor], embedder, unet, lora: bool) -> None:
    from audiotoken_core.embedder import embedder_tensors

    names = embedder_tensors(embedder)
    emb = {k[len("embedder."):]: v for k, v in state.items() if k.startswith("embedder.")}
    if set(emb) != set(names):
        raise ValueError("checkpoint Embedder does not match this run's Embedder (different heads or sizes)")
    with torch.no_grad():
        embedder.heads.load_state_dict(emb, strict=True)
    if lora:
        from .lora import load_lora

        load_lora(unet, {k[len("lora."):]: v for k, v in state.items() if k.startswith("lora.")})


def build_embedder(config: TrainConfig, base, encoder_width: int, audio_encoder: str):
    from audiotoken_core.embedder import AudioEmbedder, EmbedderMeta, load_embedder

    meta = EmbedderMeta(
        audio_encoder=audio_encoder,
        layers=config.layers,
        encoder_width=encoder_width,
        widths=base.widths,
        n_tokens=config.n_tokens,
        window_seconds=config.infer_window_seconds,
    )
    in_dim = encoder_width * len(config.layers)
    embedder = AudioEmbedder(in_dim, base.widths, config.n_tokens, config.embedder_hidden_dim, meta=meta,
                             faithful_dropout=config.faithful_dropout)
    if config.init_embedder:
        init = load_embedder(config.init_embedder)
        missing = set(embedder.head_names) - set(init.head_names)
        if missing or init.in_dim != in_dim:
            raise ValueError(f"--init-embedder {config.init_embedder} does not fit this base model/encoder")
        for name in embedder.head_names:
            embedder.heads[name].load_state_dict(init.heads[name].state_dict())
    return embedder


def _validation_sounds(config: TrainConfig, dataset) -> list[tuple[str, torch.Tensor, int]]:
    from .data.decode import decode_audio

    sounds = []
    if config.validation_audio:
        for path in config.validation_audio:
            samples, rate = decode_audio(path)
            sounds.append((Path(path).stem, torch.from_numpy(samples), rate))
        return sounds
    for clip in dataset.clips:
        if len(sounds) >= config.validation_count:
            break
        try:
            wave, rate = clip.load_audio()
        except ValueError:
            continue
        sounds.append((clip.id, wave, rate))
    return sounds


def _save_grid(rows: list[list], path: Path) -> "object":
    from PIL import Image

    cols = max(len(r) for r in rows)
    w, h = rows[0][0].size
    grid = Image.new("RGB", (cols * w, len(rows) * h))
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid.paste(img, (j * w, i * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    grid.save(tmp)
    os.replace(tmp, path)
    return grid


def train(config: TrainConfig) -> Path:
    """Run (or resume) a training run; returns the path of the final Embedder file."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from audiotoken_core.beats import load_beats
    from audiotoken_core.embedder import save_embedder
    from audiotoken_core.pipeline import AudioTokenizer

    from . import cache as cache_mod
    from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
    from .data import open_dataset, read_id_list
    from .data.frames import parse_size
    from .models import MissingModelError, load_base_model

    config.validate()
    if not Path(config.beats).is_file():
        raise MissingModelError(
            f"BEATs checkpoint {config.beats} not found: download BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt "
            "(see docs/training.md for working mirrors) and pass its path with --beats"
        )
    out = config.output_path
    out.mkdir(parents=True, exist_ok=True)
    from accelerate.state import AcceleratorState, PartialState

    # AcceleratorState is a process-wide singleton; a second run in the same process (scripts, tests)
    # may ask for another precision, so forget the previous run's choice (the process group stays)
    AcceleratorState._reset_state(reset_partial_state=False)
    mixed = resolve_mixed_precision(config.mixed_precision, PartialState(cpu=not torch.cuda.is_available()).device)
    accelerator = Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available())
    device, rank, world, main = accelerator.device, accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    weight_dtype = _dtype(mixed)
    if main:
        (out / "config.json").write_text(config.to_json())
        log.info("device %s x%d, mixed precision %s", device, world, mixed)

    exclude: set[str] = set()
    for path in config.exclude:
        exclude |= read_id_list(path)
    dataset = open_dataset(config.data, config.split, exclude)
    if main:
        log.info("%r", dataset)
    size = parse_size(config.frame_size)

    base = load_base_model(config.base_model, config.base_config)
    beats = load_beats(config.beats)
    torch.manual_seed(config.seed)  # initial Embedder weights are part of a reproducible run
    embedder = build_embedder(config, base, beats.embed_dim, Path(config.beats).stem)
    tokenizer = AudioTokenizer(beats, embedder)

    # ---- frozen work: precompute once (cached) or every step (original recipe)
    if config.cache:
        fingerprint = cache_fingerprint(config, dataset, base.vae, config.beats)
        cache_dir = config.cache_path
        if not cache_mod.cache_is_valid(cache_dir, fingerprint):
            accelerator.wait_for_everyone()  # every process has seen the old state before it changes
            if main and cache_mod.prepare_cache_dir(cache_dir, fingerprint):
                log.warning("cache %s was built with other settings; rebuilding it", cache_dir)
            accelerator.wait_for_everyone()
            beats.to(device)
            base.vae.to(device)
            counts = cache_mod.precompute(
                dataset, cache_dir, tokenizer.features, base.vae, fingerprint=fingerprint,
                window_s=config.window_seconds, size=size, policy=config.resize,
                windows_per_clip=config.cache_windows, seed=config.seed, batch_size=config.precompute_batch,
                feature_dtype={"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[config.cache_dtype],
                rank=rank, world=world, num_workers=config.num_workers, progress=config.progress and main,
            )
            log.info("precompute[%d]: %d windows written, %d clips skipped (unreadable)", rank, counts["windows"], counts["skipped"])
            accelerator.wait_for_everyone()
            if main:
                cache_mod.merge_index(cache_dir, fingerprint, len(dataset))
            accelerator.wait_for_everyone()
            beats.to("cpu")
            base.vae.to("cpu")
        data = cache_mod.CachedDataset(cache_dir, seed=config.seed)
        if main and data.index["skipped"]:
            log.warning("%d clips were unreadable and are left out (first: %s)", len(data.index["skipped"]),
                        ", ".join(data.index["skipped"][:5]))
        if config.precompute_only:
            return cache_dir / "index.json"
    else:
        beats.to(device)
        data = RawViews(dataset.clips, window_s=config.window_seconds, size=size, policy=config.resize, seed=config.seed)

    # ---- models for the step
    for module in [*base.text_encoders, base.unet]:
        module.to(device, dtype=None if weight_dtype == torch.float32 else weight_dtype)
    if not config.cache:
        base.vae.to(device)
    lora_params = []
    if config.lora:
        from .lora import add_lora

        torch.manual_seed(config.seed + 1)
        lora_params = add_lora(base.unet, config.lora_rank)
    if config.gradient_checkpointing:
        base.unet.enable_gradient_checkpointing()
        for enc in base.text_encoders:
            # transformers 5 renamed the method; both keep the frozen encoder differentiable w.r.t. its input
            (getattr(enc, "activation_checkpointing_enable", None) or enc.gradient_checkpointing_enable)()
    if config.compile:
        base.unet = torch.compile(base.unet)
    embedder.to(device)
    embedder.train()

    lr = config.learning_rate
    if config.scale_lr:
        lr *= config.grad_accum * config.batch_size * world
    params = [{"params": list(embedder.parameters())}]
    if lora_params:
        params.append({"params": lora_params})
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(config.adam_beta1, config.adam_beta2),
                                  weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    from diffusers.optimization import get_scheduler

    lr_scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps,
                                 num_training_steps=config.max_steps)
    ddp_embedder, optimizer = accelerator.prepare(embedder, optimizer)
    if lora_params:
        base.unet = accelerator.prepare(base.unet)

    # ---- resume
    ckpt_root = out / "checkpoints"
    step = 0
    if config.resume:
        latest = latest_checkpoint(ckpt_root)
        if latest is None:
            log.info("--resume: no checkpoint in %s, starting from step 0", ckpt_root)
        else:
            trainable, opt_state, sched_state, state = load_checkpoint(latest)
            _load_trainable(trainable, embedder, accelerator.unwrap_model(base.unet), config.lora)
            optimizer.load_state_dict(opt_state)
            lr_scheduler.load_state_dict(sched_state["lr_scheduler"])
            if sched_state.get("scaler") and accelerator.scaler is not None:
                accelerator.scaler.load_state_dict(sched_state["scaler"])
            step = int(state["step"])
            log.info("resumed from %s (step %d)", latest, step)
            before = state.get("config", {})
            changed = [k for k in ("seed", "batch_size", "grad_accum", "data", "cache_windows", "learning_rate")
                       if k in before and before[k] != getattr(config, k)]
            if changed:
                log.warning("resuming with changed settings (%s): the run will not match an uninterrupted one",
                            ", ".join(f"{k} {before[k]!r} -> {getattr(config, k)!r}" for k in changed))
    if step >= config.max_steps:
        log.info("already at step %d of %d", step, config.max_steps)

    trainer = Trainer(config, base, ddp_embedder, device=device, weight_dtype=weight_dtype,
                      autocast=accelerator.autocast, beats_tokenizer=tokenizer if not config.cache else None, rank=rank)
    accum = config.grad_accum
    batches = StepBatches(len(data), config.batch_size, seed=config.seed, rank=rank, world=world,
                          start=step * accum, stop=config.max_steps * accum)
    loader = torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=config.num_workers,
                                         collate_fn=collate, pin_memory=device.type == "cuda")

    writer = None
    if config.tensorboard and main:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            log.info("tensorboard is not installed; scalars go to the log only")
    validation = _validation_sounds(config, dataset) if (config.validation_every and main) else []

    trainable_params = [p for g in params for p in g["params"]]
    bar = tqdm(total=config.max_steps, initial=step, desc="train", disable=not (config.progress and main), unit="step")
    micro = step * accum
    bad_cycle, bad_run, skipped_items = False, 0, 0
    sums: dict[str, float] = {}
    n_sums = 0
    t0, samples = time.perf_counter(), 0
    for batch in loader:
        last = (micro % accum) == accum - 1
        sync = ExitStack()
        if not last and world > 1:  # gradients are exchanged once per optimizer step, not per micro-batch
            for model in ([ddp_embedder, base.unet] if lora_params else [ddp_embedder]):
                sync.enter_context(accelerator.no_sync(model))
        skipped_items += batch.get("skipped", 0)
        with sync:
            if "features" in batch or "wave" in batch:
                loss, parts = trainer.loss(batch, micro)
                ok = math.isfinite(parts["loss"])
                samples += len(batch["id"])
            else:
                loss, parts, ok = None, {}, True  # every clip of this micro-batch was unreadable
            if ok and loss is not None:
                accelerator.backward(loss / accum)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_sums += 1
            else:
                if not ok:
                    bad_cycle = True
                    log.error("non-finite loss %s at step %d (micro-batch of %s); this step is skipped",
                              parts, step + 1, ", ".join(batch["id"][:8]))
                # a zero backward keeps DDP's gradient exchange in step across processes
                accelerator.backward(sum(p.sum() for p in trainable_params) * 0.0)
        micro += 1
        if not last:
            continue
        if world > 1:
            bad_cycle = bool(accelerator.reduce(torch.tensor(float(bad_cycle), device=device), "sum") > 0)
        if bad_cycle:
            optimizer.zero_grad(set_to_none=True)
            bad_run += 1
            if bad_run >= config.max_nonfinite_steps:
                raise NonFiniteLossError(
                    f"the loss was NaN/Inf in {bad_run} consecutive steps (last at step {step + 1}); stopping. "
                    "Lower --learning-rate, try --mixed-precision bf16 or no, or check the clips named in the log"
                )
        else:
            bad_run = 0
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(trainable_params, config.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        bad_cycle = False
        step += 1
        bar.update(1)
        if main and n_sums and (step % config.log_every == 0 or step == config.max_steps):
            avg = {k: v / n_sums for k, v in sums.items()}
            rate = samples * world / max(1e-9, time.perf_counter() - t0)
            bar.set_postfix(loss=f"{avg.get('loss', float('nan')):.4f}", sps=f"{rate:.1f}")
            log.info("step %d: %s, lr %.3g, %.2f samples/s%s", step, " ".join(f"{k} {v:.5f}" for k, v in avg.items()),
                     lr_scheduler.get_last_lr()[0], rate, f", {skipped_items} unreadable clips skipped" if skipped_items else "")
            if writer is not None:
                for k, v in avg.items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/lr", lr_scheduler.get_last_lr()[0], step)
                writer.add_scalar("train/samples_per_s", rate, step)
            sums, n_sums, t0, samples = {}, 0, time.perf_counter(), 0
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            accelerator.wait_for_everyone()
            if main:
                sched_state = {"lr_scheduler": lr_scheduler.state_dict(),
                               "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None}
                save_checkpoint(ckpt_root, step, _trainable_state(embedder, accelerator.unwrap_model(base.unet), config.lora),
                                optimizer.state_dict(), sched_state, {"config": config.to_dict()}, keep=config.keep_checkpoints)
            accelerator.wait_for_everyone()
            t0, samples = time.perf_counter(), 0
        if validation and config.validation_every and step % config.validation_every == 0:
            _validate(config, base, embedder, beats, validation, device, weight_dtype, out, step, writer)
            t0, samples = time.perf_counter(), 0  # throughput counts training only
    bar.close()

    accelerator.wait_for_everyone()
    final = out / EMBEDDER_FILE
    if main:
        embedder.meta = embedder.meta.with_(
            training={**config.to_dict(), "steps": step, "base_model_kind": base.kind,
                      "prediction_type": base.prediction_type, "world_size": world, "mixed_precision": mixed,
                      "effective_lr": lr, "trainer": "comfyui-audiotoken train"}
        )
        save_embedder(embedder, final)
        if config.lora:
            from .lora import save_lora

            save_lora(accelerator.unwrap_model(base.unet), out / LORA_FILE, training={"lora_rank": config.lora_rank})
        log.info("saved %s", final)
    if writer is not None:
        writer.close()
    accelerator.wait_for_everyone()
    return final


def _validate(config, base, embedder, beats, sounds, device, dtype, out: Path, step: int, writer) -> None:
    from .generate import AudioImageGenerator

    was_training = embedder.training
    embedder.eval()
    try:
        beats.to(device)
        if base.vae.device != device:
            base.vae.to(device)
        gen = AudioImageGenerator(base, embedder, beats, device=device, dtype=dtype)
        rows = []
        for _, wave, rate in sounds:
            rows.extend(gen.images_for_audio(wave, rate, prompt=config.prompt, seeds=[config.seed],
                                             steps=config.validation_steps, guidance=config.validation_guidance))
        grid = _save_grid([[img for row in rows for img in row]], out / "validation" / f"step-{step:08d}.png")
        if writer is not None:
            import numpy as np

            writer.add_image("validation", np.asarray(grid), step, dataformats="HWC")
    finally:
        if config.cache:
            beats.to("cpu")
            base.vae.to("cpu")
        embedder.train(was_training)
