"""One report row's numbers from its features: AIS, IIS, AIC (top-1/top-5, per class) and FID, each with a
bootstrap CI over clips, plus the per-clip values behind them.

A row is a list of images, each owned by a clip (`owner`); the references are one per clip (the clip's
audio embedding, frame embedding, frame Inception features). Which metrics a row gets depends on what
it has: the ground-truth row is the reference frames themselves, so IIS (a frame against itself) and
FID (a set against itself) are not defined for it and are left out rather than reported as trivial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics

METRICS = ("ais", "iis", "aic", "fid")


@dataclass
class RowFeatures:
    owner: np.ndarray  # [N] clip index of each image
    clip_b32: np.ndarray | None = None  # [N, D] CLIP ViT-B/32 image embeddings (AIS)
    clip_l14: np.ndarray | None = None  # [N, D] CLIP ViT-L/14 image embeddings (IIS, AIC)
    inception: np.ndarray | None = None  # [N, 2048] (FID)
    is_reference: bool = False  # the images are the reference frames themselves


@dataclass
class References:
    audio_w2c: np.ndarray | None  # [C, D] Wav2CLIP audio embeddings
    frame_l14: np.ndarray | None  # [C, D] CLIP ViT-L/14 embeddings of the reference frames
    frame_inception: np.ndarray | None  # [C, 2048]
    class_l14: np.ndarray | None  # [K, D] CLIP ViT-L/14 text embeddings of the class prompts
    targets: np.ndarray  # [C] class index per clip, -1 = no label
    class_names: list[str]


@dataclass
class BootstrapSettings:
    resamples: int = 1000
    fid_resamples: int = 100
    confidence: float = 0.95
    seed: int = 0
    device: object = None  # torch device for FID's linear algebra


def score_row(row: RowFeatures, refs: References, wanted: set[str], boot: BootstrapSettings) -> dict:
    """`{"metrics": {name: {value, ci, n}}, "per_clip": {name: [C]}, "per_class": [...], "predicted": [C]}`."""
    n_clips = len(refs.targets)
    owner = np.asarray(row.owner, dtype=np.int64)
    out: dict = {"metrics": {}, "per_clip": {}, "per_class": None, "predicted": None}

    def add(name: str, per_image: np.ndarray, mask: np.ndarray | None = None):
        keep = np.ones(len(per_image), bool) if mask is None else mask
        per_clip = metrics.per_group_mean(per_image[keep], owner[keep], n_clips)
        out["per_clip"][name] = per_clip
        out["metrics"][name] = metrics.mean_with_ci(per_clip, boot.resamples, boot.seed, boot.confidence)

    if "ais" in wanted and row.clip_b32 is not None and refs.audio_w2c is not None:
        add("ais", metrics.win_fraction(row.clip_b32, refs.audio_w2c, owner))
    if "iis" in wanted and not row.is_reference and row.clip_l14 is not None and refs.frame_l14 is not None:
        add("iis", metrics.win_fraction(row.clip_l14, refs.frame_l14, owner))
    if "aic" in wanted and row.clip_l14 is not None and refs.class_l14 is not None and len(refs.class_names):
        targets = refs.targets[owner]
        labelled = targets >= 0
        if labelled.any():
            correct = metrics.topk_correct(row.clip_l14[labelled], refs.class_l14, targets[labelled], (1, 5))
            for k in (1, 5):
                full = np.zeros(len(owner))
                full[labelled] = correct[k]
                add(f"aic_top{k}", full, labelled)
            top1, counts = metrics.per_class_accuracy(correct[1], targets[labelled], len(refs.class_names))
            top5, _ = metrics.per_class_accuracy(correct[5], targets[labelled], len(refs.class_names))
            out["per_class"] = [
                {"label": name, "n": int(n), "top1": finite_or_none(t1), "top5": finite_or_none(t5)}
                for name, n, t1, t5 in zip(refs.class_names, counts, top1, top5)
                if n > 0
            ]
            pred = metrics.predictions(row.clip_l14, refs.class_l14)
            # The first image's prediction per clip, for the per-clip table.
            first = {}
            for i, c in enumerate(owner):
                first.setdefault(int(c), refs.class_names[int(pred[i])])
            out["predicted"] = [first.get(c) for c in range(n_clips)]
    if "fid" in wanted and not row.is_reference and row.inception is not None and refs.frame_inception is not None:
        out["metrics"]["fid"] = metrics.fid_with_ci(
            refs.frame_inception,
            row.inception,
            np.arange(n_clips),
            owner,
            n_resamples=boot.fid_resamples,
            seed=boot.seed,
            confidence=boot.confidence,
            device=boot.device,
        )
    return out


def finite_or_none(x) -> float | None:
    """A number for the report: None for a missing or undefined (NaN) one, which JSON cannot hold."""
    return None if x is None or not np.isfinite(x) else float(x)
