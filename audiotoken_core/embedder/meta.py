"""What an Embedder file says about the audio it expects, kept apart from the weights themselves."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..audio import WINDOW_SECONDS
from ..sources import official

# The audio encoder an embedder reads unless its metadata names another: the official BEATs file's name, less
# its extension.
OFFICIAL_AUDIO_ENCODER = os.path.splitext(official("audio_encoder").name)[0]
DEFAULT_LAYERS = (4, 8, 12)

# The host's textual-inversion keys (`SDTokenizer.embedding_key`) and widths (`embedding_size`) of the text
# encoders of today's families (ComfyUI 0.33.0): the one table a family names its heads from. A head is named by
# its encoder's key, CLIP's without `clip_` (`l`, as the official release and version-1 files name it); any other
# key names a head as it is.
CLIP_L, CLIP_H, CLIP_G = "clip_l", "clip_h", "clip_g"
T5XXL = "t5xxl"  # Flux.1, SD3.5, LTXV, PixArt
UMT5XXL = "umt5xxl"  # Wan
QWEN25_7B = "qwen25_7b"  # Qwen-Image
QWEN3_4B = "qwen3_4b"  # Z-Image, Flux.2 klein 4B
QWEN3_8B = "qwen3_8b"  # Flux.2 klein 9B
MISTRAL3_24B = "mistral3_24b"  # Flux.2 dev
HOST_KEY_WIDTHS = {
    CLIP_L: 768, CLIP_H: 1024, CLIP_G: 1280, T5XXL: 4096, UMT5XXL: 4096, QWEN25_7B: 3584, QWEN3_4B: 2560,
    QWEN3_8B: 4096, MISTRAL3_24B: 5120,
}
_CLIP_PREFIX = "clip_"

# The CLIP text encoders an Embedder head can target, by the width of their token embeddings.
CLIP_WIDTHS = {k[len(_CLIP_PREFIX):]: w for k, w in HOST_KEY_WIDTHS.items() if k.startswith(_CLIP_PREFIX)}
WIDTH_TO_CLIP = {width: name for name, width in CLIP_WIDTHS.items()}


def embedding_key(head: str) -> str:
    """The host's textual-inversion key of a head: `l` -> `clip_l`, `t5xxl` -> `t5xxl`."""
    return _CLIP_PREFIX + head if head in CLIP_WIDTHS else head


def head_name(key: str) -> str:
    """The head that serves the host's embedding key: `clip_l` -> `l`, `qwen25_7b` -> `qwen25_7b`."""
    short = key[len(_CLIP_PREFIX):] if key.startswith(_CLIP_PREFIX) else ""
    return short if short in CLIP_WIDTHS else key


def host_heads(*keys: str) -> tuple[str, ...]:
    """The heads that serve these host keys, in order: `host_heads(CLIP_L, T5XXL)` -> `("l", "t5xxl")`. A key
    that `HOST_KEY_WIDTHS` lacks is an error: a family's heads are always keys the host knows."""
    unknown = [k for k in keys if k not in HOST_KEY_WIDTHS]
    if unknown:
        raise ValueError(f"{unknown} are not host embedding keys ({', '.join(HOST_KEY_WIDTHS)})")
    return tuple(head_name(k) for k in keys)


def head_for_width(width: int, keys, default: str) -> str:
    """The head among host `keys` whose table width is `width` (the first such), else `default`'s (a key): how a
    family tells apart encoders that only their width names (SD1's CLIP-L from SD2's CLIP-H, klein 4B from 9B)."""
    for key in keys:
        if HOST_KEY_WIDTHS[key] == int(width):
            return head_name(key)
    return host_heads(default)[0]


def tokens_per_head(n_tokens, heads) -> dict[str, int]:
    """`n_tokens` as `{head: count}`: an int gives every head that count, a mapping must name every head."""
    heads = list(heads)
    if isinstance(n_tokens, Mapping):
        counts = {str(k): int(v) for k, v in n_tokens.items()}
        if set(counts) != set(heads):
            raise ValueError(f"n_tokens names heads {sorted(counts)}, the embedder has {sorted(heads)}")
        counts = {h: counts[h] for h in heads}
    else:
        counts = {h: int(n_tokens) for h in heads}
    bad = {h: n for h, n in counts.items() if n < 1}
    if bad:
        raise ValueError(f"n_tokens must be at least 1 per head, got {bad}")
    return counts


@dataclass
class EmbedderMeta:
    """Everything needed to feed an Embedder correctly, beyond its tensor shapes.

    `layers` are 1-based BEATs transformer layers whose outputs are concatenated, so
    `encoder_width * len(layers)` must equal the Embedder's input width. `n_tokens` is per head
    (`{head: count}`); an int given here means that count for every head of `widths`. `window_seconds` is
    the window its tokens are meant for: the nodes' and the core's default window. (No sample rate: BEATs
    reads 16 kHz only, so every path resamples to `audio.TARGET_RATE`; older files' `sample_rate` is ignored.)
    """

    audio_encoder: str = OFFICIAL_AUDIO_ENCODER
    layers: tuple[int, ...] = DEFAULT_LAYERS
    encoder_width: int = 768
    widths: dict[str, int] = field(default_factory=lambda: {"l": 768})
    n_tokens: dict[str, int] | int = 1
    window_seconds: float = WINDOW_SECONDS
    training: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self.layers = tuple(int(x) for x in self.layers)
        self.widths = {str(k): int(v) for k, v in self.widths.items()}
        self.encoder_width = int(self.encoder_width)
        self.n_tokens = tokens_per_head(self.n_tokens, self.widths)
        self.window_seconds = float(self.window_seconds)
        self.training = dict(self.training)
        if not self.layers or min(self.layers) < 1:
            raise ValueError(f"layers are 1-based BEATs layer numbers, got {list(self.layers)}")
        if self.encoder_width < 1 or self.window_seconds <= 0:
            raise ValueError(
                f"invalid embedder metadata: encoder_width={self.encoder_width}, n_tokens={self.n_tokens}, "
                f"window_seconds={self.window_seconds}"
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
            "n_tokens": json.dumps(self.n_tokens),
            "window_seconds": repr(self.window_seconds),
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
                # version 1 wrote one count for all heads ("2"), version 2 one per head ({"l": 1, "t5xxl": 4})
                count = json.loads(meta["n_tokens"])
                kwargs["n_tokens"] = dict(count) if isinstance(count, dict) else int(count)
            if "window_seconds" in meta:
                kwargs["window_seconds"] = float(meta["window_seconds"])
            if "training" in meta:
                kwargs["training"] = dict(json.loads(meta["training"]))
            if "source" in meta:
                kwargs["source"] = meta["source"]
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: malformed embedder metadata ({exc})") from exc


def default_meta(in_dim: int, widths: dict[str, int], n_tokens: dict[str, int] | int = 1) -> EmbedderMeta:
    """The official setup (BEATs layers 4, 8, 12 concatenated) for an input of `in_dim` features."""
    if in_dim % len(DEFAULT_LAYERS):
        raise ValueError(
            f"input width {in_dim} is not {len(DEFAULT_LAYERS)} concatenated BEATs layers; "
            "pass an EmbedderMeta that states `layers` and `encoder_width`"
        )
    return EmbedderMeta(encoder_width=in_dim // len(DEFAULT_LAYERS), widths=dict(widths), n_tokens=n_tokens)
