"""The AudioToken objective.

    L = MSE(prediction, target) + lambda_l1 * mean|token| + lambda_l2 * mean ||token||^2
        + lambda_norm * mean (||token|| / w - 1)^2      (w: mean norm of the text encoder's word embeddings)
        [+ lambda_class * (1 - mean_b cos(token_b, label_b))^2   over clips that have a label]

`target` is epsilon or v depending on the scheduler (UNet families), or the velocity noise - latents (flow
families, train/families/flow.py). The class term keeps the original's shape (square of
one minus the batch-mean cosine) without its crash; with several tokens it uses the last one, as the
original did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


class NonFiniteLossError(FloatingPointError):
    """Raised when training keeps producing NaN/Inf losses."""


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if kind == "sample":
        return latents
    raise ValueError(f"unsupported prediction type {kind!r} (epsilon, v_prediction or sample)")


@dataclass
class LossWeights:
    l1: float = 0.01
    l2: float = 0.0
    class_: float = 0.01
    use_class: bool = False
    norm: float = 0.0


def token_regularizer(tokens: dict[str, torch.Tensor], w: LossWeights,
                      word_norms: dict[str, float] | None = None) -> torch.Tensor:
    """L1/L2 penalties averaged over heads (one head: exactly the original's terms), and the pull of each
    token's norm toward the norm of a word (`word_norms[head]`) when `w.norm` is set."""
    total = 0.0
    for head, t in tokens.items():
        t = t.float()
        total = total + w.l1 * t.abs().mean()
        if w.l2:
            total = total + w.l2 * t.pow(2).sum(-1).mean()
        if w.norm:
            total = total + w.norm * (t.norm(dim=-1) / word_norms[head] - 1.0).pow(2).mean()
    return total / len(tokens)


def class_loss(token: torch.Tensor, label_emb: torch.Tensor, has_label: torch.Tensor) -> torch.Tensor:
    """`(1 - mean cos)^2` over the clips with a label; 0 (with a graph) when none has one."""
    tok = token[:, -1] if token.dim() == 3 else token
    if not bool(has_label.any()):
        return tok.float().sum() * 0.0
    cos = F.cosine_similarity(tok[has_label].float(), label_emb[has_label].to(tok.device).float(), dim=-1)
    return (1.0 - cos.mean()).pow(2)


def total_loss(pred, target, tokens, w: LossWeights, class_targets=None,
               word_norms: dict[str, float] | None = None,
               weighting: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss and its parts (as floats, for logging). `class_targets`: {head: (label_emb, has_label)};
    `weighting` (flow families' cosmap / sigma_sqrt): a per-sample weight of the squared error."""
    if weighting is None:
        mse = F.mse_loss(pred.float(), target.float(), reduction="mean")
    else:
        mse = (weighting.float() * (pred.float() - target.float()) ** 2).mean()
    reg = token_regularizer(tokens, w, word_norms)
    loss = mse + reg
    parts = {"mse": float(mse.detach()), "reg": float(reg.detach())}
    if w.use_class and class_targets:
        cls = sum(class_loss(tokens[h], *class_targets[h]) for h in class_targets) / len(class_targets)
        loss = loss + w.class_ * cls
        parts["class"] = float(cls.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts
