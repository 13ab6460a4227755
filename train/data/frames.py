"""Picture -> training tensor with a chosen resize policy.

`squash` is the original recipe (bicubic resize to 512x320, aspect ratio ignored); `center-crop` scales
to cover then crops; `pad` scales to fit and pads with black.
"""

from __future__ import annotations

import numpy as np
import torch

RESIZE_POLICIES = ("squash", "center-crop", "pad")


def parse_size(text: str) -> tuple[int, int]:
    """`"512x320"` -> (width, height); both must be multiples of 8 for the VAE."""
    try:
        w, h = (int(x) for x in str(text).lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"frame size must look like 512x320 (width x height), got {text!r}") from exc
    if w < 8 or h < 8 or w % 8 or h % 8:
        raise ValueError(f"frame size {w}x{h}: width and height must be positive multiples of 8")
    return w, h


def resize_frame(image, size: tuple[int, int], policy: str = "squash"):
    from PIL import Image

    width, height = size
    if policy == "squash":
        return image.resize((width, height), Image.BICUBIC)
    scale_cover = max(width / image.width, height / image.height)
    scale_fit = min(width / image.width, height / image.height)
    if policy == "center-crop":
        w, h = max(width, round(image.width * scale_cover)), max(height, round(image.height * scale_cover))
        img = image.resize((w, h), Image.BICUBIC)
        left, top = (w - width) // 2, (h - height) // 2
        return img.crop((left, top, left + width, top + height))
    if policy == "pad":
        w, h = max(1, round(image.width * scale_fit)), max(1, round(image.height * scale_fit))
        canvas = Image.new("RGB", (width, height))
        canvas.paste(image.resize((w, h), Image.BICUBIC), ((width - w) // 2, (height - h) // 2))
        return canvas
    raise ValueError(f"resize policy must be one of {RESIZE_POLICIES}, got {policy!r}")


def image_to_tensor(image) -> torch.Tensor:
    """RGB PIL image -> `[3, H, W]` float32 in [-1, 1] (the VAE's input range)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
