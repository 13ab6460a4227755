"""`python -m train.evaluate`: generate, embed, score and report, sharded over processes.

Stages, each resumable:
1. clips: the dataset split, sorted by id (optionally a seeded subset); every process decodes the reference
   frame (saved as PNG) and checks the audio of its shard; clips that fail to decode are dropped by all.
2. labels (only for the `labels` rows): each process asks BEATs's AudioSet head what its clips sound like.
3. generation: each row's images for the process's clips, fixed seeds, saved as PNG; existing images made
   with the same settings are reused.
4. features: each process embeds its shard of the images/audio into the on-disk cache.
5. scoring and report: the main process reads every feature back from the cache and writes the report.
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

from audiotoken_core.safeload import atomic_write_text

from . import encoders as enc
from . import features as feat
from . import generation as gen
from . import images as img
from . import report as rep
from .config import ALL_ROWS, EvalConfig
from .processes import Processes
from .scoring import METRICS

log = logging.getLogger("train.evaluate")


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
        path = img.reference_path(images_root, clip.id)
        try:
            if not path.is_file():
                img.save_image(path, clip.load_frame())
            if check_audio:
                wave, _ = clip.load_audio()
                if wave.numel() == 0:
                    raise ValueError("empty audio")
        except (ValueError, OSError) as exc:  # DecodeError is a ValueError
            log.warning("clip %s skipped: %s", clip.id, exc)
            failed.append(clip.id)
    return failed


def share(state_dir: Path, name: str, procs: Processes, mine) -> list:
    """What every process passed as `mine` (JSON), in process order; each gets all of them."""
    atomic_write_text(state_dir / f"{name}-{procs.index}.json", json.dumps(mine, sort_keys=True))
    procs.wait()
    return [json.loads((state_dir / f"{name}-{i}.json").read_text(encoding="utf-8")) for i in range(procs.count)]


def hear_labels(clips, generator, cfg: EvalConfig, procs: Processes, state_dir: Path) -> dict[str, str]:
    """{clip id: label words} of every clip, each process hearing its shard."""
    from tqdm.auto import tqdm

    settings, mine, words = cfg.settings(), procs.mine(clips), {}
    for start in tqdm(range(0, len(mine), cfg.gen_batch), desc="BEATs labels", disable=not cfg.progress, leave=False):
        batch = mine[start : start + cfg.gen_batch]
        words.update(zip((c.id for c in batch), generator.labels([c.load_audio() for c in batch], settings)))
    return {k: v for part in share(state_dir, "labels", procs, words) for k, v in part.items()}


def prepare_row_folder(row: str, images_root: Path, generator, cfg: EvalConfig, procs: Processes) -> None:
    """Keep the row's images when they were made with these settings, else start the row afresh."""
    folder = images_root / row
    signature = cfg.settings().signature(row, generator.describe(row))
    reuse = img.check_signature(folder, signature, cfg.overwrite)
    procs.wait()
    if procs.is_main and not reuse:
        if folder.is_dir():
            shutil.rmtree(folder)  # stale images of other settings must not be mixed into this row
        img.write_signature(folder, signature)
    procs.wait()


def row_batch_images(row: str, batch, prompts: dict[str, str], generator, settings) -> list[list]:
    if row == "audio":
        return generator.audio([c.load_audio() for c in batch], settings)
    if row == "labels_token":
        return generator.audio([c.load_audio() for c in batch], settings, [prompts[c.id] for c in batch])
    if row in ("text", "labels"):
        return generator.text([prompts[c.id] for c in batch], settings)
    return generator.null([c.id for c in batch], settings)


def generate_row(row: str, clips, images_root: Path, generator, cfg: EvalConfig, procs: Processes,
                 prompts: dict[str, str] | None = None) -> None:
    """Make this shard's missing images of one row (seeds in file names, so a rerun fills gaps only)."""
    from tqdm.auto import tqdm

    settings = cfg.settings()
    prepare_row_folder(row, images_root, generator, cfg, procs)
    todo = [
        c for c in procs.mine(clips)
        if not all(img.image_path(images_root, row, c.id, s).is_file() for s in settings.seeds)
    ]
    with tqdm(total=len(todo), desc=f"generate {row}", unit="clip", disable=not cfg.progress, leave=False) as bar:
        for start in range(0, len(todo), cfg.gen_batch):
            batch = todo[start : start + cfg.gen_batch]
            images = row_batch_images(row, batch, prompts or {}, generator, settings)
            if len(images) != len(batch) or any(len(per) != len(settings.seeds) for per in images):
                raise RuntimeError(f"generator returned {len(images)} image lists for {len(batch)} clips ({row})")
            for c, per_seed in zip(batch, images):
                for s, im in zip(settings.seeds, per_seed):
                    img.save_image(img.image_path(images_root, row, c.id, s), im)
            bar.update(len(batch))


def generate_rows(cfg: EvalConfig, rows: list[str], clips, row_clips: dict, generator, procs: Processes,
                  out: Path) -> dict[str, dict[str, str]]:
    """Every generated row's images; returns the per-clip prompts of the rows that have them."""
    words = {}
    if any(r in gen.LABEL_ROWS for r in rows):  # before any image: a BEATs without a head fails here
        words = hear_labels(clips, generator, cfg, procs, out / "state")
    prompts = {}
    for row in rows:
        row_prompts = gen.row_prompts(row, cfg.prompt, row_clips[row], words)
        if row_prompts is not None:
            prompts[row] = {c.id: p for c, p in zip(row_clips[row], row_prompts)}
        generate_row(row, row_clips[row], out / "images", generator, cfg, procs, prompts.get(row))
    return prompts


def image_jobs(cfg: EvalConfig, row_clips: dict[str, list], clips, images_root: Path) -> dict[str, list[Path]]:
    """Per image scorer, the image files it must embed (references included where a metric uses them)."""
    refs = [img.reference_path(images_root, c.id) for c in clips]
    generated = {r: img.row_images(r, members, images_root, cfg.seeds)[1] for r, members in row_clips.items()}
    made = [p for r, paths in generated.items() if r != "ground_truth" for p in paths]
    jobs: dict[str, list[Path]] = {}
    if "ais" in cfg.metrics:
        jobs["clip_b32"] = [p for paths in generated.values() for p in paths]
    if "iis" in cfg.metrics or "aic" in cfg.metrics:
        jobs["clip_l14"] = refs + made
    if "fid" in cfg.metrics:
        jobs["inception"] = refs + made
    return {k: list(dict.fromkeys(v)) for k, v in jobs.items()}


def extract_shard(cfg, models, clips, jobs, cache, procs, digests) -> None:
    for name, paths in jobs.items():
        mine = procs.mine(paths)
        items = [feat.Item(digests(p), lambda p=p: img.open_image(p)) for p in mine]
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


def check_request(cfg: EvalConfig) -> None:
    unknown = set(cfg.rows) - set(ALL_ROWS)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; choose from {', '.join(ALL_ROWS)}")
    unknown = set(cfg.metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(METRICS)}")


def rows_to_generate(cfg: EvalConfig, clips) -> list[str]:
    rows = [r for r in cfg.rows if r in gen.ROWS_GENERATED]
    if "text" in rows and not any(c.label for c in clips):
        log.warning("no clip has a label: the text upper-bound row is skipped")
        rows.remove("text")
    return rows


def drop_failed_clips(clips, data_info: dict, images_root: Path, procs: Processes, cfg: EvalConfig,
                      check_audio: bool, out: Path) -> list:
    failed = prepare_references(clips, images_root, procs, check_audio=check_audio, progress=cfg.progress)
    failed = set().union(*share(out / "state", "failed", procs, sorted(failed)))
    if failed:
        data_info["left_out"]["decode_failed"] = len(failed)
    return [c for c in clips if c.id not in failed]


def score_models(cfg: EvalConfig, scorers: dict | None, device) -> dict:
    """The scorers the metrics need (an unused one must not be asked for features)."""
    models = scorers if scorers is not None else enc.load_scorers(cfg, device)
    needed = enc.required_models(cfg)
    missing = sorted(set(needed) - set(models))
    if missing:
        raise ValueError(f"scorers {missing} are needed for metrics {sorted(cfg.metrics)}")
    return {k: v for k, v in models.items() if k in needed}


def evaluate(cfg: EvalConfig, generator: gen.RowGenerator | None = None, scorers: dict | None = None) -> dict | None:
    """Run the evaluation; returns the report on the main process (None elsewhere).

    `generator` and `scorers` replace the file-loaded models (tests inject small ones)."""
    check_request(cfg)
    procs = Processes(cfg.cpu)
    out = Path(cfg.out)
    images_root = out / "images"
    cache = feat.FeatureCache(cfg.cache_dir or out / "feature_cache")
    cfg = dataclasses.replace(cfg, progress=cfg.progress and procs.is_main)
    if scorers is None:
        enc.check_scorers(cfg)
    if generator is None and any(r in gen.ROWS_GENERATED for r in cfg.rows):
        gen.check_generator(cfg)

    clips, data_info = select_clips(cfg)
    gen_rows = rows_to_generate(cfg, clips)
    clips = drop_failed_clips(clips, data_info, images_root, procs, cfg, bool(gen_rows) or "ais" in cfg.metrics, out)
    rows = gen_rows + (["ground_truth"] if "ground_truth" in cfg.rows else [])
    # A clip without a label has no text prompt, so the text row covers labelled clips only.
    row_clips = {r: ([c for c in clips if c.label] if r == "text" else clips) for r in rows}

    row_gen_info, prompts = None, {}
    if gen_rows:
        generator = generator or gen.load_row_generator(cfg, procs.device)
        row_gen_info = generator.describe("audio")
        prompts = generate_rows(cfg, gen_rows, clips, row_clips, generator, procs, out)
        del generator
        _free_accelerator_memory()
    procs.wait()

    models = score_models(cfg, scorers, procs.device)
    digests = feat.Digests()
    extract_shard(cfg, models, clips, image_jobs(cfg, row_clips, clips, images_root), cache, procs, digests)
    procs.wait()
    if not procs.is_main:
        return None

    report = rep.build_report(cfg, clips, row_clips, models, cache, digests, images_root, procs.device,
                              {r: p for r, p in prompts.items() if r in gen.LABEL_ROWS})
    report["dataset"].update(data_info)
    report["generator"] = row_gen_info
    rep.write_outputs(out, report, cfg, clips, rows, images_root)
    return report


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
