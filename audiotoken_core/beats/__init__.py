"""BEATs audio encoder (Chen et al. 2022), re-implemented for inference; reads the official checkpoints."""

from .config import ITER3_AS2M_CFG, BEATsConfig
from .fbank import compute_fbank, num_frames, num_tokens
from .loading import build_beats, load_beats, save_beats_safetensors
from .model import BEATs

__all__ = [
    "BEATs",
    "BEATsConfig",
    "ITER3_AS2M_CFG",
    "build_beats",
    "compute_fbank",
    "load_beats",
    "num_frames",
    "num_tokens",
    "save_beats_safetensors",
]
