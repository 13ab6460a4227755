"""The report: every row scored from the cached features (`build_report`), and the files it is written to:
`metrics.json` (every number with its CI), `results.md` (the paper-style table and per-class AIC),
`per_class_aic.csv`, `per_clip.csv` and `grid.png` (`grid.py`)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from audiotoken_core.safeload import atomic_write, atomic_write_text

from . import features as feat
from .encoders import finite_or_raise
from .grid import write_grid
from .generation import LABEL_ROWS
from .images import reference_path, row_images
from .scoring import BootstrapSettings, References, RowFeatures, finite_or_none, score_row

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
    "labels": "BEATs labels → text prompt (no training)",
    "labels_token": "BEATs labels + audio token",
    "ground_truth": "Ground-truth frames",
}


def write_json(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


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
        *([_labels_line(cfg), ""] if any(r in LABEL_ROWS for r in report["rows"]) else []),
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


def _labels_line(cfg: dict) -> str:
    return (f"BEATs labels: the AudioSet head's best {cfg['label_k']} classes scoring at least {cfg['label_threshold']} "
            "(else its single best), written where the token goes (labels) or after it, comma-separated "
            "(labels + audio token); the prompt of each clip is in metrics.json.")


def write_markdown(path: Path, report: dict) -> None:
    atomic_write_text(path, markdown_report(report))


def _write_csv(path: Path, header: list[str], rows) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    atomic_write(path, write)


def write_per_class_csv(path: Path, per_class: dict[str, list[dict]]) -> None:
    _write_csv(path, ["row", "label", "n", "top1", "top5"],
               ([row, r["label"], r["n"], _num(r["top1"]), _num(r["top5"])]
                for row, classes in per_class.items() for r in classes))


def write_per_clip_csv(path: Path, per_clip: dict[str, list[dict]]) -> None:
    keys = ["id", "label", "ais", "iis", "aic_top1", "aic_top5", "predicted"]
    _write_csv(path, ["row", *keys],
               ([row, *(_num(c.get(k)) for k in keys)] for row, clips in per_clip.items() for c in clips))


def _num(x):
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.6g}"
    return "" if x is None else x


def class_names(cfg, clips) -> list[str]:
    if cfg.labels_file:
        names = [ln.strip() for ln in Path(cfg.labels_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        unknown = sorted({c.label for c in clips if c.label and c.label not in set(names)})
        if unknown:
            raise ValueError(f"{cfg.labels_file} lacks {len(unknown)} label(s) used by the clips, e.g. {unknown[:3]}")
        return list(dict.fromkeys(names))
    return sorted({c.label for c in clips if c.label})


class _Features:
    """Features of the report's images and audio, read back from the cache every shard wrote into."""

    def __init__(self, models: dict, cache, digests: feat.Digests):
        self.models, self.cache, self.digests = models, cache, digests

    def images(self, model_name: str, paths: list[Path]):
        if model_name not in self.models:
            return None
        m = self.models[model_name]
        return finite_or_raise(feat.load_features(m.key, [self.digests(p) for p in paths], self.cache), m.name)

    def audio(self, clips):
        if "wav2clip" not in self.models:
            return None
        w2c = self.models["wav2clip"]
        keys = [self.digests.audio_key(c) for c in clips]
        return finite_or_raise(feat.load_features(w2c.key, keys, self.cache), w2c.name)

    def class_prompts(self, template: str, names: list[str], progress: bool):
        clip_l14 = self.models["clip_l14"]
        prompts = [template.format(label=n) for n in names]
        items = [feat.Item(feat.text_digest(p), lambda p=p: p) for p in prompts]
        return feat.extract(clip_l14.encode_texts, clip_l14.text_key, items, self.cache, clip_l14.batch_size,
                            desc="class prompts", show_progress=progress)


def _references(cfg, clips, names: list[str], features: _Features, images_root: Path) -> References:
    index = {n: i for i, n in enumerate(names)}
    ref_paths = [reference_path(images_root, c.id) for c in clips]
    with_aic = "aic" in cfg.metrics and names and "clip_l14" in features.models
    return References(
        audio_w2c=features.audio(clips),
        frame_l14=features.images("clip_l14", ref_paths) if "iis" in cfg.metrics else None,
        frame_inception=features.images("inception", ref_paths),
        class_l14=features.class_prompts(cfg.aic_template, names, cfg.progress) if with_aic else None,
        targets=np.asarray([index.get(c.label, -1) if c.label else -1 for c in clips], dtype=np.int64),
        class_names=names,
    )


def _per_clip(clips, members: set[int], scored: dict, prompts: dict[str, str] | None) -> list[dict]:
    predicted = scored["predicted"] or [None] * len(clips)
    return [
        {
            "id": c.id,
            "label": c.label,
            **{k: finite_or_none(v[i]) for k, v in scored["per_clip"].items()},
            "predicted": predicted[i],
            **({"prompt": prompts[c.id]} if prompts else {}),
        }
        for i, c in enumerate(clips)
        if i in members
    ]


def build_report(cfg, clips, row_clips: dict[str, list], models: dict, cache, digests: feat.Digests,
                 images_root: Path, device, prompts: dict[str, dict[str, str]] | None = None) -> dict:
    """Every row of `row_clips` (row -> the clips it covers, in report order) scored against the references
    of all `clips`; `prompts[row][clip id]` is kept with a row's per-clip values."""
    names = class_names(cfg, clips)
    features = _Features(models, cache, digests)
    refs = _references(cfg, clips, names, features, images_root)
    boot = BootstrapSettings(cfg.bootstrap, cfg.fid_bootstrap, cfg.confidence, cfg.seed, device)
    position = {c.id: i for i, c in enumerate(clips)}
    report_rows, per_class, per_clip = {}, {}, {}
    for row, members in row_clips.items():
        local_owner, paths = row_images(row, members, images_root, cfg.seeds)
        owner = np.asarray([position[members[i].id] for i in local_owner], dtype=np.int64)
        scored = score_row(RowFeatures(
            owner=owner,
            clip_b32=features.images("clip_b32", paths),
            clip_l14=features.images("clip_l14", paths),
            inception=None if row == "ground_truth" else features.images("inception", paths),
            is_reference=row == "ground_truth",
        ), refs, set(cfg.metrics), boot)
        title = ROW_TITLES[row] + (f" ({cfg.null_token})" if row == "null" else "")
        report_rows[row] = {"title": title, "n_images": len(paths), "metrics": scored["metrics"]}
        if scored["per_class"] is not None:
            per_class[row] = scored["per_class"]
        per_clip[row] = _per_clip(clips, set(owner.tolist()), scored, (prompts or {}).get(row))
    return {
        "config": _config_dict(cfg),
        "dataset": {"n_clips": len(clips), "n_classes": len(names)},
        "models": {k: {"name": m.name, "key": m.key} for k, m in models.items()},
        "rows": report_rows,
        "per_class_aic": per_class,
        "per_clip": per_clip,
    }


def _config_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    d["seeds"] = list(cfg.seeds)
    d["rows"], d["metrics"] = list(cfg.rows), list(cfg.metrics)
    return d


def write_outputs(out: Path, report: dict, cfg, clips, rows, images_root: Path) -> None:
    write_json(out / "metrics.json", report)
    write_markdown(out / "results.md", report)
    write_per_class_csv(out / "per_class_aic.csv", report["per_class_aic"])
    write_per_clip_csv(out / "per_clip.csv", report["per_clip"])
    if cfg.grid_clips > 0:
        write_grid(out / "grid.png", cfg, clips, [r for r in rows if r != "ground_truth"], images_root)
