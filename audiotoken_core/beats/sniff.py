"""What a weight file in an audio-encoder folder is, read from its header or pickle index only.

ComfyUI keeps its own audio encoders (wav2vec2, Whisper) in the folder where BEATs lives, and a file list
is rebuilt on every UI refresh, so this must not read tensor data: a `.safetensors` header gives key names
and shapes, and a zip `torch.save` file opened with `mmap=True` maps its tensors without reading them.
Results are cached per file state (path, mtime, size).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import file_format
from ..safeload import load_torch_checkpoint
from .loading import CFG_METADATA_KEY

# Keys that only BEATs has: the patch embedding and the gated relative-position attention.
_BEATS_KEYS = ("patch_embedding.weight", "encoder.layers.0.self_attn.grep_linear.weight")
# How ComfyUI's own audio-encoder loader recognises its models (comfy/audio_encoders/audio_encoders.py).
_WAV2VEC2_KEY = "encoder.layer_norm.bias"
_WAV2VEC2_PREFIX = "wav2vec2."
_WHISPER_KEY = "model.encoder.embed_positions.weight"
_WAV2VEC2_SIZES = {768: "base", 1024: "large"}
# The embedder's attentive pooling, in the official file and (under a `<clip>.` prefix) in ours
_EMBEDDER_KEY = "fga.un_models.0.embed.weight"


@dataclass(frozen=True)
class EncoderFile:
    """`kind` is one of: beats, beats_without_cfg, wav2vec2, whisper, embedder, other, unreadable."""

    kind: str
    description: str  # reads after "the file is ...", e.g. "a wav2vec2 audio encoder (base, 768 wide)"

    @property
    def is_beats(self) -> bool:
        return self.kind == "beats"


BEATS = EncoderFile("beats", "a BEATs checkpoint")


def identify_encoder_file(path: str | os.PathLike) -> EncoderFile:
    """What `path` holds. A corrupt or foreign file gives an `unreadable` answer saying why, not an error;
    only a file that cannot be opened at all raises OSError."""
    st = os.stat(path)
    return _identify(os.path.realpath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _identify(path: str, mtime_ns: int, size: int) -> EncoderFile:
    # mtime and size are part of the cache key only: a replaced file is looked at again
    path = Path(path)
    if size == 0:
        return _unreadable("the file is empty (0 bytes)")
    kind = file_format.sniff(path)
    try:
        if kind == file_format.SAFETENSORS:
            return _from_safetensors(path)
        if kind in file_format.TORCH_FORMATS:
            return _from_torch_file(path)
    except ValueError as exc:
        return _unreadable(str(exc).removeprefix(f"{path.name}: "))
    return _unreadable("neither a .safetensors file nor a torch checkpoint")


def classify_state_dict(shapes: dict[str, tuple[int, ...]]) -> EncoderFile:
    """Name the model a bare state dict belongs to, from its key names and shapes."""
    keys = {k.removeprefix(_WAV2VEC2_PREFIX): shape for k, shape in shapes.items()}
    # before wav2vec2: BEATs has an `encoder.layer_norm` too
    if all(k in keys for k in _BEATS_KEYS):
        return EncoderFile("beats_without_cfg", "BEATs weights without the 'cfg' that says how to build the model")
    if _WAV2VEC2_KEY in keys:
        width = keys[_WAV2VEC2_KEY][0] if keys[_WAV2VEC2_KEY] else 0
        size = _WAV2VEC2_SIZES.get(width, "unknown size")
        return EncoderFile("wav2vec2", f"a wav2vec2 audio encoder ({size}, {width} wide)")
    if _WHISPER_KEY in keys:
        return EncoderFile("whisper", "a Whisper audio encoder")
    if any(k.endswith(_EMBEDDER_KEY) for k in keys):
        return EncoderFile("embedder", "an AudioToken embedder, not an audio encoder")
    sample = ", ".join(repr(k) for k in sorted(shapes)[:3]) or "none"
    return EncoderFile("other", f"not an audio encoder AudioToken knows ({len(shapes)} tensors, e.g. {sample})")


def _from_safetensors(path: Path) -> EncoderFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            if CFG_METADATA_KEY in (f.metadata() or {}):
                return BEATS
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ValueError(f"not a valid .safetensors file, it may be truncated ({exc})") from exc
    return classify_state_dict(shapes)


def _from_torch_file(path: Path) -> EncoderFile:
    # The loader's own reader, so both agree on what is readable; zip files are memory-mapped (header only).
    # Pre-2020 non-zip pickles cannot be mapped and are read once, then cached like the rest.
    checkpoint = load_torch_checkpoint(path)
    if isinstance(checkpoint.get("cfg"), dict) and isinstance(checkpoint.get("model"), dict):
        return BEATS
    state = checkpoint.get("state_dict") if isinstance(checkpoint.get("state_dict"), dict) else checkpoint
    return classify_state_dict({k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)})


def _unreadable(reason: str) -> EncoderFile:
    return EncoderFile("unreadable", f"a file AudioToken cannot read ({reason})")
