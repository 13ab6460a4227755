"""The loss of one micro-batch: `Trainer`, shared by `train.loop` and the benchmarks (toy world, throughput).

Every random draw of a step comes from a generator seeded by (seed, micro step, rank), so a step gives the same
loss on any device and after a resume.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .batches import Batch, CachedInputs, as_batch
from .config import TrainConfig
from .inject import label_token_embeddings
from .losses import LossWeights, total_loss


def step_seed(seed: int, micro_step: int, rank: int) -> int:
    return (int(seed) * 1_000_003 + int(micro_step) * 7919 + int(rank) * 104_729) % (2**63 - 1)


class Trainer:
    """Holds the models and computes the loss of one micro-batch; shared by `train` and the benchmarks."""

    def __init__(self, config: TrainConfig, base, embedder, *, device, weight_dtype=torch.float32,
                 autocast=None, beats_tokenizer=None, rank: int = 0):
        self.config, self.base, self.embedder = config, base, embedder
        self.device, self.weight_dtype, self.rank = torch.device(device), weight_dtype, rank
        self.autocast = autocast or nullcontext
        self.beats_tokenizer = beats_tokenizer  # AudioTokenizer, needed only without the cache
        self.ids, self._ids_batch = None, 0
        base.configure(config)
        self.weights = LossWeights(config.lambda_l1, config.lambda_l2, config.lambda_class, config.class_loss,
                                   config.lambda_norm)
        self._label_cache: dict[tuple[str, str], tuple[torch.Tensor, bool]] = {}
        self.word_norms = word_norms(base) if config.lambda_norm else None

    def _prompt_ids(self, batch: int):
        if self.ids is None or self._ids_batch != batch:
            module = self.embedder.module if hasattr(self.embedder, "module") else self.embedder
            self.ids = self.base.prompt_inputs(self.config.prompt, batch, module.n_tokens, self.device)
            self._ids_batch = batch
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
    def frozen_inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(features, latent mean, latent std)`: from the cache, or computed now (original recipe)."""
        inputs = batch.inputs
        if isinstance(inputs, CachedInputs):
            return (inputs.features.to(self.device, non_blocking=True),
                    inputs.mean.to(self.device, non_blocking=True),
                    inputs.std.to(self.device, non_blocking=True))
        feats = self.beats_tokenizer.features(inputs.wave.to(self.device))
        vae = self.base.vae
        dist = vae.encode(inputs.pixels.to(self.device, next(vae.parameters()).dtype)).latent_dist
        return feats, dist.mean.float(), dist.std.float()

    def loss(self, batch: Batch, micro_step: int) -> tuple[torch.Tensor, dict]:
        batch = as_batch(batch)
        seed = step_seed(self.config.seed, micro_step, self.rank)
        torch.manual_seed(seed)  # the Embedder's training dropout draws from the global generator
        gen = torch.Generator().manual_seed(seed)
        feats, mean, std = self.frozen_inputs(batch)
        bsz, base = feats.shape[0], self.base
        # every random draw comes from the step's own CPU generator: identical on any device and on resume
        eps_latent = torch.randn(mean.shape, generator=gen).to(self.device)
        latents = base.latents(mean, std, eps_latent)
        noisy, timesteps, target, weighting = base.noisy_input(latents, gen)
        with self.autocast():
            tokens = forward_dict(self.embedder, feats.float())
            cond = base.encode(self._prompt_ids(bsz), tokens)
            pred = base.predict(noisy, timesteps, cond, self.weight_dtype)
        return total_loss(pred, target, tokens, self.weights, self._class_targets(batch.labels or [None] * bsz),
                          self.word_norms, weighting)


def word_norms(base) -> dict[str, float]:
    """Mean norm of each text encoder's input word embeddings: the scale a token should have to read as a word."""
    return {head: float(enc.get_input_embeddings().weight.detach().float().norm(dim=1).mean())
            for head, enc in zip(base.heads, base.text_encoders)}


def forward_dict(embedder, feats):
    module = embedder.module if hasattr(embedder, "module") else embedder
    if module is embedder:
        return embedder.forward_dict(feats)
    out = embedder(feats)  # through DDP's forward, so gradients are synchronised
    return out if isinstance(out, dict) else {module.head_names[0]: out}

