"""The evaluation numbers, as pure functions of embeddings and features (numpy in, numpy/float out).

Protocols follow SonicDiffusion's evaluation.py, which reproduced AudioToken's AIS/IIS/AIC:
* a "win fraction" (AIS, IIS): a generated image's similarity to its own reference is compared with its
  similarity to the references of every other clip; the score is the fraction it beats (strictly), so
  1 = always closer to its own reference, ~0.5 = unrelated;
* AIC: zero-shot classification of the image against the label texts, scored against the clip's label;
* FID: Frechet distance between Gaussian fits of Inception pool features (pytorch-fid's formula).
Per-clip values are what the bootstrap resamples, so every metric reports a CI over clips.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    # A zero vector stays zero (similarity 0 to everything) rather than becoming NaN.
    return x / np.where(norm > 0, norm, 1.0)


def win_fraction(queries: np.ndarray, references: np.ndarray, owner: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Per query: the fraction of *other* references whose cosine similarity to it is strictly lower than
    that of its own reference `references[owner[i]]`.

    queries `[Q, D]`, references `[R, D]` (one per clip), owner `[Q]` ints in `[0, R)`.
    """
    q = l2_normalize(queries)
    r = l2_normalize(references)
    owner = np.asarray(owner, dtype=np.int64)
    if q.shape[0] != owner.shape[0]:
        raise ValueError(f"{q.shape[0]} queries but {owner.shape[0]} owner indices")
    if r.shape[0] < 2:
        raise ValueError("a win fraction needs at least two clips (one own reference and one other)")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"embedding widths differ: queries {q.shape[1]}, references {r.shape[1]}")
    lower = np.empty(q.shape[0], dtype=np.int64)
    # Chunked over queries: a VGGSound test split is ~15k clips, and one 15k x 15k float64 block is 1.8 GB.
    for start in range(0, q.shape[0], chunk):
        sims = q[start : start + chunk] @ r.T
        own = sims[np.arange(sims.shape[0]), owner[start : start + chunk]]
        lower[start : start + chunk] = (sims < own[:, None]).sum(axis=1)  # own is never strictly lower than itself
    return lower / (r.shape[0] - 1)


def topk_correct(
    image_emb: np.ndarray, class_emb: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = (1, 5)
) -> dict[int, np.ndarray]:
    """Zero-shot classification by cosine similarity; for each k a bool array `[N]`: target in the top k.

    k larger than the number of classes is clipped (top-5 over 3 classes is always right)."""
    sims = l2_normalize(image_emb) @ l2_normalize(class_emb).T
    targets = np.asarray(targets, dtype=np.int64)
    # Rank of the target = number of classes scoring strictly higher; ties go in the image's favour.
    target_score = sims[np.arange(sims.shape[0]), targets]
    rank = (sims > target_score[:, None]).sum(axis=1)
    return {k: rank < min(k, sims.shape[1]) for k in ks}


def predictions(image_emb: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
    return np.argmax(l2_normalize(image_emb) @ l2_normalize(class_emb).T, axis=1)


def per_group_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of `values` within each group id; NaN for a group with no values."""
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    sums = np.bincount(groups, weights=values, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def per_class_accuracy(correct: np.ndarray, targets: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and sample count per class (accuracy NaN where a class has no sample)."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=n_classes)
    return per_group_mean(np.asarray(correct, dtype=np.float64), targets, n_classes), counts


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"FID needs at least two feature vectors, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, device=None) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

    tr((S1 S2)^{1/2}) is the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2). That is exact for PSD covariances, needs no complex
    arithmetic, and runs on a GPU (torch float64), which matters because the bootstrap calls it hundreds of
    times on 2048x2048 matrices. It agrees with pytorch-fid's scipy-based formula (tests check this).
    """
    import torch

    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)  # noqa: E731
    mu1, mu2, s1, s2 = t(np.atleast_1d(mu1)), t(np.atleast_1d(mu2)), t(np.atleast_2d(sigma1)), t(np.atleast_2d(sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature widths differ: {tuple(mu1.shape)} vs {tuple(mu2.shape)}")
    return float(_frechet_torch(mu1, s1, mu2, s2))


def _frechet_torch(mu1, s1, mu2, s2):
    import torch

    w, v = torch.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = root1 @ s2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2)
    diff = mu1 - mu2
    return diff @ diff + torch.trace(s1) + torch.trace(s2) - 2.0 * eig.clamp_min(0).sqrt().sum()


def _weighted_stats(x, weights):
    """Mean and unbiased covariance of the multiset where row i appears weights[i] times (== np.cov of
    the duplicated rows), without materialising the duplicates."""
    total = weights.sum()
    mu = (weights[:, None] * x).sum(0) / total
    centred = x - mu
    cov = (centred * weights[:, None]).T @ centred / (total - 1)
    return mu, cov


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    estimate: float | None = None,
) -> tuple[float, float]:
    """CI of `statistic(indices)` over resamples (with replacement) of `n_units` clip indices.

    Percentile interval by default. Given `estimate`, the percentile interval shifted by the bootstrap
    bias, [q_lo - b, q_hi - b] with b = mean(resamples) - estimate: for FID, a resample repeats clips, which
    shrinks the effective set and raises the statistic, so the raw percentile interval sits above (and
    usually excludes) the estimate; shifting keeps the bootstrap spread but centres it on the estimate."""
    if n_resamples <= 0 or n_units == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        v = statistic(rng.integers(0, n_units, size=n_units))
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(np.asarray(values), [alpha, 1 - alpha])
    if estimate is not None:
        bias = float(np.mean(values)) - estimate
        lo, hi = lo - bias, hi - bias
    return float(lo), float(hi)


def mean_with_ci(per_clip: np.ndarray, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Mean over clips (NaN clips ignored) with a bootstrap CI over clips."""
    per_clip = np.asarray(per_clip, dtype=np.float64)
    per_clip = per_clip[np.isfinite(per_clip)]
    if per_clip.size == 0:
        return {"value": None, "ci": [None, None], "n": 0}
    # Vectorised: one matrix of resampled indices instead of a Python loop per resample.
    lo = hi = float("nan")
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, per_clip.size, size=(n_resamples, per_clip.size))
        means = per_clip[idx].mean(axis=1)
        alpha = (1.0 - confidence) / 2
        lo, hi = (float(x) for x in np.quantile(means, [alpha, 1 - alpha]))
    return {"value": float(per_clip.mean()), "ci": [_finite(lo), _finite(hi)], "n": int(per_clip.size)}


def fid_with_ci(
    ref_features: np.ndarray,
    gen_features: np.ndarray,
    ref_clip: np.ndarray,
    gen_clip: np.ndarray,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    device=None,
) -> dict:
    """FID between reference and generated features, with a CI from resampling *clips*: a resampled clip
    brings its reference frame and all its generated images, so the two sets stay paired. Resamples are
    expressed as per-row multiplicities, so no duplicated feature matrix is ever built."""
    import torch

    ref_clip = np.asarray(ref_clip, dtype=np.int64)
    gen_clip = np.asarray(gen_clip, dtype=np.int64)
    n_clips = int(len(np.unique(ref_clip)))
    if len(ref_features) < 2 or len(gen_features) < 2:
        return {"value": None, "ci": [None, None], "n": n_clips}
    ref = torch.as_tensor(np.asarray(ref_features), dtype=torch.float64, device=device)
    gen = torch.as_tensor(np.asarray(gen_features), dtype=torch.float64, device=device)
    ones_r = torch.ones(len(ref), dtype=torch.float64, device=device)
    ones_g = torch.ones(len(gen), dtype=torch.float64, device=device)
    value = float(_frechet_torch(*_weighted_stats(ref, ones_r), *_weighted_stats(gen, ones_g)))
    if not np.isfinite(value):
        raise ValueError("FID is not finite: the Inception features contain NaN/Inf")
    value = max(value, 0.0)  # identical sets can come out at -1e-7 from rounding

    clips, inverse = np.unique(np.concatenate([ref_clip, gen_clip]), return_inverse=True)
    ref_slot = torch.as_tensor(inverse[: len(ref_clip)], device=device)
    gen_slot = torch.as_tensor(inverse[len(ref_clip) :], device=device)

    def statistic(sample: np.ndarray) -> float:
        mult = torch.as_tensor(np.bincount(sample, minlength=len(clips)), dtype=torch.float64, device=device)
        wr, wg = mult[ref_slot], mult[gen_slot]
        if wr.sum() < 2 or wg.sum() < 2:
            return float("nan")
        return float(_frechet_torch(*_weighted_stats(ref, wr), *_weighted_stats(gen, wg)))

    lo, hi = bootstrap_ci(statistic, len(clips), n_resamples, seed, confidence, estimate=value)
    lo = max(lo, 0.0) if np.isfinite(lo) else lo  # a distance is never negative
    return {"value": value, "ci": [_finite(lo), _finite(hi)], "n": n_clips, "ci_method": "bias-shifted percentile bootstrap over clips"}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
