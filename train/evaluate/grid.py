"""`grid.png`: for a few sampled clips, the reference frame beside every row's generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import image_path, open_image, reference_path, save_image


def image_grid(rows: list[tuple[str, list]], column_titles: list[str], cell: int = 160):
    """One line per clip: its caption, then one cell per column (a PIL image or None for an empty cell)."""
    from PIL import Image, ImageDraw, ImageOps

    caption_h, title_h, pad = 18, 18, 4
    n_cols = max((len(images) for _, images in rows), default=0)
    width = pad + n_cols * (cell + pad)
    height = title_h + len(rows) * (caption_h + cell + pad) + pad
    canvas = Image.new("RGB", (max(width, 1), max(height, 1)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(column_titles[:n_cols]):
        draw.text((pad + c * (cell + pad), 3), title[:28], fill="black")
    y = title_h
    for caption, images in rows:
        draw.text((pad, y + 2), caption[: max(8, width // 7)], fill="black")
        y += caption_h
        for c, im in enumerate(images):
            x = pad + c * (cell + pad)
            if im is None:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline="lightgray")
                continue
            thumb = ImageOps.contain(im.convert("RGB"), (cell, cell))  # scales small images up as well
            canvas.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        y += cell + pad
    return canvas


def grid_lines(clips, rows: list[str], seeds, images_root: Path) -> list[tuple[str, list]]:
    """Per clip: its caption and cells (reference, then each row's image per seed; None where it is missing)."""
    lines = []
    for c in clips:
        cells = [open_image(reference_path(images_root, c.id))]
        for r in rows:
            for s in seeds:
                p = image_path(images_root, r, c.id, s)
                cells.append(open_image(p) if p.is_file() else None)
        lines.append((f"{c.id}  [{c.label or 'no label'}]", cells))
    return lines


def write_grid(path: Path, cfg, clips, rows: list[str], images_root: Path) -> None:
    count = min(cfg.grid_clips, len(clips))
    pick = np.sort(np.random.default_rng(cfg.seed).choice(len(clips), size=count, replace=False))
    titles = ["reference"] + [f"{r} s{s}" for r in rows for s in cfg.seeds]
    lines = grid_lines([clips[i] for i in pick], rows, cfg.seeds, images_root)
    save_image(path, image_grid(lines, titles))
