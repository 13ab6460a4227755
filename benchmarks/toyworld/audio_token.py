"""Training the Embedder against the frozen toy T2I model with the trainer's own step (`train.loop.Trainer`).

The trainer computes the loss exactly as for Stable Diffusion — diffusion MSE + 0.01·mean|token|, the token
written into the CLIP input embeddings at "a photo of <*>" — from a batch of cached BEATs features and
"latents". Here the latent is the picture itself (`t2i.PixelSpace`), so the batch carries the picture as the
latent mean with zero spread. Only the optimizer loop lives here, set up from the same `TrainConfig` fields
(`AdamW` betas / weight decay / epsilon, lr scaled by batch size when `scale_lr`).
"""

from __future__ import annotations

import time

import torch

from .t2i import AUDIO_PROMPT


def features_for(tokenizer, clips: list[torch.Tensor], window_s: float, batch: int = 16, log=None) -> torch.Tensor:
    """BEATs features of the first `window_s` seconds of each clip (short clips tiled, as the official loader)."""
    from audiotoken_core.audio import take_window

    out = []
    for i in range(0, len(clips), batch):
        waves = torch.cat([take_window(c[None], 0.0, window_s) for c in clips[i : i + batch]])
        out.append(tokenizer.features(waves).float())
        if log is not None:
            log(f"  audio features {min(i + batch, len(clips))}/{len(clips)}")
    return torch.cat(out)


def make_config(seed: int, steps: int, batch: int, lr: float, window_s: float, out_dir: str, lr_scheduler: str):
    from train.config import TrainConfig

    return TrainConfig(
        output_dir=out_dir,
        prompt=AUDIO_PROMPT,
        window_seconds=window_s,
        infer_window_seconds=window_s,
        learning_rate=lr,
        scale_lr=True,
        lr_scheduler=lr_scheduler,
        batch_size=batch,
        grad_accum=1,
        max_steps=steps,
        seed=seed,
        mixed_precision="no",
        tensorboard=False,
        progress=False,
    )


def new_embedder(config, base, encoder_width: int, audio_encoder: str):
    from train.loop import build_embedder

    torch.manual_seed(config.seed + 5)
    return build_embedder(config, base, encoder_width, audio_encoder)


def train_embedder(config, base, embedder, feats: torch.Tensor, labels: torch.Tensor, pool,
                   deadline: float | None, log) -> int:
    """Trains `embedder` in place (left in eval mode); returns the number of steps taken."""
    from train.loop import Trainer

    embedder.meta = embedder.meta.with_(training={"benchmark": "toyworld", "steps": config.max_steps,
                                                  "lr": config.learning_rate, "batch_size": config.batch_size})
    embedder.train()
    lr = config.learning_rate * (config.batch_size * config.grad_accum if config.scale_lr else 1)
    opt = torch.optim.AdamW(embedder.parameters(), lr=lr, betas=(config.adam_beta1, config.adam_beta2),
                            weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    from diffusers.optimization import get_scheduler

    # the same scheduler factory the trainer uses, so `lr_scheduler` means the same thing in both
    schedule = get_scheduler(config.lr_scheduler, opt, num_warmup_steps=config.lr_warmup_steps,
                             num_training_steps=config.max_steps)
    trainer = Trainer(config, base, embedder, device="cpu")
    gen = torch.Generator().manual_seed(config.seed + 6)
    start, done, avg = time.monotonic(), 0, {}
    for step in range(config.max_steps):
        if deadline is not None and time.monotonic() > deadline:
            log(f"  embedder: time budget reached after {step} of {config.max_steps} steps")
            break
        idx = torch.randint(0, feats.shape[0], (config.batch_size,), generator=gen)
        # a fresh picture of the sound's class every time: the pairing is by class, as in VGGSound
        # where the frame is any moment of the clip's video
        _, images = pool.sample(config.batch_size, gen, kinds=labels[idx])
        batch = {"features": feats[idx], "mean": images, "std": torch.zeros_like(images)}
        loss, parts = trainer.loss(batch, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(embedder.parameters(), config.max_grad_norm)
        opt.step()
        schedule.step()
        done = step + 1
        avg = {k: v if k not in avg else 0.97 * avg[k] + 0.03 * v for k, v in parts.items()}
        if done % 50 == 0 or done == config.max_steps:
            log(f"  embedder step {done}/{config.max_steps}  mse {avg['mse']:.4f}  reg {avg['reg']:.4f}"
                f"  ({time.monotonic() - start:.0f} s)")
    embedder.eval()
    return done
