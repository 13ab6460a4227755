"""Training throughput: the original recipe vs this trainer, same models, same batch.

(a) original: fp32; every step runs BEATs on the audio window and the VAE on the frame, then
    Embedder -> CLIP -> UNet forward/backward (what the official train.py does per step);
(b) ours: BEATs features and VAE latents come from the cache (fp16 features, latent mean/std), mixed
    precision (bf16, fp16 on GPUs without bf16; fp32 on CPU where autocast does not pay) with SDPA.

Both call the trainer's own `train.trainer.Trainer.loss`, so the figures measure the shipped code.
File decoding is left out of both (in-memory inputs): it only widens the gap in practice.

    python -m benchmarks.train_throughput                 # tiny random models (CPU is fine)
    python -m benchmarks.train_throughput --full          # SD1.5-size UNet/VAE/CLIP-L + full BEATs, random weights (GPU)

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from benchmarks import provenance


def full_base(tok_dir: Path):
    """SD1.5-size components with random weights (no download): UNet 860M, VAE 84M, CLIP-L text 123M."""
    from diffusers import AutoencoderKL, DDPMScheduler, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from train.families.unet import BaseModel

    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                        bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1,
                                        pad_token_id=len(tokenizer) - 1))
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
    )
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    return BaseModel(kind="sd1", tokenizers=[tokenizer], text_encoders=[text], heads=["l"], unet=unet, vae=vae,
                     noise_scheduler=sched, scheduler=PNDMScheduler.from_config(sched.config), source="random SD1.5").freeze()


def build(full: bool, work: Path):
    from audiotoken_core.beats import load_beats
    from testkit.beats import random_beats, write_tiny_official_beats
    from testkit.sd import write_tiny_sd, write_tiny_tokenizer

    from train.models import load_base_model

    if full:
        return full_base(write_tiny_tokenizer(work / "tok")), random_beats()
    base = load_base_model(write_tiny_sd(work / "sd", "sd1"))
    return base, load_beats(write_tiny_official_beats(work / "beats.pt", layers=12, dim=64, heads=4))


def measure(step_fn, steps: int, warmup: int, device) -> float:
    for _ in range(warmup):
        step_fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step_fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="SD1.5-size models (use a GPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=4, help="clips per step (original: 4)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per recipe")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds per recipe")
    p.add_argument("--window", type=float, default=5.0, help="audio window in seconds (original: 5)")
    p.add_argument("--frame", default=None, help="frame WxH (default 512x320 full, 64x40 tiny)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps = args.steps or (10 if args.full else 5)
    frame = args.frame or ("512x320" if args.full else "64x40")

    from audiotoken_core.pipeline import AudioTokenizer
    from audiotoken_core.precision import resolve, torch_dtype

    from train.config import TrainConfig
    from train.data.frames import parse_size
    from train.trainable import build_embedder
    from train.trainer import Trainer

    w, h = parse_size(frame)
    with tempfile.TemporaryDirectory() as tmp:
        base, beats = build(args.full, Path(tmp))
    cfg = TrainConfig(window_seconds=args.window, frame_size=frame, batch_size=args.batch, grad_accum=1)
    torch.manual_seed(0)
    embedder = build_embedder(cfg, base, beats.embed_dim, "BEATs")
    tokenizer = AudioTokenizer(beats, embedder)
    wave = torch.randn(args.batch, int(args.window * 16000)) * 0.1
    pixels = torch.rand(args.batch, 3, h, w) * 2 - 1
    mixed_b = resolve("auto", device)
    recipes = [
        ("(a) original: fp32, BEATs + VAE every step", "fp32", False),
        (f"(b) ours: cached features/latents, {'fp32 (no autocast on CPU)' if mixed_b == 'fp32' else mixed_b + ' autocast'}",
         mixed_b, True),
    ]

    # the cache's content for this batch, made once (this is the precompute pass, timed separately)
    with torch.no_grad():
        beats.to(device)
        base.vae.to(device)

        def pre():
            return tokenizer.features(wave.to(device)), base.vae.encode(pixels.to(device)).latent_dist

        precompute_s = measure(pre, max(2, steps // 2), 1, device)
        feats, dist = pre()
        cached_batch = {"features": feats.to("cpu", torch.float16), "mean": dist.mean.float().cpu(),
                        "std": dist.std.float().cpu()}

    def prepare(mixed, cached):
        dtype = torch_dtype(mixed)
        for m in base.step_modules():
            m.to(device, dtype=dtype)
        # as in training: with the cache, the frozen encoders are not on the device at all
        beats.to("cpu" if cached else device)
        base.vae.to("cpu" if cached else device)
        embedder.to(device).train()
        autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else nullcontext
        trainer = Trainer(cfg, base, embedder, device=device, weight_dtype=dtype, autocast=autocast,
                          beats_tokenizer=tokenizer)
        batch = {k: v.to(device) for k, v in cached_batch.items()} if cached else {"wave": wave, "pixels": pixels}
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        opt = torch.optim.AdamW(embedder.parameters(), lr=1e-5, weight_decay=1e-2)
        state = {"i": 0}

        def step():
            loss, _ = trainer.loss(batch, state["i"])
            state["i"] += 1
            (scaler.scale(loss) if scaler else loss).backward()
            (scaler.step(opt), scaler.update()) if scaler else opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    # recipes alternate in rounds, so load from other processes hits both alike; the median is reported
    times = {r[0]: [] for r in recipes}
    mems = {r[0]: 0.0 for r in recipes}
    for _ in range(args.rounds):
        for rname, mixed, cached in recipes:
            step = prepare(mixed, cached)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            times[rname].append(measure(step, steps, args.warmup, device))
            if device.type == "cuda":
                mems[rname] = max(mems[rname], torch.cuda.max_memory_allocated() / 2**30)
    rows = [(rname, mixed, statistics.median(times[rname]), min(times[rname]), max(times[rname]),
             mems[rname] if device.type == "cuda" else None) for rname, mixed, _ in recipes]

    name = "SD1.5-size (random weights), BEATs iter3+ size" if args.full else "tiny random models (testkit)"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{provenance.line()}")
    print(f"\n**{name}** on {gpu}; batch {args.batch}, {args.window:g} s audio, {w}x{h} frames, "
          f"{args.rounds} rounds x {steps} timed steps per recipe (median; min-max in brackets), torch {torch.__version__}\n")
    print("| recipe | precision | ms/step | samples/s | speed-up | peak GPU GiB |")
    print("|---|---|---:|---:|---:|---:|")
    base_sec = rows[0][2]
    for rname, mixed_, sec, lo, hi, mem in rows:
        print(f"| {rname} | {mixed_} | {sec * 1000:.1f} [{lo * 1000:.0f}-{hi * 1000:.0f}] | {args.batch / sec:.2f} | "
              f"{base_sec / sec:.2f}x | {'-' if mem is None else f'{mem:.1f}'} |")
    print(f"\nOne-off precompute (BEATs + VAE, fp32) for these {args.batch} clips: {precompute_s * 1000:.1f} ms "
          f"({args.batch / precompute_s:.1f} windows/s), paid once per cached window instead of every step.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
