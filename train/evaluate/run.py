"""`python -m train.evaluate`: generate, embed, score and report, sharded over processes.

Stages, each resumable:
1. clips: the dataset split, sorted by id (optionally a seeded subset); every process decodes the reference
   frame (saved as PNG) and checks the audio of its shard; clips that fail to decode are dropped by all.
2. generation: each row's images for the process's clips, fixed seeds, saved as PNG; existing images made
   with the same settings are reused.
3. features: each process embeds its shard of the images/audio into the on-disk cache.
4. scoring and report: the main process reads every feature back from the cache and writes the report.
Shards meet only through files, so `accelerate launch --num_processes N -m train.evaluate ...` needs no
collective communication beyond barriers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from . import encoders as enc
from . import features as feat
from . import generation as gen
from . import report as rep
from .config import ALL_ROWS, EvalConfig
from .processes import Processes
from .scoring import METRICS, BootstrapSettings, References, RowFeatures, score_row

log = logging.getLogger("train.evaluate")


# ---------------------------------------------------------------------------------------------- models


def required_models(cfg: EvalConfig) -> dict[str, str]:
    """Which scorer each requested metric needs, checked before any generation starts."""
    need = {}
    if "ais" in cfg.metrics:
        need["clip_b32"] = "ais"
        need["wav2clip"] = "ais"
    if "iis" in cfg.metrics or "aic" in cfg.metrics:
        need["clip_l14"] = "iis/aic"
    if "fid" in cfg.metrics:
        need["inception"] = "fid"
    return need


def check_scorers(cfg: EvalConfig) -> None:
    need = required_models(cfg)
    problems = []
    for name in need:
        try:
            if name == "clip_b32":
                enc.check_clip_folder(cfg.clip_b32, enc.CLIP_B32_SOURCE)
            elif name == "clip_l14":
                enc.check_clip_folder(cfg.clip_l14, enc.CLIP_L14_SOURCE)
            elif name == "wav2clip":
                enc.check_wav2clip_file(cfg.wav2clip)
            elif name == "inception":
                enc.check_inception_file(cfg.inception)
        except enc.MissingModelError as exc:
            problems.append(str(exc))
    if problems:
        raise enc.MissingModelError(
            "scoring models are missing (or drop the metric with --metrics):\n  - " + "\n  - ".join(problems)
        )


def load_scorers(cfg: EvalConfig, device) -> dict:
    need = required_models(cfg)
    models = {}
    if "clip_b32" in need:
        models["clip_b32"] = enc.ClipEncoder(cfg.clip_b32, device, cfg.clip_batch, enc.CLIP_B32_SOURCE)
    if "clip_l14" in need:
        models["clip_l14"] = enc.ClipEncoder(cfg.clip_l14, device, cfg.clip_batch, enc.CLIP_L14_SOURCE)
    if "wav2clip" in need:
        models["wav2clip"] = enc.Wav2ClipEncoder(cfg.wav2clip, device, cfg.audio_batch, cfg.wav2clip_rate)
    if "inception" in need:
        models["inception"] = enc.InceptionEncoder(cfg.inception, device, cfg.inception_batch)
    return models


def check_generator(cfg: EvalConfig) -> None:
    """Flags and files of the generator, checked before any frame is decoded."""
    missing = [n for n in ("base_model", "embedder", "beats") if getattr(cfg, n) is None]
    if missing:
        raise ValueError(
            "generating images needs --" + ", --".join(m.replace("_", "-") for m in missing)
            + " (or evaluate only the ground-truth row with --rows ground_truth)"
        )
    from ..generate import missing_files

    problems = missing_files(cfg.base_model, cfg.embedder, cfg.beats, cfg.base_config)
    if cfg.lora and not Path(cfg.lora).is_file():
        problems.append(f"LoRA: {cfg.lora} not found")
    if problems:
        raise enc.MissingModelError("generator files are missing:\n  - " + "\n  - ".join(problems))


def load_row_generator(cfg: EvalConfig, device) -> gen.RowGenerator:
    """The trainer's generator wrapped for the evaluation's rows."""
    import torch

    from ..generate import AudioImageGenerator

    dtype = getattr(torch, cfg.dtype)
    if torch.device(device).type == "cpu" and dtype == torch.float16:
        dtype = torch.float32  # half precision convolutions are unsupported or very slow on CPU
    generator = AudioImageGenerator.from_files(
        cfg.base_model, cfg.embedder, cfg.beats, device=device, dtype=dtype, base_config=cfg.base_config, lora=cfg.lora
    )
    identity = {
        "base_model": f"{Path(cfg.base_model).name}",
        "embedder": f"{Path(cfg.embedder).name}:{feat.file_digest(cfg.embedder)[:16]}",
    }
    if cfg.lora:
        identity["lora"] = f"{Path(cfg.lora).name}:{feat.file_digest(cfg.lora)[:16]}"
    return gen.AudioTokenRows.from_generator(generator, identity)


# ---------------------------------------------------------------------------------------------- stages


def select_clips(cfg: EvalConfig):
    from ..data import open_dataset

    dataset = open_dataset(cfg.data, cfg.split)
    clips = sorted((c for c in dataset.clips if c.frame_source is not None), key=lambda c: c.id)
    no_picture = len(dataset.clips) - len(clips)
    if cfg.limit is not None and cfg.limit < len(clips):
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(clips), size=cfg.limit, replace=False))
        clips = [clips[i] for i in pick]
    if len(clips) < 2:
        raise ValueError(f"{cfg.data}: {len(clips)} usable clip(s) in split {cfg.split!r}; the metrics need at least 2")
    info = {"source": dataset.source, "kind": dataset.kind, "split": cfg.split, "left_out": dict(dataset.left_out)}
    if no_picture:
        info["left_out"]["no_picture"] = no_picture
    return clips, info


def prepare_references(clips, images_root: Path, procs: Processes, check_audio: bool, progress: bool) -> list[str]:
    """Save this shard's reference frames; return ids of clips whose frame or audio cannot be decoded."""
    from tqdm.auto import tqdm

    failed = []
    for clip in tqdm(procs.mine(clips), desc="reference frames", disable=not progress, leave=False):
        path = gen.reference_path(images_root, clip.id)
        try:
            if not path.is_file():
                frame = clip.load_frame()
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.png")
                frame.convert("RGB").save(tmp)
                tmp.replace(path)
            if check_audio:
                wave, _ = clip.load_audio()
                if wave.numel() == 0:
                    raise ValueError("empty audio")
        except (ValueError, OSError) as exc:  # DecodeError is a ValueError
            log.warning("clip %s skipped: %s", clip.id, exc)
            failed.append(clip.id)
    return failed


def exchange_failures(state_dir: Path, procs: Processes, failed: list[str]) -> set[str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / f"failed-{procs.index}.json").write_text(json.dumps(sorted(failed)), encoding="utf-8")
    procs.wait()
    out = set()
    for i in range(procs.count):
        out |= set(json.loads((state_dir / f"failed-{i}.json").read_text(encoding="utf-8")))
    return out


def generate_row(row: str, clips, images_root: Path, generator, cfg: EvalConfig, procs: Processes) -> None:
    """Make this shard's missing images of one row (seeds in file names, so a rerun fills gaps only)."""
    from tqdm.auto import tqdm

    settings = cfg.settings()
    folder = images_root / row
    signature = settings.signature(row, generator.describe(row))
    reuse = gen.check_signature(folder, signature, cfg.overwrite)
    procs.wait()
    if procs.is_main and not reuse:
        if folder.is_dir():
            shutil.rmtree(folder)  # stale images of other settings must not be mixed into this row
        gen.write_signature(folder, signature)
    procs.wait()
    todo = [
        c for c in procs.mine(clips)
        if not all(gen.image_path(images_root, row, c.id, s).is_file() for s in settings.seeds)
    ]
    with tqdm(total=len(todo), desc=f"generate {row}", unit="clip", disable=not cfg.progress, leave=False) as bar:
        for start in range(0, len(todo), cfg.gen_batch):
            batch = todo[start : start + cfg.gen_batch]
            if row == "audio":
                images = generator.audio([c.load_audio() for c in batch], settings)
            elif row == "text":
                images = generator.text([gen.text_prompt(settings.prompt, c.label) for c in batch], settings)
            else:
                images = generator.null([c.id for c in batch], settings)
            if len(images) != len(batch) or any(len(per) != len(settings.seeds) for per in images):
                raise RuntimeError(f"generator returned {len(images)} image lists for {len(batch)} clips ({row})")
            for c, per_seed in zip(batch, images):
                for s, im in zip(settings.seeds, per_seed):
                    path = gen.image_path(images_root, row, c.id, s)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.png")
                    im.convert("RGB").save(tmp)
                    tmp.replace(path)
            bar.update(len(batch))


def row_images(row: str, clips, images_root: Path, seeds) -> tuple[np.ndarray, list[Path]]:
    """(owner clip index per image, image paths) of a row, in a fixed order."""
    if row == "ground_truth":
        return np.arange(len(clips)), [gen.reference_path(images_root, c.id) for c in clips]
    owner, paths = [], []
    for i, c in enumerate(clips):
        for s in seeds:
            owner.append(i)
            paths.append(gen.image_path(images_root, row, c.id, s))
    return np.asarray(owner, dtype=np.int64), paths


class Digests:
    """File content hashes, memoised: every image is hashed at most once per process."""

    def __init__(self):
        self._memo: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._memo:
            self._memo[path] = feat.file_digest(path)
        return self._memo[path]

    def audio_key(self, clip) -> str:
        return feat.text_digest(self(Path(clip.audio_path)), clip.start_s, clip.duration_s)


def _open_image(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def image_jobs(cfg: EvalConfig, rows: list[str], clips, images_root: Path) -> dict[str, list[Path]]:
    """Per image scorer, the image files it must embed (references included where a metric uses them)."""
    refs = [gen.reference_path(images_root, c.id) for c in clips]
    generated = {r: row_images(r, clips, images_root, cfg.seeds)[1] for r in rows}
    jobs: dict[str, list[Path]] = {}
    if "ais" in cfg.metrics:
        jobs["clip_b32"] = [p for r in rows for p in generated[r]]
    if "iis" in cfg.metrics or "aic" in cfg.metrics:
        jobs["clip_l14"] = refs + [p for r in rows if r != "ground_truth" for p in generated[r]]
    if "fid" in cfg.metrics:
        jobs["inception"] = refs + [p for r in rows if r != "ground_truth" for p in generated[r]]
    return {k: list(dict.fromkeys(v)) for k, v in jobs.items()}


def extract_shard(cfg, models, clips, jobs, cache, procs, digests) -> None:
    for name, paths in jobs.items():
        mine = procs.mine(paths)
        items = [feat.Item(digests(p), lambda p=p: _open_image(p)) for p in mine]
        feat.compute_missing(
            models[name].encode_images, models[name].key, items, cache, models[name].batch_size,
            desc=f"{name} features", show_progress=cfg.progress,
        )
    if "wav2clip" in models:
        w2c = models["wav2clip"]
        items = [
            feat.Item(digests.audio_key(c), lambda c=c: w2c.prepare(*c.load_audio())) for c in procs.mine(clips)
        ]
        feat.compute_missing(w2c.encode_audio, w2c.key, items, cache, w2c.batch_size, desc="wav2clip features",
                             show_progress=cfg.progress)


def class_names(cfg: EvalConfig, clips) -> list[str]:
    if cfg.labels_file:
        names = [ln.strip() for ln in Path(cfg.labels_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        unknown = sorted({c.label for c in clips if c.label and c.label not in set(names)})
        if unknown:
            raise ValueError(f"{cfg.labels_file} lacks {len(unknown)} label(s) used by the clips, e.g. {unknown[:3]}")
        return list(dict.fromkeys(names))
    return sorted({c.label for c in clips if c.label})


# ---------------------------------------------------------------------------------------------- main entry


def evaluate(cfg: EvalConfig, generator: gen.RowGenerator | None = None, scorers: dict | None = None) -> dict | None:
    """Run the evaluation; returns the report on the main process (None elsewhere).

    `generator` and `scorers` replace the file-loaded models (tests inject small ones)."""
    unknown = set(cfg.rows) - set(ALL_ROWS)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; choose from {', '.join(ALL_ROWS)}")
    unknown = set(cfg.metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(METRICS)}")
    procs = Processes(cfg.cpu)
    out = Path(cfg.out)
    images_root = out / "images"
    cache = feat.FeatureCache(cfg.cache_dir or out / "feature_cache")
    progress = cfg.progress and procs.is_main
    cfg = dataclasses.replace(cfg, progress=progress)
    if scorers is None:
        check_scorers(cfg)
    if generator is None and any(r in gen.ROWS_GENERATED for r in cfg.rows):
        check_generator(cfg)

    clips, data_info = select_clips(cfg)
    gen_rows = [r for r in cfg.rows if r in gen.ROWS_GENERATED]
    if "text" in gen_rows and not any(c.label for c in clips):
        log.warning("no clip has a label: the text upper-bound row is skipped")
        gen_rows.remove("text")
    failed = prepare_references(clips, images_root, procs, check_audio=bool(gen_rows) or "ais" in cfg.metrics,
                                progress=progress)
    failed = exchange_failures(out / "state", procs, failed)
    if failed:
        data_info["left_out"]["decode_failed"] = len(failed)
        clips = [c for c in clips if c.id not in failed]

    row_gen_info = None
    if gen_rows:
        generator = generator or load_row_generator(cfg, procs.device)
        row_gen_info = generator.describe("audio")
        for row in gen_rows:
            row_clips = [c for c in clips if c.label] if row == "text" else clips
            generate_row(row, row_clips, images_root, generator, cfg, procs)
        del generator
        _free_accelerator_memory()
    procs.wait()

    rows = gen_rows + (["ground_truth"] if "ground_truth" in cfg.rows else [])
    row_clip_lists = {r: ([c for c in clips if c.label] if r == "text" else clips) for r in rows}
    models = scorers if scorers is not None else load_scorers(cfg, procs.device)
    digests = Digests()
    jobs = image_jobs(cfg, [r for r in rows if r != "text"], clips, images_root)
    if "text" in rows:
        text_jobs = image_jobs(cfg, ["text"], row_clip_lists["text"], images_root)
        for k, v in text_jobs.items():
            jobs[k] = list(dict.fromkeys(jobs.get(k, []) + v))
    needed = required_models(cfg)
    missing = sorted(set(needed) - set(models))
    if missing:
        raise ValueError(f"scorers {missing} are needed for metrics {sorted(cfg.metrics)}")
    models = {k: v for k, v in models.items() if k in needed}  # an unused scorer must not be asked for features
    extract_shard(cfg, models, clips, jobs, cache, procs, digests)
    procs.wait()
    if not procs.is_main:
        return None

    report = build_report(cfg, clips, rows, row_clip_lists, models, cache, digests, images_root, procs.device)
    report["dataset"].update(data_info)
    report["generator"] = row_gen_info
    write_outputs(out, report, cfg, clips, rows, images_root)
    return report


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def build_report(cfg, clips, rows, row_clip_lists, models, cache, digests, images_root, device) -> dict:
    names = class_names(cfg, clips)
    index = {n: i for i, n in enumerate(names)}
    targets = np.asarray([index.get(c.label, -1) if c.label else -1 for c in clips], dtype=np.int64)
    ref_paths = [gen.reference_path(images_root, c.id) for c in clips]

    def image_feats(model_name: str, paths: list[Path]):
        if model_name not in models:
            return None
        m = models[model_name]
        return enc.finite_or_raise(feat.load_features(m.key, [digests(p) for p in paths], cache), m.name)

    audio = None
    if "wav2clip" in models:
        w2c = models["wav2clip"]
        audio = enc.finite_or_raise(feat.load_features(w2c.key, [digests.audio_key(c) for c in clips], cache), w2c.name)
    class_emb = None
    if "aic" in cfg.metrics and names and "clip_l14" in models:
        clip_l14 = models["clip_l14"]
        prompts = [cfg.aic_template.format(label=n) for n in names]
        items = [feat.Item(feat.text_digest(p), lambda p=p: p) for p in prompts]
        class_emb = feat.extract(clip_l14.encode_texts, clip_l14.text_key, items, cache, clip_l14.batch_size,
                                 desc="class prompts", show_progress=cfg.progress)
    refs = References(
        audio_w2c=audio,
        frame_l14=image_feats("clip_l14", ref_paths) if "iis" in cfg.metrics else None,
        frame_inception=image_feats("inception", ref_paths),
        class_l14=class_emb,
        targets=targets,
        class_names=names,
    )
    boot = BootstrapSettings(cfg.bootstrap, cfg.fid_bootstrap, cfg.confidence, cfg.seed, device)
    position = {c.id: i for i, c in enumerate(clips)}
    report_rows, per_class, per_clip = {}, {}, {}
    for row in rows:
        # A clip without a label has no text prompt, so the text row covers labelled clips only.
        row_clips = row_clip_lists[row]
        local_owner, paths = row_images(row, row_clips, images_root, cfg.seeds)
        owner = np.asarray([position[row_clips[i].id] for i in local_owner], dtype=np.int64)
        features = RowFeatures(
            owner=owner,
            clip_b32=image_feats("clip_b32", paths),
            clip_l14=image_feats("clip_l14", paths),
            inception=None if row == "ground_truth" else image_feats("inception", paths),
            is_reference=row == "ground_truth",
        )
        scored = score_row(features, refs, set(cfg.metrics), boot)
        title = rep.ROW_TITLES[row] + (f" ({cfg.null_token})" if row == "null" else "")
        report_rows[row] = {"title": title, "n_images": len(paths), "metrics": scored["metrics"]}
        if scored["per_class"] is not None:
            per_class[row] = scored["per_class"]
        present = set(owner.tolist())
        per_clip[row] = [
            {
                "id": c.id,
                "label": c.label,
                **{k: _opt(v[i]) for k, v in scored["per_clip"].items()},
                "predicted": (scored["predicted"] or [None] * len(clips))[i],
            }
            for i, c in enumerate(clips)
            if i in present
        ]
    return {
        "config": _config_dict(cfg),
        "dataset": {"n_clips": len(clips), "n_classes": len(names)},
        "models": {k: {"name": m.name, "key": m.key} for k, m in models.items()},
        "rows": report_rows,
        "per_class_aic": per_class,
        "per_clip": per_clip,
    }


def _opt(x):
    return None if x is None or not np.isfinite(x) else float(x)


def _config_dict(cfg: EvalConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["seeds"] = list(cfg.seeds)
    d["rows"], d["metrics"] = list(cfg.rows), list(cfg.metrics)
    return d


def write_outputs(out: Path, report: dict, cfg: EvalConfig, clips, rows, images_root: Path) -> None:
    rep.write_json(out / "metrics.json", report)
    rep.write_markdown(out / "results.md", report)
    rep.write_per_class_csv(out / "per_class_aic.csv", report["per_class_aic"])
    rep.write_per_clip_csv(out / "per_clip.csv", report["per_clip"])
    if cfg.grid_clips > 0:
        write_grid(out / "grid.png", cfg, clips, [r for r in rows if r != "ground_truth"], images_root)


def write_grid(path: Path, cfg: EvalConfig, clips, rows: list[str], images_root: Path) -> None:
    count = min(cfg.grid_clips, len(clips))
    pick = np.sort(np.random.default_rng(cfg.seed).choice(len(clips), size=count, replace=False))
    titles = ["reference"] + [f"{r} s{s}" for r in rows for s in cfg.seeds]
    lines = []
    for i in pick:
        c = clips[i]
        cells = [_open_image(gen.reference_path(images_root, c.id))]
        for r in rows:
            for s in cfg.seeds:
                p = gen.image_path(images_root, r, c.id, s)
                cells.append(_open_image(p) if p.is_file() else None)
        lines.append((f"{c.id}  [{c.label or 'no label'}]", cells))
    rep.image_grid(lines, titles).save(path)
