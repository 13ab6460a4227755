"""The frozen scoring models, each loaded from a local file or folder only.

* CLIP ViT-B/32 (AIS image side) and ViT-L/14 (IIS, AIC): a transformers folder (`config.json`, weights,
  tokenizer and `preprocessor_config.json`), e.g. a `huggingface-cli download` of openai/clip-vit-*.
* Wav2CLIP (AIS audio side): the released `Wav2CLIP.pt`, read by our copy of its architecture.
* Inception for FID: pytorch-fid's `InceptionV3` (2048-d final pool) with `pt_inception-2015-12-05-*.pth`.

Nothing here reaches a hub: a missing model stops with `MissingModelError`, naming the path and where the
file comes from. Every encoder has a `key`, a fingerprint of the model and its preprocessing, under which
`features.FeatureCache` stores what it computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from . import wav2clip_model

CLIP_B32_SOURCE = "openai/clip-vit-base-patch32"
CLIP_L14_SOURCE = "openai/clip-vit-large-patch14"
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME


class MissingModelError(FileNotFoundError):
    """A scoring model is not on disk; the message says which and where to get it."""


def _missing(what: str, path, how: str) -> MissingModelError:
    return MissingModelError(f"{what} not found at {path}. {how}")


def _fingerprint(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


_SAMPLE = 8 << 20


def _content_sample_digest(path: Path) -> str:
    """sha1 of the file's size, first 8 MiB and last 8 MiB: two checkpoints of one architecture (a
    fine-tune, another seed) differ there, while hashing gigabytes of weights on every run would cost
    more than the cache saves."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def _folder_fingerprint(folder: Path) -> list:
    """Config texts plus a content digest of each weight file; independent of where the folder lives."""
    parts = []
    for name in sorted(os.listdir(folder)):
        p = folder / name
        if not p.is_file():
            continue
        if name.endswith(".json"):
            parts.append((name, p.read_text(encoding="utf-8", errors="replace")))
        elif name.endswith((".safetensors", ".bin", ".pt", ".pth")):
            parts.append((name, _content_sample_digest(p)))
    return parts


def _file_fingerprint(path: Path) -> list:
    return [_content_sample_digest(path)]


def _clip_how(folder: Path, source: str) -> str:
    return (
        f"Point it at a local transformers folder of {source}, e.g. "
        f"`huggingface-cli download {source} --local-dir {folder}` on a machine with network access."
    )


def check_clip_folder(folder, source: str) -> Path:
    """Cheap existence check, run before generation so a missing scorer fails in seconds, not hours."""
    if folder is None:
        raise MissingModelError(f"no CLIP folder given for {source}. {_clip_how(Path('models') / source.split('/')[-1], source)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing(f"CLIP model folder ({source})", folder, _clip_how(folder, source))
    if not (folder / "config.json").is_file():
        raise _missing(f"config.json of the CLIP folder ({source})", folder / "config.json", _clip_how(folder, source))
    return folder


def check_wav2clip_file(path) -> Path:
    how = (
        f"Download {wav2clip_model.CHECKPOINT_NAME} from {wav2clip_model.CHECKPOINT_URL} "
        "(the file the `wav2clip` package fetches) and pass its path with --wav2clip."
    )
    if path is None:
        raise MissingModelError(f"no Wav2CLIP checkpoint given. {how}")
    path = Path(path)
    if not path.is_file():
        raise _missing("Wav2CLIP checkpoint", path, how)
    return path


def check_inception_file(path) -> Path:
    how = f"Download {FID_WEIGHTS_NAME} from {FID_WEIGHTS_URL} (pytorch-fid's weights) and pass its path with --inception."
    if path is None:
        raise MissingModelError(f"no FID Inception weights given. {how}")
    path = Path(path)
    if not path.is_file():
        raise _missing("FID Inception weights", path, how)
    return path


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ClipEncoder:
    """CLIP image and text embeddings (projected, not normalised) from a local transformers folder."""

    def __init__(self, folder, device="cpu", batch_size: int = 64, source: str = CLIP_L14_SOURCE):
        folder = check_clip_folder(folder, source)
        how = _clip_how(folder, source)
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
        contents = _folder_fingerprint(folder)
        self.key = _fingerprint("clip-image-v1", contents)
        self.text_key = _fingerprint("clip-text-v1", contents)

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
        self.key = _fingerprint("wav2clip-v1", _file_fingerprint(path), self.sample_rate, self.clip_seconds)

    def prepare(self, waveform: torch.Tensor, sample_rate: int, start_s: float = 0.0) -> torch.Tensor:
        """Mono, resampled, the `clip_seconds` window from `start_s`, zero-padded at the end (as
        SonicDiffusion pads before Wav2CLIP). Returns `[T]` float32."""
        import torchaudio.functional as AF

        wave = torch.as_tensor(waveform, dtype=torch.float32)
        if wave.ndim == 2:
            wave = wave.mean(0)
        elif wave.ndim != 1:
            raise ValueError(f"expected audio [C, T] or [T], got shape {tuple(wave.shape)}")
        if sample_rate != self.sample_rate:
            wave = AF.resample(wave, int(sample_rate), self.sample_rate)
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
        self.key = _fingerprint("fid-inception-pool3-v1", _file_fingerprint(path))

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


__all__ = [
    "ClipEncoder",
    "Wav2ClipEncoder",
    "InceptionEncoder",
    "MissingModelError",
    "check_clip_folder",
    "check_inception_file",
    "check_wav2clip_file",
    "fid_inception_from_state_dict",
    "finite_or_raise",
]
