"""A random wav2vec2-base audio encoder laid out as ComfyUI's own Audio Encoder Loader reads it.

Keys and shapes come from the host's `comfy.audio_encoders.wav2vec2.Wav2Vec2Model`, built on the meta device
with the base config the host picks for `encoder.layer_norm.bias` of width 768, so the file always matches
the host version under test. The host fixes the size by that width (12 layers, 95 M parameters); fp16 keeps
the file at about 190 MB.

Needs ComfyUI importable (see tests/host/host_env.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

# comfy/audio_encoders/audio_encoders.py, branch `embed_dim == 768`
BASE_CONFIG = {"embed_dim": 768, "num_heads": 12, "num_layers": 12, "conv_norm": False, "conv_bias": False,
               "do_normalize": False, "do_stable_layer_norm": False}
WIDTH = 768


def wav2vec2_base_shapes() -> dict[str, torch.Size]:
    import comfy.ops
    from comfy.audio_encoders.wav2vec2 import Wav2Vec2Model

    with torch.device("meta"):
        model = Wav2Vec2Model(**BASE_CONFIG, operations=comfy.ops.disable_weight_init)
    return {k: v.shape for k, v in model.state_dict().items()}


def write_random_wav2vec2_base(path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Write the random wav2vec2-base `.safetensors` and return its path."""
    import comfy.utils
    from testkit.comfy import random_tensor

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    sd = {key: random_tensor(key, tuple(shape), g).to(dtype) for key, shape in wav2vec2_base_shapes().items()}
    comfy.utils.save_torch_file(sd, str(path))
    return path
