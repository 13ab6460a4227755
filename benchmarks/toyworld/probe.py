"""A linear probe on the frozen audio features: how much class information the Embedder's inputs hold.

The token learns the class only through the diffusion loss, the probe from the labels directly, on the same
features (mean and standard deviation over frames, standardised). So probe accuracy is what a learned
pooling of these features could reach at best with a linear read-out, and token / probe says how much of
it the training recovers. The L2 weight is chosen by k-fold cross-validation on the training clips only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def pooled(features: torch.Tensor) -> torch.Tensor:
    """`[B, N, F]` frame features -> `[B, 2F]` (mean, std over frames)."""
    features = features.float()
    return torch.cat([features.mean(1), features.std(1)], dim=1)


def _fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, iters: int = 200) -> torch.Tensor:
    """Multinomial logistic regression by L-BFGS; returns `[D + 1, K]` weights (last row: bias)."""
    xb = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
    w = torch.zeros(xb.shape[1], n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xb @ w, y) + l2 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _predict(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (torch.cat([x, torch.ones(x.shape[0], 1)], dim=1) @ w).argmax(1)


def _standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    return [(t - mean) / std for t in (train, *others)]


def _cv_accuracy(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, folds: int, seed: int) -> float:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    right = 0
    for f in range(folds):
        held = order[f::folds]
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[held] = False
        xt, xh = _standardise(x[keep], x[held])
        right += int((_predict(_fit(xt, y[keep], n_classes, l2), xh) == y[held]).sum())
    return right / len(y)


def linear_probe(train_feats: torch.Tensor, train_labels: torch.Tensor, held_feats: torch.Tensor,
                 held_labels: torch.Tensor, n_classes: int, seed: int = 0, folds: int = 5) -> dict:
    """Held-out accuracy of a linear classifier on pooled frozen features, and the L2 weight it chose."""
    x, xh = pooled(train_feats), pooled(held_feats)
    scores = {l2: _cv_accuracy(x, train_labels, n_classes, l2, folds, seed) for l2 in L2_GRID}
    best = max(L2_GRID, key=lambda l2: (scores[l2], l2))  # ties go to the stronger regulariser
    xt, xh = _standardise(x, xh)
    pred = _predict(_fit(xt, train_labels, n_classes, best), xh)
    return {"accuracy": float((pred == held_labels).float().mean()), "l2": best, "cv": scores,
            "predictions": pred}
