"""The AudioToken Embedder: MLP over BEATs features, then attentive pooling over time into text-encoder tokens.

Parameter names and shapes are those of the official `FGAEmbedder` (its attention layers are Conv1d with
kernel 1, so their weights are `[out, in, 1]`), which lets `embedder_learned_embeds.bin` load unchanged.
The arithmetic runs as matrix products on `[B, N, C]` tensors, which avoids the transposes a Conv1d needs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .meta import (
    CLIP_WIDTHS,
    EmbedderMeta,
    default_meta,
    embedding_key,
    tokens_per_head,
)

# The official unary branch calls F.dropout with its defaults.
UNARY_DROPOUT = 0.5


class Pointwise(nn.Module):
    """A kernel-1 Conv1d's parameters (`weight [out, in, 1]`), applied as a linear map over the last axis."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # Conv1d's default initialisation, so fresh heads start where the official ones did
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.weight.shape[1])
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.squeeze(-1), self.bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, bias={self.bias is not None}"


class UnaryPotential(nn.Module):
    """Per-time-step score from the step alone; one score row per output token."""

    def __init__(self, dim: int, n_tokens: int):
        super().__init__()
        self.embed = Pointwise(dim, dim)
        self.feature_reduce = Pointwise(dim, n_tokens)

    def forward(self, y: torch.Tensor, dropout: bool) -> torch.Tensor:
        h = F.relu(self.embed(y))
        if dropout:
            # Some RNG backends fill the mask in memory order; the reference drops out a contiguous [B, D, N]
            # tensor, so only that layout reproduces its mask (and its faithful output) for a given seed.
            h = F.dropout(h.transpose(1, 2).contiguous(), p=UNARY_DROPOUT, training=True).transpose(1, 2)
        return self.feature_reduce(h).transpose(1, 2)  # [B, K, N]


class SelfPotential(nn.Module):
    """Mean cosine similarity of each time step to all (valid) steps, in two learned projections."""

    def __init__(self, dim: int):
        super().__init__()
        self.embed_X = Pointwise(dim, dim)
        self.embed_Y = Pointwise(dim, dim)

    def forward(self, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        xn = F.normalize(self.embed_X(y), dim=-1)
        yn = F.normalize(self.embed_Y(y), dim=-1)
        # mean_j <x_i, y_j> == <x_i, mean_j y_j>: O(N·D) instead of building the N×N similarity matrix
        if mask is None:
            y_mean = yn.mean(dim=1)
        else:
            m = mask.unsqueeze(-1).to(yn.dtype)
            y_mean = (yn * m).sum(dim=1) / m.sum(dim=1)
        return torch.bmm(xn, y_mean.unsqueeze(-1)).squeeze(-1)  # [B, N]


class AttentivePooling(nn.Module):
    """FGA attention restricted to what AudioToken uses: one utility, unary + self potentials, no prior.

    The containers mirror the reference module so the parameter paths match (`un_models.0`, `pp_models.0`,
    `reduce_potentials.0`). Token k mixes row k of the unary scores with the shared self score.
    """

    def __init__(self, dim: int, n_tokens: int = 1):
        super().__init__()
        self.un_models = nn.ModuleList([UnaryPotential(dim, n_tokens)])
        self.pp_models = nn.ModuleDict({"0": SelfPotential(dim)})
        self.reduce_potentials = nn.ModuleList([Pointwise(2, n_tokens, bias=False)])

    def forward(self, y: torch.Tensor, mask: torch.Tensor | None, dropout: bool) -> torch.Tensor:
        unary = self.un_models[0](y, dropout)  # drawn first: the reference consumes the RNG in this order
        pairwise = self.pp_models["0"](y, mask)
        mix = self.reduce_potentials[0].weight.squeeze(-1)  # [K, 2]: (unary, pairwise) weights per token
        logits = mix[:, 0, None] * unary + mix[:, 1, None] * pairwise.unsqueeze(1)
        if mask is not None:
            logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return torch.bmm(weights, y)  # [B, K, D]


class EmbedderHead(nn.Module):
    """One official `FGAEmbedder`: fc1 → GELU → fc2 → attentive pooling, for one CLIP token width."""

    def __init__(self, in_dim: int, out_dim: int, n_tokens: int = 1, hidden_dim: int | None = None):
        super().__init__()
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.fga = AttentivePooling(out_dim, n_tokens)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, dropout: bool) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(x)))
        if mask is not None:
            # padded steps get zero weight, but their values still enter products; keep them finite
            y = y.masked_fill(~mask.unsqueeze(-1), 0.0)
        return self.fga(y, mask, dropout)


class AudioEmbedder(nn.Module):
    """BEATs features `[B, N, in_dim]` → `n_tokens[head]` tokens for each text encoder it has a head for.

    `heads` maps a head name to an independent head: the host's embedding key of the encoder, CLIP's without
    `clip_` (`l` 768, `h` 1024, `g` 1280, `t5xxl` 4096, `qwen25_7b` 3584, `qwen3_4b` 2560; see
    `meta.HOST_KEY_WIDTHS`). `n_tokens` is one count for all heads or `{head: count}`; `self.n_tokens` is
    always the dict. The official unary dropout is active even in eval mode, which makes its tokens random;
    here it runs only in training unless `faithful_dropout` is set.
    """

    def __init__(
        self,
        in_dim: int,
        widths: dict[str, int],
        n_tokens: dict[str, int] | int = 1,
        hidden_dim: int | None = None,
        meta: EmbedderMeta | None = None,
        faithful_dropout: bool = False,
    ):
        super().__init__()
        if not widths:
            raise ValueError("an AudioEmbedder needs at least one head (widths is empty)")
        for name, width in widths.items():
            if not name or "." in name or not name.isidentifier():
                raise ValueError(f"head name {name!r} must be a plain identifier such as 'l', 'g' or 't5xxl'")
            if name.startswith("clip_") and name[len("clip_"):] in CLIP_WIDTHS:
                raise ValueError(f"name the head for the host's {name} {name[len('clip_'):]!r}, as the "
                                 "official release and every embedder file do")
            if int(width) < 1:
                raise ValueError(f"head {name!r}: token width must be positive, got {width}")
        counts = tokens_per_head(n_tokens, widths)
        if int(in_dim) < 1 or (hidden_dim is not None and int(hidden_dim) < 1):
            raise ValueError(f"invalid widths: in_dim={in_dim}, hidden_dim={hidden_dim}")

        self.in_dim = int(in_dim)
        self.hidden_dim = self.in_dim if hidden_dim is None else int(hidden_dim)
        self.widths = {str(k): int(v) for k, v in widths.items()}
        self.n_tokens = counts
        self.faithful_dropout = bool(faithful_dropout)
        self.heads = nn.ModuleDict(
            {
                name: EmbedderHead(self.in_dim, width, self.n_tokens[name], self.hidden_dim)
                for name, width in self.widths.items()
            }
        )
        meta = default_meta(self.in_dim, self.widths, self.n_tokens) if meta is None else meta
        self.meta = _checked_meta(meta, self.in_dim, self.widths, self.n_tokens)

    @property
    def head_names(self) -> list[str]:
        return list(self.heads.keys())

    @property
    def embedding_keys(self) -> dict[str, str]:
        """Head -> the host's textual-inversion key it serves (`l` -> `clip_l`, `t5xxl` -> `t5xxl`)."""
        return {name: embedding_key(name) for name in self.heads}

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        """One head: `Tensor[B, n_tokens, D]`; several: `dict[name, Tensor[B, n_tokens[name], D]]`."""
        out = self.forward_dict(features, mask)
        return next(iter(out.values())) if len(out) == 1 else out

    def forward_dict(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`mask[B, N]` is True at valid time steps; padded steps take no part in the pooling."""
        self._check_inputs(features, mask)
        dropout = self.training or self.faithful_dropout
        return {name: head(features, mask, dropout) for name, head in self.heads.items()}

    def _check_inputs(self, features: torch.Tensor, mask: torch.Tensor | None):
        if features.dim() != 3 or features.shape[-1] != self.in_dim:
            raise ValueError(
                f"the embedder expects features [batch, time, {self.in_dim}], got {list(features.shape)}"
            )
        if features.shape[1] == 0:
            raise ValueError("the embedder got features with no time steps")
        if mask is None:
            return
        if mask.dtype != torch.bool or tuple(mask.shape) != tuple(features.shape[:2]):
            raise ValueError(
                f"mask must be a bool tensor of shape {list(features.shape[:2])} (True = valid), "
                f"got {mask.dtype} {list(mask.shape)}"
            )
        if not bool(mask.any(dim=1).all()):
            raise ValueError("mask: every batch item needs at least one valid time step")

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, widths={self.widths}, "
            f"n_tokens={self.n_tokens}, faithful_dropout={self.faithful_dropout}"
        )


def _checked_meta(meta: EmbedderMeta, in_dim: int, widths: dict[str, int], n_tokens: dict[str, int]) -> EmbedderMeta:
    """`widths` and `n_tokens` follow from the weights, so they are taken from there rather than trusted."""
    if meta.in_dim != in_dim:
        raise ValueError(
            f"metadata says {len(meta.layers)} BEATs layers of width {meta.encoder_width} "
            f"({meta.in_dim} features) but the embedder takes {in_dim}"
        )
    return meta.with_(widths=dict(widths), n_tokens=n_tokens)
