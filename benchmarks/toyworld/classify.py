"""The judge: a small CNN that names the class of a 16x16 picture, trained on clean pictures only.

It never sees a generated picture in training, so it measures whether a generation looks like the class,
not whether it resembles other generations. Noise and blur augmentation keep it from failing on the
slightly soft, grainy look that a few DDIM steps leave.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PictureClassifier(nn.Module):
    def __init__(self, n_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    blur = torch.rand(x.shape[0], 1, 1, 1, generator=gen) < 0.5
    soft = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where(blur, soft, x)
    sigma = 0.15 * torch.rand(x.shape[0], 1, 1, 1, generator=gen)
    return x + sigma * torch.randn(x.shape, generator=gen)


def train_classifier(pool, steps: int, seed: int, log) -> PictureClassifier:
    gen = torch.Generator().manual_seed(seed + 2)
    torch.manual_seed(seed + 2)
    model = PictureClassifier(len(pool.names))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(steps):
        kinds, images = pool.sample(64, gen)
        loss = F.cross_entropy(model(_augment(images, gen)), kinds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            log(f"  classifier step {step + 1}/{steps}  loss {loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def predict(model: PictureClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(256)])
