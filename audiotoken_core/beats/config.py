"""BEATs hyper-parameters as stored in the ``cfg`` dict of an official checkpoint."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType
from typing import Any

# The activations our layers implement; "glu" would need a differently shaped fc1 (GLU_Linear) and no
# released BEATs checkpoint uses it.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_accurate", "relu", "tanh", "linear")

# The cfg of the released iter3+ AS2M checkpoint AudioToken uses (BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt,
# in sources.SOURCES): what "full-size BEATs" means (90 M parameters, the 527-class AudioSet head). Read-only: copy
# it (`dict(...)`) to change a field.
ITER3_AS2M_CFG = MappingProxyType({
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 0.6,
    "layer_norm_first": False,
    "deep_norm": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "finetuned_model": True,
    "predictor_dropout": 0.0,
    "predictor_class": 527,
})


@dataclasses.dataclass
class BEATsConfig:
    """Field names and defaults follow the official ``BEATsConfig`` so a file's ``cfg`` dict maps 1:1.

    The defaults are NOT those of the released checkpoints (e.g. ``max_distance`` 1280 vs 800): always build
    the config from the file with :meth:`from_dict`. Keys this class does not know are kept in ``extra`` so a
    conversion writes the file's cfg back unchanged.
    """

    input_patch_size: int = -1
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "BEATsConfig":
        if not isinstance(cfg, dict):
            raise ValueError(f"BEATs cfg must be a dict, got {type(cfg).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in cfg.items() if k in known},
            extra={k: v for k, v in cfg.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BEATsConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"BEATs cfg metadata is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @property
    def head_dim(self) -> int:
        return self.encoder_embed_dim // self.encoder_attention_heads

    def validate(self) -> None:
        """Reject configurations this inference-only implementation does not reproduce faithfully."""
        problems = []
        if self.input_patch_size <= 0:
            problems.append(f"input_patch_size must be positive (got {self.input_patch_size})")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            problems.append(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            problems.append(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by conv_pos_groups {self.conv_pos_groups}"
            )
        if self.layer_norm_first:
            # Every released BEATs checkpoint is post-LN (DeepNorm); the pre-LN path is untested upstream too.
            problems.append("layer_norm_first=True (pre-LN) is not supported")
        if self.activation_fn not in SUPPORTED_ACTIVATIONS:
            supported = ", ".join(SUPPORTED_ACTIVATIONS)
            problems.append(f"activation_fn {self.activation_fn!r} is not supported ({supported})")
        if self.relative_position_embedding and (self.num_buckets < 4 or self.max_distance <= self.num_buckets // 4):
            problems.append(f"num_buckets {self.num_buckets} / max_distance {self.max_distance} are inconsistent")
        if problems:
            raise ValueError("unsupported BEATs config: " + "; ".join(problems))
