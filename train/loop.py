"""The training run: `train(config) -> path of the saved Embedder`.

Only the Embedder (and an optional UNet LoRA) trains. With the cache on (default), BEATs and the VAE run
once in a precompute pass and a step costs Embedder + text encoder(s) + UNet; with `cache=False` every
step decodes, runs BEATs and the VAE, as the original code does.

`train` reads as the run's phases, each a function here: `setup_run` (accelerator, data, models),
`prepare_inputs` (cache or per-step decoding), `prepare_step_models` (device, LoRA, checkpointing),
`resume`, `train_steps` (the step loop; one optimizer step is `optimizer_step`) and `save_final`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from audiotoken_core import sources
from audiotoken_core.precision import resolve, torch_dtype

from .batches import Batch, RawViews, StepBatches, collate
from .config import TrainConfig
from .losses import NonFiniteLossError
from .optim import Optimization, build_optimization
from .run_state import Run
from .trainable import build_embedder, load_trainable, trainable_state
from .trainer import Trainer
from .validation import validate, validation_sounds

log = logging.getLogger("train")

EMBEDDER_FILE = "audiotoken-embedder.safetensors"
LORA_FILE = "audiotoken-lora.safetensors"
# settings whose change on --resume makes the run differ from an uninterrupted one
RESUME_SENSITIVE = ("seed", "batch_size", "grad_accum", "data", "cache_windows", "learning_rate")

__all__ = ["EMBEDDER_FILE", "LORA_FILE", "Run", "train"]


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


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    # AcceleratorState is a process-wide singleton; a second run in the same process (scripts, tests)
    # may ask for another precision, so forget the previous run's choice (the process group stays)
    AcceleratorState._reset_state(reset_partial_state=False)
    cpu = not torch.cuda.is_available()
    mixed = resolve(config.mixed_precision, PartialState(cpu=cpu).device)
    return Accelerator(mixed_precision="no" if mixed == "fp32" else mixed, cpu=cpu), mixed  # accelerate's fp32: "no"


def setup_run(config: TrainConfig) -> Run:
    """Check the settings, start the accelerator, open the data and load the frozen models and the Embedder."""
    from audiotoken_core.beats import load_beats
    from audiotoken_core.pipeline import AudioTokenizer

    from .data import open_dataset, read_id_list
    from .models import MissingModelError, load_base_model

    config.validate()
    if not Path(config.beats).is_file():
        raise MissingModelError(
            f"BEATs checkpoint {config.beats} not found: download {sources.official('audio_encoder').name} "
            "(see docs/training.md for working mirrors) and pass its path with --beats"
        )
    config.output_path.mkdir(parents=True, exist_ok=True)
    accelerator, mixed = _accelerator(config)
    if accelerator.is_main_process:
        (config.output_path / "config.json").write_text(config.to_json())
        log.info("device %s x%d, mixed precision %s", accelerator.device, accelerator.num_processes, mixed)
    exclude: set[str] = set()
    for path in config.exclude:
        exclude |= read_id_list(path)
    dataset = open_dataset(config.data, config.split, exclude, config.official_filters)
    if accelerator.is_main_process:
        log.info("%r", dataset)
    base = load_base_model(config.base_model, config.base_config, dtype=torch_dtype(mixed))
    if config.lora and not base.supports_lora:
        raise ValueError(f"--lora trains a UNet LoRA; {config.base_model} is a {base.kind} model (a transformer): "
                         "only the Embedder trains there")
    beats = load_beats(config.beats)
    torch.manual_seed(config.seed)  # initial Embedder weights are part of a reproducible run
    embedder = build_embedder(config, base, beats.embed_dim, Path(config.beats).stem)
    return Run(config, accelerator, mixed, dataset, base, beats, embedder, AudioTokenizer(beats, embedder))


def _fill_cache(run: Run, cache_dir: Path, fingerprint: dict) -> None:
    """Precompute this process's share of the cache, then merge every share into the index."""
    from . import cache as cache_mod
    from .data.frames import parse_size

    config, acc = run.config, run.accelerator
    acc.wait_for_everyone()  # every process has seen the old state before it changes
    if run.main and cache_mod.prepare_cache_dir(cache_dir, fingerprint):
        log.warning("cache %s was built with other settings; rebuilding it", cache_dir)
    acc.wait_for_everyone()
    run.beats.to(run.device)
    run.base.vae.to(run.device)
    counts = cache_mod.precompute(
        run.dataset, cache_dir, run.tokenizer.features, run.base.vae, fingerprint=fingerprint,
        window_s=config.window_seconds, size=parse_size(config.frame_size), policy=config.resize,
        windows_per_clip=config.cache_windows, seed=config.seed, batch_size=config.precompute_batch,
        feature_dtype=torch_dtype(config.cache_dtype), rank=run.rank, world=run.world,
        num_workers=config.num_workers, progress=config.progress and run.main,
    )
    log.info("precompute[%d]: %d windows written, %d clips skipped (unreadable)", run.rank, counts["windows"],
             counts["skipped"])
    acc.wait_for_everyone()
    if run.main:
        cache_mod.merge_index(cache_dir, fingerprint, len(run.dataset))
    acc.wait_for_everyone()
    run.beats.to("cpu")
    run.base.vae.to("cpu")


def prepare_inputs(run: Run) -> torch.utils.data.Dataset:
    """The step's data: the cache (built or completed first when needed) or, without it, per-step decoding."""
    from . import cache as cache_mod
    from .data.frames import parse_size

    config = run.config
    if not config.cache:
        run.beats.to(run.device)
        return RawViews(run.dataset.clips, window_s=config.window_seconds, size=parse_size(config.frame_size),
                        policy=config.resize, seed=config.seed)
    fingerprint = cache_fingerprint(config, run.dataset, run.base.vae, config.beats)
    if not cache_mod.cache_is_valid(config.cache_path, fingerprint):
        _fill_cache(run, config.cache_path, fingerprint)
    data = cache_mod.CachedDataset(config.cache_path, seed=config.seed)
    skipped = data.index["skipped"]
    if run.main and skipped:
        log.warning("%d clips were unreadable and are left out (first: %s)", len(skipped), ", ".join(skipped[:5]))
    return data


def prepare_step_models(run: Run) -> None:
    """Frozen models to the device in the step's precision; LoRA, checkpointing and compile as asked."""
    config, base = run.config, run.base
    for module in base.step_modules():
        module.to(run.device, dtype=None if run.weight_dtype == torch.float32 else run.weight_dtype)
    if not config.cache:
        base.vae.to(run.device)
    if config.lora:
        from .lora import add_lora

        torch.manual_seed(config.seed + 1)
        run.lora_params = add_lora(base.denoiser, config.lora_rank)
    if config.gradient_checkpointing:
        base.enable_gradient_checkpointing()
    if config.compile:
        if base.supports_compile:
            base.denoiser = torch.compile(base.denoiser)
        elif run.main:
            log.warning("--compile compiles a UNet; the %s transformer runs uncompiled", base.kind)
    run.embedder.to(run.device)
    run.embedder.train()


def resume(run: Run, opt: Optimization) -> int:
    """Load the newest checkpoint when `--resume` asks for it; returns the optimizer step to continue from."""
    from .checkpoint import latest_checkpoint, load_checkpoint

    config, acc = run.config, run.accelerator
    root = run.out / "checkpoints"
    latest = latest_checkpoint(root) if config.resume else None
    if config.resume and latest is None:
        log.info("--resume: no checkpoint in %s, starting from step 0", root)
    if latest is None:
        return 0
    trainable, opt_state, sched_state, state = load_checkpoint(latest)
    load_trainable(trainable, run.embedder, _lora_host(run), config.lora)
    opt.optimizer.load_state_dict(opt_state)
    opt.lr_scheduler.load_state_dict(sched_state["lr_scheduler"])
    if sched_state.get("scaler") and acc.scaler is not None:
        acc.scaler.load_state_dict(sched_state["scaler"])
    step = int(state["step"])
    log.info("resumed from %s (step %d)", latest, step)
    before = state.get("config", {})
    changed = [k for k in RESUME_SENSITIVE if k in before and before[k] != getattr(config, k)]
    if changed:
        log.warning("resuming with changed settings (%s): the run will not match an uninterrupted one",
                    ", ".join(f"{k} {before[k]!r} -> {getattr(config, k)!r}" for k in changed))
    return step


def _lora_host(run: Run):
    """The denoiser a LoRA sits in; None for the families that take none."""
    return run.accelerator.unwrap_model(run.base.denoiser) if run.base.supports_lora else None


def save_checkpoint_now(run: Run, opt: Optimization, step: int) -> None:
    from .checkpoint import save_checkpoint

    acc, config = run.accelerator, run.config
    acc.wait_for_everyone()
    if run.main:
        sched_state = {"lr_scheduler": opt.lr_scheduler.state_dict(),
                       "scaler": acc.scaler.state_dict() if acc.scaler is not None else None}
        trainable = trainable_state(run.embedder, _lora_host(run), config.lora)
        save_checkpoint(run.out / "checkpoints", step, trainable, opt.optimizer.state_dict(), sched_state,
                        {"config": config.to_dict()}, keep=config.keep_checkpoints)
    acc.wait_for_everyone()


class StepLog:
    """Loss parts averaged over the micro-batches since the last report, and training throughput."""

    def __init__(self, run: Run, writer):
        self.run, self.writer = run, writer
        self.skipped_items = 0
        self.sums: dict[str, float] = {}
        self.n = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        """Throughput counts training only: restarted after checkpoints and validation images."""
        self.t0, self.samples = time.perf_counter(), 0

    def add(self, parts: dict[str, float]) -> None:
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def report(self, step: int, lr: float, bar) -> None:
        avg = {k: v / self.n for k, v in self.sums.items()}
        rate = self.samples * self.run.world / max(1e-9, time.perf_counter() - self.t0)
        bar.set_postfix(loss=f"{avg.get('loss', float('nan')):.4f}", sps=f"{rate:.1f}")
        skipped = f", {self.skipped_items} unreadable clips skipped" if self.skipped_items else ""
        log.info("step %d: %s, lr %.3g, %.2f samples/s%s", step, " ".join(f"{k} {v:.5f}" for k, v in avg.items()),
                 lr, rate, skipped)
        if self.writer is not None:
            for k, v in avg.items():
                self.writer.add_scalar(f"train/{k}", v, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/samples_per_s", rate, step)
        self.sums, self.n = {}, 0
        self.restart_clock()


def _tensorboard(run: Run):
    if not (run.config.tensorboard and run.main):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed; scalars go to the log only")
        return None
    return SummaryWriter(str(run.out / "tensorboard"))


def _no_sync(run: Run, ddp_embedder, last: bool) -> ExitStack:
    """Gradients are exchanged once per optimizer step, not per micro-batch."""
    stack = ExitStack()
    if not last and run.world > 1:
        for model in ([ddp_embedder, run.base.denoiser] if run.lora_params else [ddp_embedder]):
            stack.enter_context(run.accelerator.no_sync(model))
    return stack


def micro_step(run: Run, trainer: Trainer, opt: Optimization, batch: Batch, micro: int, stats: StepLog,
               step: int) -> bool:
    """Forward and backward of one micro-batch; False when its loss was NaN/Inf (the step is then skipped)."""
    acc, accum = run.accelerator, run.config.grad_accum
    stats.skipped_items += batch.skipped
    if batch.inputs is None:  # every clip of this micro-batch was unreadable
        loss, parts, ok = None, {}, True
    else:
        loss, parts = trainer.loss(batch, micro)
        ok = math.isfinite(parts["loss"])
        stats.samples += len(batch)
    if ok and loss is not None:
        acc.backward(loss / accum)
        stats.add(parts)
        return True
    if not ok:
        log.error("non-finite loss %s at step %d (micro-batch of %s); this step is skipped",
                  parts, step + 1, ", ".join(batch.ids[:8]))
    # a zero backward keeps DDP's gradient exchange in step across processes
    acc.backward(sum(p.sum() for p in opt.params) * 0.0)
    return ok


def optimizer_step(run: Run, opt: Optimization, bad_cycle: bool, bad_run: int, step: int) -> int:
    """Apply the accumulated gradients, or drop them when any process saw a non-finite loss; returns the
    number of consecutive bad steps, and stops the run when there were too many."""
    acc, config = run.accelerator, run.config
    if run.world > 1:
        bad_cycle = bool(acc.reduce(torch.tensor(float(bad_cycle), device=run.device), "sum") > 0)
    if bad_cycle:
        opt.optimizer.zero_grad(set_to_none=True)
        bad_run += 1
        if bad_run >= config.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"the loss was NaN/Inf in {bad_run} consecutive steps (last at step {step + 1}); stopping. "
                "Lower --learning-rate, try --mixed-precision bf16 or fp32, or check the clips named in the log"
            )
        return bad_run
    if config.max_grad_norm:
        acc.clip_grad_norm_(opt.params, config.max_grad_norm)
    opt.optimizer.step()
    opt.lr_scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    return 0


def train_steps(run: Run, data, opt: Optimization, ddp_embedder, step: int) -> int:
    """The step loop from optimizer step `step` to `max_steps`, with logging, checkpoints and validation
    images; returns the last step."""
    from tqdm.auto import tqdm

    config, accum = run.config, run.config.grad_accum
    trainer = Trainer(config, run.base, ddp_embedder, device=run.device, weight_dtype=run.weight_dtype,
                      autocast=run.accelerator.autocast, rank=run.rank,
                      beats_tokenizer=run.tokenizer if not config.cache else None)
    batches = StepBatches(len(data), config.batch_size, seed=config.seed, rank=run.rank, world=run.world,
                          start=step * accum, stop=config.max_steps * accum)
    loader = torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=config.num_workers,
                                         collate_fn=collate, pin_memory=run.device.type == "cuda")
    writer = _tensorboard(run)
    validation = validation_sounds(config, run.dataset) if (config.validation_every and run.main) else []
    bar = tqdm(total=config.max_steps, initial=step, desc="train", disable=not (config.progress and run.main),
               unit="step")
    stats, micro, bad_cycle, bad_run = StepLog(run, writer), step * accum, False, 0
    for batch in loader:
        last = (micro % accum) == accum - 1
        with _no_sync(run, ddp_embedder, last):
            bad_cycle |= not micro_step(run, trainer, opt, batch, micro, stats, step)
        micro += 1
        if not last:
            continue
        bad_run = optimizer_step(run, opt, bad_cycle, bad_run, step)
        bad_cycle, step = False, step + 1
        bar.update(1)
        if run.main and stats.n and (step % config.log_every == 0 or step == config.max_steps):
            stats.report(step, opt.lr_scheduler.get_last_lr()[0], bar)
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            save_checkpoint_now(run, opt, step)
            stats.restart_clock()
        if validation and step % config.validation_every == 0:
            validate(run, validation, step, writer)
            stats.restart_clock()
    bar.close()
    if writer is not None:
        writer.close()
    return step


def save_final(run: Run, opt: Optimization, step: int) -> Path:
    """The Embedder (with every setting in its metadata) and, with --lora, the LoRA, written by the main process."""
    from audiotoken_core.embedder import save_embedder

    config, acc = run.config, run.accelerator
    acc.wait_for_everyone()
    final = run.out / EMBEDDER_FILE
    if run.main:
        run.embedder.meta = run.embedder.meta.with_(
            training={**config.to_dict(), "steps": step, "base_model_kind": run.base.kind,
                      "prediction_type": run.base.prediction_type, "world_size": run.world,
                      "mixed_precision": run.mixed, "effective_lr": opt.lr, "trainer": "comfyui-audiotoken train"}
        )
        save_embedder(run.embedder, final)
        if config.lora:
            from .lora import save_lora

            save_lora(_lora_host(run), run.out / LORA_FILE, training={"lora_rank": config.lora_rank})
        log.info("saved %s", final)
    acc.wait_for_everyone()
    return final


def train(config: TrainConfig) -> Path:
    """Run (or resume) a training run; returns the path of the final Embedder file."""
    run = setup_run(config)
    data = prepare_inputs(run)
    if config.cache and config.precompute_only:
        return config.cache_path / "index.json"
    prepare_step_models(run)
    opt = build_optimization(config, [run.embedder.parameters(), run.lora_params], run.world)
    ddp_embedder, opt.optimizer = run.accelerator.prepare(run.embedder, opt.optimizer)
    if run.lora_params:
        run.base.denoiser = run.accelerator.prepare(run.base.denoiser)
    step = resume(run, opt)
    if step >= config.max_steps:
        log.info("already at step %d of %d", step, config.max_steps)
    step = train_steps(run, data, opt, ddp_embedder, step)
    return save_final(run, opt, step)


