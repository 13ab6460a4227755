"""BEATs audio transformer (inference only): patch embedding, conv positional encoding, post-LN DeepNorm layers
with gated relative-position attention.

Parameter names follow the official checkpoint except two places, translated by ``loading.py``: the positional
conv lives at ``encoder.pos_conv.*`` (official ``encoder.pos_conv.0.*``) and the relative-position table, which
the official model shares between all layers, is stored once as ``encoder.relative_attention_bias``.

Dropout, layer drop and layer-wise gradient decay are training-time devices of the original and are not
implemented: the encoder is frozen wherever this package uses it, and the outputs are deterministic.

Fine-tuned checkpoints also hold the AudioSet head (``predictor``, official name and keys), which ``classify``
applies as the official ``extract_features`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..sources import official
from .config import BEATsConfig
from .fbank import compute_fbank, min_samples, num_tokens, valid_lengths


def _activation(name: str):
    if name == "gelu":
        # The original evaluates GELU in float32 even for half-precision activations.
        return lambda x: F.gelu(x.float()).type_as(x)
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unsupported activation {name!r}")


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5-style bidirectional buckets ``[length, length]`` of (key position - query position).

    Computed on the CPU in float32 with the original's operation order, so the integer bucket boundaries are
    exactly the original's whatever device the model runs on.
    """
    pos = torch.arange(length, dtype=torch.long)
    rel = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    buckets = (rel > 0).to(torch.long) * half
    dist = rel.abs()
    max_exact = half // 2
    # clamp keeps log() finite at distance 0; those entries take the exact branch anyway
    scaled = torch.log(dist.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
    large = (max_exact + scaled.to(torch.long)).clamp(max=half - 1)
    return buckets + torch.where(dist < max_exact, dist, large)


class PositionalConv(nn.Module):
    """Grouped conv over time added to the patch tokens; the kernel is weight-normalised over dim 2.

    ``weight_g``/``weight_v`` stay separate (as in the file) and the kernel is rebuilt with the same
    ``torch._weight_norm`` call that ``nn.utils.weight_norm`` uses, so results match the original bit for bit
    and conversions round-trip exactly.
    """

    def __init__(self, dim: int, kernel_size: int, groups: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.groups = groups
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel_size))
        self.bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Only reached when a model is built without a checkpoint; mirrors the original's init so such a model
        # is usable rather than filled with uninitialised memory.
        nn.init.normal_(self.weight_v, std=math.sqrt(4 / (self.kernel_size * self.weight_v.shape[0])))
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2)
        y = F.conv1d(x.transpose(1, 2), weight, self.bias, padding=self.kernel_size // 2, groups=self.groups)
        if self.kernel_size % 2 == 0:
            # symmetric padding of an even kernel yields one extra step; the original drops the last one
            y = y[..., :-1]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    # A seam, not a setting: benchmarks/bench_attention.py puts the original's explicit arithmetic here to time
    # both in one run.
    attend = staticmethod(F.scaled_dot_product_attention)

    def __init__(self, dim: int, heads: int, gated_rel_pos: bool):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.gated = gated_rel_pos
        if gated_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(
        self, x: torch.Tensor, pos_bias: torch.Tensor | None, key_bias: torch.Tensor | None
    ) -> torch.Tensor:
        batch, length, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        bias = None
        if pos_bias is not None:
            if self.gated:
                # per-query gate from the unscaled query of each head
                gates = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, length, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * pos_bias
            else:
                bias = pos_bias.unsqueeze(0)
        if key_bias is not None:
            bias = key_bias if bias is None else bias + key_bias
        # The original subtracts the row max and rescales by 32 before softmax only to avoid fp16 overflow;
        # softmax is shift-invariant, so plain scaled attention with the bias as an additive mask is equal.
        out = self.attend(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class EncoderLayer(nn.Module):
    """Post-LN block; DeepNorm up-weights the residual by ``alpha`` (1 without DeepNorm)."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = SelfAttention(dim, cfg.encoder_attention_heads, cfg.gru_rel_pos)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _activation(cfg.activation_fn)
        self.alpha = math.pow(2 * cfg.encoder_layers, 1 / 4) if cfg.deep_norm else 1.0

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor | None, key_bias: torch.Tensor | None) -> torch.Tensor:
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, pos_bias, key_bias))
        return self.final_layer_norm(x * self.alpha + self.fc2(self.activation(self.fc1(x))))


# Clip lengths in use at once (the 10 s window, a training window, a short tail); each table is N x N int64.
_BUCKET_TABLES_KEPT = 4


class Encoder(nn.Module):
    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.cfg = cfg
        self.pos_conv = PositionalConv(dim, cfg.conv_pos, cfg.conv_pos_groups)
        self.layer_norm = nn.LayerNorm(dim)
        self.relative_attention_bias = (
            nn.Embedding(cfg.num_buckets, cfg.encoder_attention_heads) if cfg.relative_position_embedding else None
        )
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self._buckets: dict[tuple[int, torch.device], torch.Tensor] = {}

    def position_bias(self, length: int, device: torch.device) -> torch.Tensor:
        """The relative-position bias ``[H, N, N]``, contiguous.

        The bucket table depends on the length only, so it is built once per length and stays on the device
        (no host work per call, and on a GPU no copy that makes the host wait mid-forward). Gathering from the
        transposed table yields the head-major layout directly: every layer multiplies this bias by its gates,
        which on a permuted view of an ``[N, N, H]`` lookup took ~4x as long (10 s clip, one CPU thread: the
        call's multiplies 94-115 ms, now 26-27 ms).
        """
        key = (length, device)
        buckets = self._buckets.get(key)
        if buckets is None:
            while len(self._buckets) >= _BUCKET_TABLES_KEPT:
                self._buckets.pop(next(iter(self._buckets)), None)
            buckets = relative_position_buckets(length, self.cfg.num_buckets, self.cfg.max_distance)
            buckets = self._buckets[key] = buckets.flatten().to(device)
        table = self.relative_attention_bias.weight.t().contiguous()  # [H, buckets]
        return table.index_select(1, buckets).view(-1, length, length)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> list[torch.Tensor]:
        key_bias = None
        if key_padding is not None:
            # zeroed pads equal the conv's own zero padding, so valid tokens see what an unpadded clip sees
            x = x.masked_fill(key_padding.unsqueeze(-1), 0.0)
            key_bias = torch.zeros(key_padding.shape, dtype=x.dtype, device=x.device)
            key_bias = key_bias.masked_fill(key_padding, float("-inf"))[:, None, None, :]
        x = self.layer_norm(x + self.pos_conv(x))

        pos_bias = None
        if self.relative_attention_bias is not None:
            pos_bias = self.position_bias(x.shape[1], x.device)

        outputs = []
        for layer in self.layers:
            x = layer(x, pos_bias, key_bias)
            outputs.append(x)
        return outputs


class BEATs(nn.Module):
    def __init__(self, cfg: BEATsConfig, with_head: bool = False):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        patch = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=patch, stride=patch, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (
            nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim) if cfg.embed_dim != cfg.encoder_embed_dim else None
        )
        self.encoder = Encoder(cfg)
        # The loader decides from the file's keys, not from cfg.finetuned_model: a fine-tuned cfg may come with
        # the head's weights stripped (AudioToken drops them, as did our conversions before they kept them).
        self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class) if with_head else None
        # Head index -> AudioSet MID (the file's `label_dict`), set by the loader; names live in ..labels.
        self.label_dict: dict[int, str] | None = None

    @property
    def embed_dim(self) -> int:
        return self.cfg.encoder_embed_dim

    @property
    def num_layers(self) -> int:
        return self.cfg.encoder_layers

    def tokens_for_samples(self, num_samples: int) -> int:
        """Patch tokens produced for a clip of ``num_samples`` at 16 kHz."""
        return num_tokens(num_samples, self.cfg.input_patch_size)

    def token_padding_mask(self, wave16k: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N]`` bool, True at token positions of ``extract_layers`` outputs that are padding."""
        counts = [self.tokens_for_samples(n) for n in valid_lengths(wave16k, padding_mask)]
        positions = torch.arange(max(counts))
        return positions[None, :] >= torch.tensor(counts)[:, None]

    def extract_layers(self, wave16k: torch.Tensor, padding_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Outputs ``[B, N, D]`` of every transformer layer, in order.

        ``padding_mask[B, T]`` (True at padded samples, padding at the end of each clip) lets clips of
        different lengths share a batch: N is the longest clip's token count, a shorter clip's tokens equal
        those of running it alone, and its padded token positions are zero.
        """
        if wave16k.dim() != 2:
            raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(wave16k.shape)}")
        param = self.patch_embedding.weight
        lengths = valid_lengths(wave16k, padding_mask)
        counts = [self.tokens_for_samples(n) for n in lengths]
        if min(counts) == 0:
            raise ValueError(
                f"every clip needs at least one {self.cfg.input_patch_size}-frame patch "
                f"({min_samples(self.cfg.input_patch_size)} samples at 16 kHz); valid lengths are {lengths}"
            )
        fbank, _ = compute_fbank(wave16k.to(param.device), lengths)

        x = self.patch_embedding(fbank.to(param.dtype).unsqueeze(1))  # [B, C, time patches, mel patches]
        x = x.flatten(2).transpose(1, 2)  # time-major tokens
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)

        key_padding = None
        if min(counts) != x.shape[1]:
            positions = torch.arange(x.shape[1], device=x.device)
            key_padding = positions[None, :] >= torch.tensor(counts, device=x.device)[:, None]
        outputs = self.encoder(x, key_padding)
        if key_padding is not None:
            outputs = [out.masked_fill(key_padding.unsqueeze(-1), 0.0) for out in outputs]
        return outputs

    def classify(self, wave16k: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """AudioSet class probabilities ``[B, predictor_class]`` (float32), as the official fine-tuned BEATs.

        The official ``extract_features`` applies the head to every patch of the last layer and takes the
        sigmoid of the mean logit over the clip's patches, padded patches left out. ``padding_mask`` means what
        it means for ``extract_layers``: a shorter clip in a padded batch scores as it does alone.
        """
        return self.probs_from_last_layer(self.extract_layers(wave16k, padding_mask)[-1], wave16k, padding_mask)

    def probs_from_last_layer(self, last: torch.Tensor, wave16k: torch.Tensor,
                              padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`classify` for a last layer ``extract_layers`` already gave, so callers that need the features too
        run BEATs once."""
        head = self.audioset_head()
        padded = self.token_padding_mask(wave16k, padding_mask).to(last.device)
        return torch.sigmoid(mean_over_patches(head(last), padded))

    def audioset_head(self) -> nn.Linear:
        """The head, or a ValueError saying why this checkpoint has none (`head_problem`)."""
        problem = self.head_problem()
        if problem is not None:
            raise ValueError(problem)
        return self.predictor

    def head_problem(self) -> str | None:
        """None when this checkpoint holds the AudioSet head that names sounds, else why it does not."""
        if self.predictor is not None:
            return None
        if self.cfg.finetuned_model:
            return ("this BEATs checkpoint has no AudioSet head: its cfg says it is fine-tuned, but the head's weights "
                    "(predictor.*) are not in the file, e.g. a .safetensors converted before conversions kept them; "
                    "convert the official .pt again")
        return ("this BEATs checkpoint has no AudioSet head (it is a pre-trained, not fine-tuned, checkpoint), so it "
                f"cannot name the sounds it hears; use a fine-tuned one such as {official('audio_encoder').name}")


def mean_over_patches(logits: torch.Tensor, padded: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` per-patch logits -> ``[B, C]`` mean over each clip's unpadded patches, in float32.

    The official code averages in the model's dtype; float32 only avoids an fp16 sum over ~500 patches losing
    digits. ``masked_fill`` (not a multiply) keeps whatever sits in padded rows out of the sum.
    """
    summed = logits.float().masked_fill(padded.unsqueeze(-1), 0.0).sum(dim=1)
    return summed / (~padded).sum(dim=1, keepdim=True)
