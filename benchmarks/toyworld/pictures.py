"""Synthetic picture classes: a coloured shape on a noisy background, 16x16 RGB in [-1, 1].

Each class has its own colour *and* shape, so a generated picture can be recognised by either; position,
size, hue, background and pixel noise are drawn per picture, so the T2I model has a distribution to learn
rather than K fixed images. Shapes are drawn at 32x32 and averaged down to 16x16, which anti-aliases their
edges; 16x16 keeps a from-scratch pixel-space diffusion model within a CPU's minutes.
"""

from __future__ import annotations

import math

import torch

SIZE = 32  # drawing size
OUT = 16  # picture size

# (shape, RGB in [0, 1]); the first six are the most different from each other, used for the default K=6
STYLES = [
    ("disk", (0.95, 0.15, 0.10)),
    ("square", (0.10, 0.75, 0.15)),
    ("stripes", (0.15, 0.30, 0.95)),
    ("triangle", (0.95, 0.85, 0.10)),
    ("ring", (0.85, 0.20, 0.90)),
    ("cross", (0.10, 0.90, 0.90)),
    ("diamond", (1.00, 0.55, 0.05)),
    ("checker", (0.95, 0.95, 0.95)),
]


def _mask(shape: str, yy, xx, cy, cx, r, gen) -> torch.Tensor:
    dy, dx = yy - cy, xx - cx
    if shape == "disk":
        return (dy**2 + dx**2 <= r**2).float()
    if shape == "square":
        return ((dy.abs() <= r * 0.85) & (dx.abs() <= r * 0.85)).float()
    if shape == "stripes":
        period = 4 + int(torch.randint(0, 3, (), generator=gen))
        inside = (dy.abs() <= r) & (dx.abs() <= r)
        return (inside & ((yy.long() // (period // 2)) % 2 == 0)).float()
    if shape == "triangle":
        # apex up: rows widen linearly from the top of the bounding box
        top = cy - r
        frac = ((yy - top) / (2 * r)).clamp(0, 1)
        return ((yy >= top) & (yy <= cy + r) & (dx.abs() <= frac * r)).float()
    if shape == "ring":
        d = (dy**2 + dx**2).sqrt()
        return ((d <= r) & (d >= r * 0.55)).float()
    if shape == "cross":
        w = r * 0.35
        return (((dy.abs() <= w) & (dx.abs() <= r)) | ((dx.abs() <= w) & (dy.abs() <= r))).float()
    if shape == "diamond":
        return (dy.abs() + dx.abs() <= r).float()
    if shape == "checker":
        cell = 3 + int(torch.randint(0, 2, (), generator=gen))
        inside = (dy.abs() <= r) & (dx.abs() <= r)
        return (inside & (((yy.long() // cell) + (xx.long() // cell)) % 2 == 0)).float()
    raise ValueError(f"unknown shape {shape!r}")


def draw(kind: int, gen: torch.Generator) -> torch.Tensor:
    """One picture `[3, 16, 16]` in [-1, 1] of class `kind`."""
    shape, rgb = STYLES[kind % len(STYLES)]
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    r = 7 + 5 * float(torch.rand((), generator=gen))
    margin = r + 1
    cy = margin + (SIZE - 2 * margin) * float(torch.rand((), generator=gen))
    cx = margin + (SIZE - 2 * margin) * float(torch.rand((), generator=gen))
    mask = _mask(shape, yy, xx, cy, cx, r, gen)
    colour = (torch.tensor(rgb) + 0.08 * torch.randn(3, generator=gen)).clamp(0, 1)
    # dark, slightly tinted background with a gentle gradient, so "background" is not one constant
    bg = 0.12 + 0.06 * torch.rand(3, generator=gen)
    angle = 2 * math.pi * float(torch.rand((), generator=gen))
    ramp = 0.05 * ((yy * math.sin(angle) + xx * math.cos(angle)) / SIZE)
    img = bg[:, None, None] + ramp[None] + mask[None] * (colour[:, None, None] - bg[:, None, None])
    img = torch.nn.functional.avg_pool2d(img[None], SIZE // OUT)[0]
    img = img + 0.03 * torch.randn(3, OUT, OUT, generator=gen)
    return (img.clamp(0, 1) * 2 - 1).float()


def draw_batch(kinds: list[int] | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.stack([draw(int(k), gen) for k in kinds])


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → [0, 255] uint8, for saving a contact sheet."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class PicturePool:
    """Pictures drawn once per class and reused; drawing on the fly would cost more than a UNet step."""

    def __init__(self, names: list[str], per_class: int, seed: int):
        gen = torch.Generator().manual_seed(seed * 104729 + 3)
        self.names = list(names)
        self.kinds = torch.arange(len(names)).repeat_interleave(per_class)
        self.images = draw_batch(self.kinds, gen)

    def sample(self, batch: int, gen: torch.Generator, kinds: torch.Tensor | None = None):
        """`batch` random pictures (of the given classes, when `kinds` is passed) and their classes."""
        if kinds is None:
            idx = torch.randint(0, len(self.kinds), (batch,), generator=gen)
            return self.kinds[idx], self.images[idx]
        per_class = len(self.kinds) // len(self.names)
        idx = kinds * per_class + torch.randint(0, per_class, (len(kinds),), generator=gen)
        return kinds, self.images[idx]
