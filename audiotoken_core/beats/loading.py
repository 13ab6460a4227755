"""Reading official BEATs ``.pt`` checkpoints and our ``.safetensors`` form, and writing the latter."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..file_format import is_safetensors
from ..labels import label_dict_json, read_label_dict
from ..safeload import load_torch_checkpoint, read_safetensors, write_safetensors
from .config import BEATsConfig
from .model import BEATs

CFG_METADATA_KEY = "beats_cfg"
LABEL_DICT_METADATA_KEY = "label_dict"
FORMAT_NAME = "audiotoken-beats"
FORMAT_VERSION = "1"

_REL_POS_KEY = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight")
_SHARED_TABLE = "encoder.relative_attention_bias.weight"
_OFFICIAL_TABLE = "encoder.layers.0.self_attn.relative_attention_bias.weight"
_OFFICIAL_POS_CONV = "encoder.pos_conv.0."
_POS_CONV = "encoder.pos_conv."
# torch >= 2.1 re-saves nn.utils.parametrizations.weight_norm under these names
_PARAMETRIZED = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}


def official_to_internal(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Official state-dict keys -> ours (the AudioSet ``predictor`` head keeps its official keys).

    The official model holds one relative-position table shared by all layers, which appears under every
    layer's key; it is kept once, after checking the copies really are identical.
    """
    out: dict[str, torch.Tensor] = {}
    tables: dict[int, torch.Tensor] = {}
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source}: state-dict entry {key!r} is a {type(tensor).__name__}, not a tensor")
        match = _REL_POS_KEY.fullmatch(key)
        if match:
            tables[int(match.group(1))] = tensor
        elif key.startswith(_OFFICIAL_POS_CONV):
            name = key[len(_OFFICIAL_POS_CONV) :]
            out[_POS_CONV + _PARAMETRIZED.get(name, name)] = tensor
        else:
            out[key] = tensor
    if tables:
        if 0 not in tables:
            raise ValueError(f"{source}: relative-position table of layer 0 is missing ({_OFFICIAL_TABLE})")
        first = tables[0]
        for index, table in sorted(tables.items()):
            if table is not first and not torch.equal(table, first):
                raise ValueError(
                    f"{source}: the relative-position tables of layers 0 and {index} differ; "
                    "BEATs shares one table between all layers"
                )
        out[_SHARED_TABLE] = first
    return out


def internal_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our keys -> official ones, with the shared table written once, under layer 0."""
    out = {}
    for key, tensor in state.items():
        if key == _SHARED_TABLE:
            out[_OFFICIAL_TABLE] = tensor
        elif key.startswith(_POS_CONV):
            out[_OFFICIAL_POS_CONV + key[len(_POS_CONV) :]] = tensor
        else:
            out[key] = tensor
    return out


def build_beats(
    cfg: BEATsConfig,
    state: dict[str, torch.Tensor],
    source: str = "state dict",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    label_dict: dict | str | None = None,
) -> BEATs:
    """An eval-mode, frozen BEATs holding ``state`` (official keys), with the AudioSet head if ``state`` has one.

    The module is built on the meta device and takes the given tensors over (``assign=True``), so no second
    copy of the 90M weights is ever allocated; only moving to ``device``/``dtype`` copies, one tensor at a time.
    """
    try:
        with torch.device("meta"):
            model = BEATs(cfg, with_head=any(key.startswith("predictor.") for key in state))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    internal = official_to_internal(state, source)
    try:
        model.load_state_dict(internal, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(f"{source}: weights do not match the BEATs cfg stored with them: {exc}") from None
    del internal
    model.label_dict = read_label_dict(label_dict, source)
    model.requires_grad_(False)
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def load_beats(
    path: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> BEATs:
    """Load an official BEATs ``.pt`` (``{'cfg', 'model', 'label_dict'?}``) or our ``.safetensors``.

    The config always comes from the file: the ``BEATsConfig`` defaults are not those of any release.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BEATs weight file not found: {path}")
    if is_safetensors(path):
        state, meta = read_safetensors(path)
        if CFG_METADATA_KEY not in meta:
            raise ValueError(
                f"{path.name}: safetensors file has no '{CFG_METADATA_KEY}' metadata; it is not a BEATs file written "
                "by save_beats_safetensors"
            )
        try:
            cfg = BEATsConfig.from_json(meta[CFG_METADATA_KEY])
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None
        label_dict = meta.get(LABEL_DICT_METADATA_KEY)
    else:
        checkpoint = load_torch_checkpoint(path)
        if not isinstance(checkpoint.get("cfg"), dict) or not isinstance(checkpoint.get("model"), dict):
            raise ValueError(
                f"{path.name}: not an official BEATs checkpoint (expected a dict with 'cfg' and 'model', "
                f"found keys {sorted(map(str, checkpoint))[:10]})"
            )
        cfg = BEATsConfig.from_dict(checkpoint["cfg"])
        state = checkpoint["model"]
        label_dict = checkpoint.get("label_dict")
        del checkpoint
    return build_beats(cfg, state, source=path.name, device=device, dtype=dtype, label_dict=label_dict)


def save_beats_safetensors(model_or_checkpoint: BEATs | str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write BEATs as ``.safetensors`` (official keys, one copy of the shared table, cfg and label_dict JSON in
    metadata)."""
    if isinstance(model_or_checkpoint, BEATs):
        model, source = model_or_checkpoint, "model"
    else:
        model, source = load_beats(model_or_checkpoint), Path(model_or_checkpoint).name
    tensors = {k: v.detach().cpu() for k, v in internal_to_official(model.state_dict()).items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        CFG_METADATA_KEY: model.cfg.to_json(),
        "source": source,
    }
    if model.label_dict is not None:
        metadata[LABEL_DICT_METADATA_KEY] = label_dict_json(model.label_dict)
    return write_safetensors(tensors, path, metadata)
