"""The AUDIOTOKEN_MODEL value: BEATs + Embedder under the host's memory management, cached per file state."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import replace

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import torch

from ..audiotoken_core import precision as precisions
from ..audiotoken_core.beats import load_beats
from ..audiotoken_core.embedder import load_embedder
from ..audiotoken_core.labels import beats_classes
from ..audiotoken_core.pipeline import AudioTokenizer, Encoded
from ..audiotoken_core.schedule import ScheduledTokens, encode_schedule

_CACHE_SIZE = 2
_cache: OrderedDict[tuple, "AudioTokenModel"] = OrderedDict()
_cache_lock = threading.Lock()


class _Pair(torch.nn.Module):
    """One module for the ModelPatcher, so both parts move between devices together."""

    def __init__(self, beats, embedder):
        super().__init__()
        self.beats = beats
        self.embedder = embedder


class AudioTokenModel:
    def __init__(self, beats, embedder, encoder_name: str, embedder_name: str, load_device, offload_device):
        self.tokenizer = AudioTokenizer(beats, embedder, beats_name=encoder_name, embedder_name=embedder_name)
        self.encoder_name = encoder_name
        self.embedder_name = embedder_name
        self.beats_dtype = next(beats.parameters()).dtype
        self.patcher = comfy.model_patcher.ModelPatcher(_Pair(beats, embedder), load_device=load_device,
                                                        offload_device=offload_device)

    @property
    def window_seconds(self) -> float:
        """The window Encode, Describe and Schedule use unless told otherwise: the embedder's own."""
        return self.tokenizer.window_seconds

    @property
    def widths(self) -> dict[str, int]:
        """`{head: width}` of the tokens it gives (what a schedule's conditioning will be as wide as)."""
        return self.tokenizer.widths

    def load(self) -> None:
        """Put the pair on its compute device under the host's memory management."""
        # Plain nn layers cannot be partially loaded in low-VRAM mode, and the pair is small: load it whole.
        mm.load_models_gpu([self.patcher], force_full_load=True)

    def encode(self, waveform, sample_rate, **kwargs) -> Encoded:
        """`AudioTokenizer.encode` (tokens and, with `heard=True`, what BEATs heard, in one pass) with the
        tokens on the CPU in float32, as every AUDIO_TOKENS value holds them."""
        self.load()
        out = self.tokenizer.encode(waveform, sample_rate, **kwargs)
        return replace(out, tokens={k: v.detach().to("cpu", torch.float32) for k, v in out.tokens.items()})

    def encode_schedule(self, waveform, sample_rate, **kwargs) -> ScheduledTokens:
        """`schedule.encode_schedule` through this pair (tokens on the model's device)."""
        self.load()
        return encode_schedule(self.tokenizer, waveform, sample_rate, **kwargs)

    def head_problem(self) -> str | None:
        """None when BEATs carries the AudioSet head that names sounds, else why not (`BEATs.head_problem`)."""
        return self.tokenizer.beats.head_problem()

    def classes(self):
        """What each output of the AudioSet head is (`labels.beats_classes`)."""
        return beats_classes(self.tokenizer.beats)


def host_progress():
    """`progress(done, total)` for core's long loops: moves the node's progress bar, and raises when Cancel was
    pressed (so a long encode stops between windows, not at its end)."""
    bar = comfy.utils.ProgressBar(1)

    def progress(done, total):
        bar.update_absolute(done, total)
        mm.throw_exception_if_processing_interrupted()

    return progress


def pick_dtype(precision: str, device) -> torch.dtype:
    """`audiotoken_core.precision.resolve` with the host's answers for what the device runs well: its device
    checks and its --force-fp32 / --force-fp16 flags (--force-fp16 rules bf16 out, which the host's own
    `should_use_bf16` does not)."""
    forced_fp16 = bool(getattr(getattr(mm, "args", None), "force_fp16", False))
    return precisions.resolve_dtype(
        precision, device, fp16_ok=mm.should_use_fp16(device, prioritize_performance=False),
        bf16_ok=not forced_fp16 and mm.should_use_bf16(device, prioritize_performance=False))


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_mtime_ns, st.st_size)


def get_model(embedder_path: str, encoder_path: str, precision: str = "auto") -> AudioTokenModel:
    """Load the pair, or return the cached one if neither file changed (path + mtime + size)."""
    load_device = mm.text_encoder_device()
    offload_device = mm.text_encoder_offload_device()
    dtype = pick_dtype(precision, load_device)
    key = (_file_key(embedder_path), _file_key(encoder_path), dtype, str(load_device))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    embedder_name, encoder_name = os.path.basename(embedder_path), os.path.basename(encoder_path)
    embedder = _load(load_embedder, embedder_path, "embedder", dtype=torch.float32)
    beats = _load(load_beats, encoder_path, "audio encoder (BEATs)", dtype=dtype)
    embedder.to(offload_device)
    beats.to(offload_device)
    model = AudioTokenModel(beats, embedder, encoder_name, embedder_name, load_device, offload_device)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def _load(loader, path: str, what: str, dtype):
    try:
        return loader(path, device="cpu", dtype=dtype)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"Could not read {os.path.basename(path)} as an {what}: {exc}") from exc
