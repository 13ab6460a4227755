"""What an Embedder file says about the audio it expects, kept apart from the weights themselves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from ..audio import TARGET_RATE, WINDOW_SECONDS

OFFICIAL_AUDIO_ENCODER = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2"
DEFAULT_LAYERS = (4, 8, 12)

# The CLIP text encoders an Embedder head can target, by the width of their token embeddings.
CLIP_WIDTHS = {"l": 768, "h": 1024, "g": 1280}
WIDTH_TO_CLIP = {width: name for name, width in CLIP_WIDTHS.items()}


@dataclass
class EmbedderMeta:
    """Everything needed to feed an Embedder correctly, beyond its tensor shapes.

    `layers` are 1-based BEATs transformer layers whose outputs are concatenated, so
    `encoder_width * len(layers)` must equal the Embedder's input width.
    """

    audio_encoder: str = OFFICIAL_AUDIO_ENCODER
    layers: tuple[int, ...] = DEFAULT_LAYERS
    encoder_width: int = 768
    widths: dict[str, int] = field(default_factory=lambda: {"l": 768})
    n_tokens: int = 1
    window_seconds: float = WINDOW_SECONDS
    sample_rate: int = TARGET_RATE
    training: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self.layers = tuple(int(x) for x in self.layers)
        self.widths = {str(k): int(v) for k, v in self.widths.items()}
        self.encoder_width = int(self.encoder_width)
        self.n_tokens = int(self.n_tokens)
        self.window_seconds = float(self.window_seconds)
        self.sample_rate = int(self.sample_rate)
        self.training = dict(self.training)
        if not self.layers or min(self.layers) < 1:
            raise ValueError(f"layers are 1-based BEATs layer numbers, got {list(self.layers)}")
        if self.encoder_width < 1 or self.n_tokens < 1 or self.sample_rate < 1 or self.window_seconds <= 0:
            raise ValueError(
                f"invalid embedder metadata: encoder_width={self.encoder_width}, n_tokens={self.n_tokens}, "
                f"sample_rate={self.sample_rate}, window_seconds={self.window_seconds}"
            )

    @property
    def in_dim(self) -> int:
        return self.encoder_width * len(self.layers)

    def with_(self, **changes) -> "EmbedderMeta":
        return replace(self, **changes)

    def to_metadata(self) -> dict[str, str]:
        """safetensors stores only strings; lists and dicts go in as JSON."""
        return {
            "audio_encoder": self.audio_encoder,
            "layers": json.dumps(list(self.layers)),
            "encoder_width": str(self.encoder_width),
            "widths": json.dumps(self.widths),
            "n_tokens": str(self.n_tokens),
            "window_seconds": repr(self.window_seconds),
            "sample_rate": str(self.sample_rate),
            "training": json.dumps(self.training),
            "source": self.source,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], where: str = "metadata") -> "EmbedderMeta":
        """Missing fields take the official defaults; malformed ones are an error, never guessed."""
        kwargs = {}
        try:
            if "audio_encoder" in meta:
                kwargs["audio_encoder"] = meta["audio_encoder"]
            if "layers" in meta:
                kwargs["layers"] = tuple(json.loads(meta["layers"]))
            if "encoder_width" in meta:
                kwargs["encoder_width"] = int(meta["encoder_width"])
            if "widths" in meta:
                kwargs["widths"] = dict(json.loads(meta["widths"]))
            if "n_tokens" in meta:
                kwargs["n_tokens"] = int(meta["n_tokens"])
            if "window_seconds" in meta:
                kwargs["window_seconds"] = float(meta["window_seconds"])
            if "sample_rate" in meta:
                kwargs["sample_rate"] = int(float(meta["sample_rate"]))
            if "training" in meta:
                kwargs["training"] = dict(json.loads(meta["training"]))
            if "source" in meta:
                kwargs["source"] = meta["source"]
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: malformed embedder metadata ({exc})") from exc


def default_meta(in_dim: int, widths: dict[str, int], n_tokens: int = 1) -> EmbedderMeta:
    """The official setup (BEATs layers 4, 8, 12 concatenated) for an input of `in_dim` features."""
    if in_dim % len(DEFAULT_LAYERS):
        raise ValueError(
            f"input width {in_dim} is not {len(DEFAULT_LAYERS)} concatenated BEATs layers; "
            "pass an EmbedderMeta that states `layers` and `encoder_width`"
        )
    return EmbedderMeta(encoder_width=in_dim // len(DEFAULT_LAYERS), widths=dict(widths), n_tokens=n_tokens)
