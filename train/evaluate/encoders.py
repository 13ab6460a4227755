"""The frozen scoring models, each loaded from a local file or folder only (`model_files` says which and
from where), and which of them the requested metrics need.

Every encoder has a `key`, a fingerprint of the model and its preprocessing, under which
`features.FeatureCache` stores what it computed.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch

from audiotoken_core.resample import resample

from ..models import MissingModelError
from . import wav2clip_model
from .fingerprint import file_fingerprint, fingerprint, folder_fingerprint
from .model_files import (
    CLIP_B32_SOURCE,
    CLIP_L14_SOURCE,
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_URL,
    check_clip_folder,
    check_inception_file,
    check_wav2clip_file,
    clip_how,
)


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ClipEncoder:
    """CLIP image and text embeddings (projected, not normalised) from a local transformers folder."""

    def __init__(self, folder, device="cpu", batch_size: int = 64, source: str = CLIP_L14_SOURCE):
        folder = check_clip_folder(folder, source)
        how = clip_how(folder, source)
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        try:
            self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True).eval()
            self.image_processor = CLIPImageProcessor.from_pretrained(str(folder), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except OSError as exc:
            raise MissingModelError(f"CLIP folder {folder} is incomplete ({exc}). {how}") from exc
        self.device = torch.device(device)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.name = f"clip:{folder.name}"
        # one pass over the weight files serves both keys (it reads up to 16 MiB of each)
        contents = folder_fingerprint(folder)
        self.key = fingerprint("clip-image-v1", contents)
        self.text_key = fingerprint("clip-text-v1", contents)

    @torch.inference_mode()
    def encode_images(self, images: list) -> np.ndarray:
        out = []
        for chunk in _batches(images, self.batch_size):
            pixels = self.image_processor(images=[im.convert("RGB") for im in chunk], return_tensors="pt")["pixel_values"]
            pooled = self.model.vision_model(pixel_values=pixels.to(self.device, self.model.dtype)).pooler_output
            out.append(self.model.visual_projection(pooled).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim), np.float32)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        out = []
        for chunk in _batches(list(texts), self.batch_size):
            tok = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
            pooled = self.model.text_model(
                input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)
            ).pooler_output
            out.append(self.model.text_projection(pooled).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim), np.float32)


class Wav2ClipEncoder:
    """Wav2CLIP audio embeddings (512-d, CLIP ViT-B/32 image space for the released model)."""

    def __init__(
        self,
        path,
        device="cpu",
        batch_size: int = 16,
        sample_rate: int = wav2clip_model.SAMPLE_RATE,
        clip_seconds: float = wav2clip_model.CLIP_SECONDS,
    ):
        from audiotoken_core.safeload import load_torch_checkpoint

        path = check_wav2clip_file(path)
        state = load_torch_checkpoint(path)
        if "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        try:
            self.model = wav2clip_model.wav2clip_from_state_dict(state)
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from exc
        self.device = torch.device(device)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.name = f"wav2clip:{path.name}"
        self.key = fingerprint("wav2clip-v1", file_fingerprint(path), self.sample_rate, self.clip_seconds)

    def prepare(self, waveform: torch.Tensor, sample_rate: int, start_s: float = 0.0) -> torch.Tensor:
        """Mono, resampled, the `clip_seconds` window from `start_s`, zero-padded at the end (as
        SonicDiffusion pads before Wav2CLIP). Returns `[T]` float32."""
        wave = torch.as_tensor(waveform, dtype=torch.float32)
        if wave.ndim == 2:
            wave = wave.mean(0)
        elif wave.ndim != 1:
            raise ValueError(f"expected audio [C, T] or [T], got shape {tuple(wave.shape)}")
        if sample_rate != self.sample_rate:
            wave = resample(wave, int(sample_rate), self.sample_rate)
        need = int(round(self.clip_seconds * self.sample_rate))
        start = int(round(max(0.0, float(start_s or 0.0)) * self.sample_rate))
        wave = wave[start : start + need]
        if wave.numel() < need:
            wave = torch.nn.functional.pad(wave, (0, need - wave.numel()))
        return wave

    @torch.inference_mode()
    def encode_audio(self, waves: list[torch.Tensor]) -> np.ndarray:
        out = []
        for chunk in _batches(list(waves), self.batch_size):
            out.append(self.model(torch.stack(chunk).to(self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.out_dim), np.float32)


def fid_inception_from_state_dict(state: dict) -> torch.nn.Module:
    """pytorch-fid's `InceptionV3` (final-pool block) with the given weights instead of a download.

    pytorch-fid builds the network and fetches the weights in one function (`fid_inception_v3`); we swap its
    URL loader for our already-loaded state dict, so the architecture stays exactly the package's."""
    try:
        import pytorch_fid.inception as fid_inception
    except ImportError as exc:
        raise ImportError(
            "FID needs the `pytorch-fid` package (the Inception architecture): pip install pytorch-fid"
        ) from exc

    def from_memory(*_args, **_kwargs):
        return state

    with mock.patch.object(fid_inception, "load_state_dict_from_url", from_memory):
        model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return model.eval()


class InceptionEncoder:
    """2048-d Inception pool features, preprocessed as pytorch-fid does (RGB in [0, 1], bilinear to 299)."""

    dim = 2048

    def __init__(self, path, device="cpu", batch_size: int = 50):
        from audiotoken_core.safeload import load_torch_checkpoint

        path = check_inception_file(path)
        state = load_torch_checkpoint(path)
        try:
            self.model = fid_inception_from_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path.name}: not the pytorch-fid Inception weights ({str(exc).splitlines()[0]})") from exc
        self.device = torch.device(device)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.name = f"inception:{path.name}"
        self.key = fingerprint("fid-inception-pool3-v1", file_fingerprint(path))

    @torch.inference_mode()
    def encode_images(self, images: list) -> np.ndarray:
        out = []
        for chunk in _batches(images, self.batch_size):
            batch = torch.stack([_to_299(im) for im in chunk]).to(self.device)
            out.append(self.model(batch)[0].flatten(1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def _to_299(image) -> torch.Tensor:
    """Per image, so that frames and generated images of different sizes can share a batch; the same
    resize pytorch-fid applies inside the network (bilinear, align_corners=False)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr).permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)[0]


def finite_or_raise(features: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(features)):
        bad = int((~np.isfinite(features)).any(axis=-1).sum()) if features.ndim > 1 else 1
        raise ValueError(f"{what}: {bad} feature vectors contain NaN/Inf; check the model file and dtype")
    return features


def required_models(cfg) -> dict[str, str]:
    """Which scorer each requested metric needs, checked before any generation starts."""
    need = {}
    if "ais" in cfg.metrics:
        need["clip_b32"] = "ais"
        need["wav2clip"] = "ais"
    if "iis" in cfg.metrics or "aic" in cfg.metrics:
        need["clip_l14"] = "iis/aic"
    if "fid" in cfg.metrics:
        need["inception"] = "fid"
    return need


def check_scorers(cfg) -> None:
    checks = {
        "clip_b32": lambda: check_clip_folder(cfg.clip_b32, CLIP_B32_SOURCE),
        "clip_l14": lambda: check_clip_folder(cfg.clip_l14, CLIP_L14_SOURCE),
        "wav2clip": lambda: check_wav2clip_file(cfg.wav2clip),
        "inception": lambda: check_inception_file(cfg.inception),
    }
    problems = []
    for name in required_models(cfg):
        try:
            checks[name]()
        except MissingModelError as exc:
            problems.append(str(exc))
    if problems:
        raise MissingModelError(
            "scoring models are missing (or drop the metric with --metrics):\n  - " + "\n  - ".join(problems)
        )


def load_scorers(cfg, device) -> dict:
    loaders = {
        "clip_b32": lambda: ClipEncoder(cfg.clip_b32, device, cfg.clip_batch, CLIP_B32_SOURCE),
        "clip_l14": lambda: ClipEncoder(cfg.clip_l14, device, cfg.clip_batch, CLIP_L14_SOURCE),
        "wav2clip": lambda: Wav2ClipEncoder(cfg.wav2clip, device, cfg.audio_batch, cfg.wav2clip_rate),
        "inception": lambda: InceptionEncoder(cfg.inception, device, cfg.inception_batch),
    }
    need = required_models(cfg)
    return {name: load() for name, load in loaders.items() if name in need}


__all__ = [
    "CLIP_B32_SOURCE",
    "CLIP_L14_SOURCE",
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URL",
    "ClipEncoder",
    "Wav2ClipEncoder",
    "InceptionEncoder",
    "MissingModelError",
    "check_clip_folder",
    "check_inception_file",
    "check_scorers",
    "check_wav2clip_file",
    "load_scorers",
    "required_models",
    "fid_inception_from_state_dict",
    "finite_or_raise",
]
