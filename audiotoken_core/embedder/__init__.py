"""The AudioToken Embedder (BEATs features → text-encoder input tokens, one head per encoder) and its files."""

from .formats import (
    FORMAT_NAME,
    FORMAT_VERSION,
    READ_VERSIONS,
    OFFICIAL_KEYS,
    embedder_from_official_state_dict,
    embedder_from_safetensors,
    embedder_tensors,
    load_embedder,
    official_shapes,
    official_state_dict,
    save_embedder,
)
from .meta import (
    CLIP_WIDTHS,
    DEFAULT_LAYERS,
    HOST_KEY_WIDTHS,
    OFFICIAL_AUDIO_ENCODER,
    EmbedderMeta,
    default_meta,
    embedding_key,
    head_name,
)
from .model import AudioEmbedder, AttentivePooling, EmbedderHead

__all__ = [
    "AudioEmbedder",
    "AttentivePooling",
    "CLIP_WIDTHS",
    "DEFAULT_LAYERS",
    "EmbedderHead",
    "EmbedderMeta",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HOST_KEY_WIDTHS",
    "OFFICIAL_AUDIO_ENCODER",
    "OFFICIAL_KEYS",
    "READ_VERSIONS",
    "default_meta",
    "embedder_from_official_state_dict",
    "embedder_from_safetensors",
    "embedder_tensors",
    "embedding_key",
    "head_name",
    "load_embedder",
    "official_shapes",
    "official_state_dict",
    "save_embedder",
]
