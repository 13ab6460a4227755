"""Writing the results: `metrics.json` (every number with its CI), `results.md` (the paper-style table and
per-class AIC), `per_class_aic.csv`, `per_clip.csv` and `grid.png` (reference frame beside generated images)."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path

METRIC_COLUMNS = (
    ("fid", "FID ↓", 2),
    ("ais", "AIS ↑", 3),
    ("iis", "IIS ↑", 3),
    ("aic_top1", "AIC top-1 ↑", 3),
    ("aic_top5", "AIC top-5 ↑", 3),
)

ROW_TITLES = {
    "audio": "AudioToken (audio token)",
    "text": "Text upper bound (true label in the prompt)",
    "null": "Null token lower bound",
    "ground_truth": "Ground-truth frames",
}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, report: dict) -> None:
    _atomic_write(path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _cell(entry: dict | None, digits: int) -> str:
    if not entry or entry.get("value") is None:
        return "—"
    value = f"{entry['value']:.{digits}f}"
    lo, hi = entry.get("ci", [None, None])
    if lo is None or hi is None:
        return value
    return f"{value} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown_table(report: dict) -> str:
    header = "| Method | " + " | ".join(title for _, title, _ in METRIC_COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in METRIC_COLUMNS) + "|"
    lines = [header, rule]
    for name, row in report["rows"].items():
        title = row.get("title") or ROW_TITLES.get(name, name)
        cells = [_cell(row["metrics"].get(key), digits) for key, _, digits in METRIC_COLUMNS]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_markdown(per_class: list[dict], limit: int | None = None) -> str:
    rows = sorted(per_class, key=lambda r: (-(r["top1"] if r["top1"] is not None else -1), r["label"]))
    if limit is not None and len(rows) > limit:
        rows = rows[: limit // 2] + [None] + rows[-(limit - limit // 2) :]
    lines = ["| Class | n | top-1 | top-5 |", "|---|---:|---:|---:|"]
    for r in rows:
        if r is None:
            lines.append("| … | | | |")
            continue
        f = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
        lines.append(f"| {r['label']} | {r['n']} | {f(r['top1'])} | {f(r['top5'])} |")
    return "\n".join(lines)


def markdown_report(report: dict, per_class_limit: int = 40) -> str:
    cfg = report["config"]
    ds = report["dataset"]
    parts = [
        "# AudioToken evaluation",
        "",
        f"Data: `{ds['source']}` ({ds['kind']}, split `{ds.get('split') or 'all'}`), {ds['n_clips']} clips, "
        f"{ds['n_classes']} classes. {cfg['n_images']} image(s) per clip, seeds {cfg['seeds']}, "
        f"{cfg['steps']} steps, guidance {cfg['guidance']}, prompt `{cfg['prompt']}`.",
        "",
        f"Values with {int(cfg['confidence'] * 100)}% bootstrap CIs over clips "
        f"({cfg['bootstrap']} resamples; FID: {cfg['fid_bootstrap']} resamples, percentile interval re-centred on the estimate). "
        "AIS/IIS: fraction of other clips' references that score lower than the clip's own (0.5 = chance). "
        "— = not defined for that row.",
        "",
        *([_lora_line(report), ""] if report.get("generator") else []),
        markdown_table(report),
        "",
    ]
    for name, classes in report.get("per_class_aic", {}).items():
        title = report["rows"][name].get("title") or ROW_TITLES.get(name, name)
        parts += [f"## Per-class AIC: {title}", "", per_class_markdown(classes, per_class_limit), ""]
        if len(classes) > per_class_limit:
            parts += [f"(best and worst {per_class_limit} of {len(classes)} classes; all in per_class_aic.csv)", ""]
    return "\n".join(parts)


def _lora_line(report: dict) -> str:
    # Scores with and without a UNet LoRA are different experiments; the report says which this is.
    lora = (report.get("generator") or {}).get("lora")
    if lora:
        return f"UNet LoRA: `{lora}` (the paper's results use none)."
    return "UNet LoRA: none (the paper's setting: only the Embedder is trained)."


def write_markdown(path: Path, report: dict) -> None:
    _atomic_write(path, markdown_report(report))


def write_per_class_csv(path: Path, per_class: dict[str, list[dict]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row", "label", "n", "top1", "top5"])
        for row, classes in per_class.items():
            for r in classes:
                w.writerow([row, r["label"], r["n"], _num(r["top1"]), _num(r["top5"])])


def write_per_clip_csv(path: Path, per_clip: dict[str, list[dict]]) -> None:
    keys = ["id", "label", "ais", "iis", "aic_top1", "aic_top5", "predicted"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row", *keys])
        for row, clips in per_clip.items():
            for c in clips:
                w.writerow([row, *(_num(c.get(k)) for k in keys)])


def _num(x):
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.6g}"
    return "" if x is None else x


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
