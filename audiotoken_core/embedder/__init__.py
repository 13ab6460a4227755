"""The AudioToken Embedder (BEATs features → CLIP input tokens) and its file formats."""

from .formats import (
    FORMAT_NAME,
    FORMAT_VERSION,
    OFFICIAL_KEYS,
    embedder_from_official_state_dict,
    embedder_from_safetensors,
    embedder_tensors,
    load_embedder,
    official_shapes,
    official_state_dict,
    save_embedder,
)
from .meta import CLIP_WIDTHS, DEFAULT_LAYERS, OFFICIAL_AUDIO_ENCODER, EmbedderMeta, default_meta
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
    "OFFICIAL_AUDIO_ENCODER",
    "OFFICIAL_KEYS",
    "default_meta",
    "embedder_from_official_state_dict",
    "embedder_from_safetensors",
    "embedder_tensors",
    "load_embedder",
    "official_shapes",
    "official_state_dict",
    "save_embedder",
]
