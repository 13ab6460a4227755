"""Training the Embedder against the frozen toy T2I model with the trainer's own step (`train.trainer.Trainer`).

The trainer computes the loss exactly as for Stable Diffusion — diffusion MSE + 0.01·mean|token|, the token
written into the CLIP input embeddings at "a photo of <*>" — from a batch of cached BEATs features and
"latents". Here the latent is the picture itself (`t2i.PixelSpace`), so the batch carries the picture as the
latent mean with zero spread. The optimiser and lr schedule are the trainer's (`train.optim`); only the loop
over steps lives here.
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


def training_views(tokenizer, clips: list[torch.Tensor], window_s: float, n_views: int, seed: int,
                   batch: int = 16) -> torch.Tensor:
    """`[n_views, clips, N, F]` features: view 0 is the first window (what inference sees), the others start at
    a random time, and a clip shorter than the window is tiled from a random phase of itself.

    The trainer's cache holds `--cache-windows` views of each clip for the same reason: the Embedder should
    not see one fixed window so often that it learns that window rather than the sound.
    """
    import numpy as np

    from audiotoken_core.audio import take_window

    views = [features_for(tokenizer, clips, window_s, batch)]
    for v in range(1, n_views):
        rng = np.random.default_rng([seed, 0x5EED, v])
        waves = []
        for clip in clips:
            length = clip.shape[0]
            size = int(window_s * 16000)
            if length > size:
                start = int(rng.integers(0, length - size + 1))
                waves.append(clip[start : start + size][None])
            else:
                waves.append(take_window(torch.roll(clip, -int(rng.integers(length)))[None], 0.0, window_s))
        views.append(torch.cat([tokenizer.features(torch.cat(waves[i : i + batch])).float()
                                for i in range(0, len(waves), batch)]))
    return torch.stack(views)


def make_config(seed: int, steps: int, batch: int, lr: float, window_s: float, out_dir: str, lr_scheduler: str,
                **recipe):
    """A `TrainConfig` for the toy world; `recipe` overrides loss settings (lambda_l1, lambda_norm, class_loss)."""
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
        mixed_precision="fp32",
        tensorboard=False,
        progress=False,
        **recipe,
    )


def new_embedder(config, base, encoder_width: int, audio_encoder: str):
    from train.trainable import build_embedder

    torch.manual_seed(config.seed + 5)
    return build_embedder(config, base, encoder_width, audio_encoder)


def train_embedder(config, base, embedder, views: torch.Tensor, labels: torch.Tensor, pool,
                   deadline: float | None, log) -> int:
    """Trains `embedder` in place (left in eval mode) on `views[V, clips, N, F]`, one view drawn per sample and
    step; returns the number of steps taken."""
    from train.batches import Batch
    from train.trainer import Trainer
    from train.optim import build_optimization

    embedder.meta = embedder.meta.with_(training={"benchmark": "toyworld", "steps": config.max_steps,
                                                  "lr": config.learning_rate, "batch_size": config.batch_size})
    embedder.train()
    opt = build_optimization(config, [embedder.parameters()])
    trainer = Trainer(config, base, embedder, device="cpu")
    gen = torch.Generator().manual_seed(config.seed + 6)
    start, done, avg = time.monotonic(), 0, {}
    for step in range(config.max_steps):
        if deadline is not None and time.monotonic() > deadline:
            log(f"  embedder: time budget reached after {step} of {config.max_steps} steps")
            break
        idx = torch.randint(0, views.shape[1], (config.batch_size,), generator=gen)
        view = torch.randint(0, views.shape[0], (config.batch_size,), generator=gen)
        # a fresh picture of the sound's class every time: the pairing is by class, as in VGGSound
        # where the frame is any moment of the clip's video
        _, images = pool.sample(config.batch_size, gen, kinds=labels[idx])
        words = [pool.names[y] for y in labels[idx].tolist()]  # the class word: a target for --class-loss
        batch = Batch.cached(views[view, idx], images, torch.zeros_like(images), words)
        loss, parts = trainer.loss(batch, step)
        opt.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(opt.params, config.max_grad_norm)
        opt.optimizer.step()
        opt.lr_scheduler.step()
        done = step + 1
        avg = {k: v if k not in avg else 0.97 * avg[k] + 0.03 * v for k, v in parts.items()}
        if done % 50 == 0 or done == config.max_steps:
            log(f"  embedder step {done}/{config.max_steps}  " + "  ".join(f"{k} {v:.4f}" for k, v in avg.items())
                + f"  ({time.monotonic() - start:.0f} s)")
    embedder.eval()
    return done
