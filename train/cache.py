"""Precomputed frozen work: BEATs layer features per audio window and the VAE latent distribution
(mean, std) of a frame inside that window, in safetensors shards plus an `index.json`.

A training step then runs only the Embedder, the text encoder(s) and the UNet. Latents are stored
as a distribution and sampled per step, as the original's `latent_dist.sample()` does.

Layout of `<cache>/`:
  shards/r<rank>-<n>.safetensors   tensors `<k>.features`, `<k>.mean`, `<k>.std`
  parts/r<rank>.jsonl              one line per finished shard (its entries) or skipped clip
  index.json                       merged entries + fingerprint, written last (atomically)

Precompute resumes: windows already listed in `parts/` are not computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from audiotoken_core.safeload import atomic_write, atomic_write_text

from .batches import CachedInputs, Item
from .data.sampling import item_rng, try_view

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def fingerprint_digest(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def _write_json_atomic(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data))


def _write_shard_atomic(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    # not write_safetensors: its private copy of views that share storage would double a shard's memory
    clean = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(clean, str(tmp), metadata={"format": "audiotoken-cache"}))


def read_index(cache_dir: str | Path) -> dict | None:
    path = Path(cache_dir) / "index.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def cache_is_valid(cache_dir: str | Path, fingerprint: dict) -> bool:
    index = read_index(cache_dir)
    return index is not None and index.get("fingerprint_digest") == fingerprint_digest(fingerprint)


def prepare_cache_dir(cache_dir: str | Path, fingerprint: dict) -> bool:
    """Make `cache_dir` hold only work for `fingerprint` (call on one process); True if old work was removed.

    Partial work from a run with the same settings is kept so the precompute resumes; anything built with
    other settings (another BEATs file, window, frame size...) is deleted rather than mixed in.
    """
    import shutil

    cache_dir = Path(cache_dir)
    stamp = cache_dir / "fingerprint.json"
    wiped = False
    if stamp.is_file():
        try:
            same = json.loads(stamp.read_text()) == json.loads(json.dumps(fingerprint))
        except json.JSONDecodeError:
            same = False
        if not same:
            for name in ("shards", "parts"):
                shutil.rmtree(cache_dir / name, ignore_errors=True)
            (cache_dir / "index.json").unlink(missing_ok=True)
            wiped = True
    elif (cache_dir / "parts").is_dir() or (cache_dir / "index.json").is_file():
        for name in ("shards", "parts"):  # unknown provenance: do not trust it
            shutil.rmtree(cache_dir / name, ignore_errors=True)
        (cache_dir / "index.json").unlink(missing_ok=True)
        wiped = True
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(stamp, fingerprint)
    return wiped


class _Views(torch.utils.data.Dataset):
    """(clip index, window number) -> decoded view; decoding happens in DataLoader workers."""

    def __init__(self, dataset, jobs, seed, window_s, size, policy):
        self.dataset, self.jobs = dataset, jobs
        self.seed, self.window_s, self.size, self.policy = seed, window_s, size, policy

    def __len__(self):
        return len(self.jobs)

    def __getitem__(self, i):
        index, w = self.jobs[i]
        view = try_view(self.dataset[index], item_rng(self.seed, 0xCAC4E, index, w), self.window_s, self.size, self.policy)
        return index, w, view


def _read_parts(parts_dir: Path) -> tuple[list[dict], set[str]]:
    entries, skipped = [], set()
    for part in sorted(parts_dir.glob("r*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash; its shard is recomputed
            if "skipped" in rec:
                skipped.add(rec["skipped"])
            else:
                entries.extend(rec["entries"])
    return entries, skipped


class _ShardWriter:
    """Buffers finished windows of one process and writes them as a shard plus one line in its parts file.

    The parts line is written after the shard, so a crash in between only loses work (recomputed on resume),
    never lists a shard that is not there.
    """

    def __init__(self, cache_dir: Path, rank: int, shard_windows: int):
        self.shards, self.rank, self.shard_windows = cache_dir / "shards", rank, shard_windows
        self.part_path = cache_dir / "parts" / f"r{rank}.jsonl"
        self.shard_no = len(list(self.shards.glob(f"r{rank}-*.safetensors")))
        self.buffer: dict[str, torch.Tensor] = {}
        self.entries: list[dict] = []

    def add(self, features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, entry: dict) -> None:
        key = str(len(self.entries))
        self.buffer.update({f"{key}.features": features, f"{key}.mean": mean, f"{key}.std": std})
        self.entries.append({**entry, "key": key})
        if len(self.entries) >= self.shard_windows:
            self.flush()

    def skip(self, clip_id: str) -> None:
        with self.part_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"skipped": clip_id}) + "\n")

    def flush(self) -> None:
        if not self.entries:
            return
        name = f"r{self.rank}-{self.shard_no:05d}.safetensors"
        while (self.shards / name).exists():  # never overwrite a shard a crashed run listed
            self.shard_no += 1
            name = f"r{self.rank}-{self.shard_no:05d}.safetensors"
        _write_shard_atomic(self.shards / name, self.buffer)
        for e in self.entries:
            e["shard"] = name
        with self.part_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"entries": self.entries}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.shard_no += 1
        self.buffer, self.entries = {}, []


def _pending_jobs(dataset, parts_dir: Path, rank: int, world: int, windows_per_clip: int) -> list[tuple[int, int]]:
    """(clip index, window number) pairs of this process that no earlier, interrupted run finished."""
    done_entries, done_skipped = _read_parts(parts_dir)
    done = {(e["clip_index"], e["window"]) for e in done_entries}
    return [
        (i, w)
        for i in range(rank, len(dataset), world)
        for w in range(windows_per_clip)
        if (i, w) not in done and dataset[i].id not in done_skipped
    ]


def _encode_views(good: list, features_fn, vae, feature_dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The frozen work for a batch of decoded views: BEATs features and the frames' latent distribution."""
    device, vae_dtype = next(vae.parameters()).device, next(vae.parameters()).dtype
    feats = features_fn(torch.stack([v.wave for _, _, v in good])).to("cpu", feature_dtype)
    dist = vae.encode(torch.stack([v.pixels for _, _, v in good]).to(device, vae_dtype)).latent_dist
    return feats, dist.mean.float().cpu(), dist.std.float().cpu()


@torch.no_grad()
def precompute(
    dataset,
    cache_dir: str | Path,
    features_fn,
    vae,
    *,
    fingerprint: dict,
    window_s: float,
    size: tuple[int, int],
    policy: str,
    windows_per_clip: int,
    seed: int,
    batch_size: int = 8,
    shard_windows: int = 256,
    feature_dtype: torch.dtype = torch.float16,
    rank: int = 0,
    world: int = 1,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Fill this process's part of the cache; returns counts {"windows", "skipped"}.

    `features_fn(wave16k[B, T]) -> [B, N, F]` is `AudioTokenizer.features`. Clip i goes to process
    `i % world`. Call `merge_index` on one process after all have finished.
    """
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    (cache_dir / "shards").mkdir(parents=True, exist_ok=True)
    (cache_dir / "parts").mkdir(parents=True, exist_ok=True)
    jobs = _pending_jobs(dataset, cache_dir / "parts", rank, world, windows_per_clip)
    if not jobs:
        return {"windows": 0, "skipped": 0}
    loader = torch.utils.data.DataLoader(_Views(dataset, jobs, seed, window_s, size, policy),
                                         batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    writer = _ShardWriter(cache_dir, rank, shard_windows)
    counts = {"windows": 0, "skipped": 0}
    skipped_now: set[str] = set()
    bar = tqdm(total=len(jobs), desc=f"precompute[{rank}]", disable=not progress, unit="win")
    for batch in loader:
        for i, _, v in batch:
            if v is None and dataset[i].id not in skipped_now:
                skipped_now.add(dataset[i].id)
                counts["skipped"] += 1
                writer.skip(dataset[i].id)
        bar.update(len(batch))
        good = [(i, w, v) for i, w, v in batch if v is not None]
        if not good:
            continue
        feats, mean, std = _encode_views(good, features_fn, vae, feature_dtype)
        for j, (i, w, v) in enumerate(good):
            clip = dataset[i]
            writer.add(feats[j], mean[j], std[j], {
                "clip_index": i, "window": w, "id": clip.id, "label": clip.label,
                "window_start_s": round(v.window_start_s, 4), "frame_time_s": round(v.frame_time_s, 4),
            })
            counts["windows"] += 1
    writer.flush()
    bar.close()
    return counts


def merge_index(cache_dir: str | Path, fingerprint: dict, n_clips: int) -> dict:
    """Combine every process's parts into `index.json` (atomic) and return it."""
    cache_dir = Path(cache_dir)
    entries, skipped = _read_parts(cache_dir / "parts")
    by_clip: dict[int, dict] = {}
    for e in sorted(entries, key=lambda e: (e["clip_index"], e["window"])):
        clip = by_clip.setdefault(e["clip_index"], {"id": e["id"], "label": e["label"], "windows": []})
        if all(w[2] != e["window"] for w in clip["windows"]):
            clip["windows"].append([e["shard"], e["key"], e["window"]])
    clips = [by_clip[i] for i in sorted(by_clip)]
    index = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "fingerprint_digest": fingerprint_digest(fingerprint),
        "clips": clips,
        "skipped": sorted(skipped),
        "dataset_clips": n_clips,
    }
    _write_json_atomic(cache_dir / "index.json", index)
    return index


class CachedDataset(torch.utils.data.Dataset):
    """Items addressed by `(epoch, index)`; the window of a clip is drawn reproducibly from both."""

    def __init__(self, cache_dir: str | Path, seed: int = 0):
        self.cache_dir = Path(cache_dir)
        index = read_index(self.cache_dir)
        if index is None:
            raise FileNotFoundError(f"{self.cache_dir / 'index.json'} is missing: run the precompute pass first")
        if index.get("version") != CACHE_VERSION:
            raise ValueError(f"{self.cache_dir}: cache version {index.get('version')} != {CACHE_VERSION}; rebuild it")
        self.index = index
        self.clips = index["clips"]
        self.seed = seed
        self._handles: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.clips)

    def _tensor(self, shard: str, key: str) -> torch.Tensor:
        from safetensors import safe_open

        handle = self._handles.get(shard)
        if handle is None:
            handle = safe_open(str(self.cache_dir / "shards" / shard), framework="pt")
            self._handles[shard] = handle
        return handle.get_tensor(key)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        clip = self.clips[index]
        rng = item_rng(self.seed, epoch, index)
        shard, k, _ = clip["windows"][int(rng.integers(len(clip["windows"])))]
        inputs = CachedInputs(*(self._tensor(shard, f"{k}.{name}") for name in ("features", "mean", "std")))
        return Item(clip["id"], clip["label"], inputs)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = {}  # file handles do not cross into DataLoader workers
        return state
