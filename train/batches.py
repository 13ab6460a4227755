"""What a micro-batch is (the contract between the data and `Trainer.loss`) and which clips it holds.

A batch carries either the cache's inputs (BEATs features and the frame's latent distribution) or the raw
inputs of the original recipe (audio window and frame pixels), never a mix; `Trainer.loss` branches on the
type. Which clips it holds is a pure function of (seed, micro step): every epoch is a seeded permutation,
micro step m of the run takes slice m of it, and process r takes its own part of that global batch.
Nothing depends on iterator state, so a resumed run sees exactly the batches the interrupted run would
have seen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from .data.sampling import item_rng, try_view


@dataclass
class CachedInputs:
    """What the cache stores per window; tensors of one item, or stacked with a batch dimension."""

    features: torch.Tensor  # [(B,) N, F] BEATs layer features, often fp16
    mean: torch.Tensor  # [(B,) C, h, w] the frame's VAE latent distribution
    std: torch.Tensor


@dataclass
class RawInputs:
    """The original recipe's inputs, encoded by BEATs and the VAE at every step."""

    wave: torch.Tensor  # [(B,) T] 16 kHz mono window
    pixels: torch.Tensor  # [(B,) 3, H, W] in [-1, 1]


Inputs = CachedInputs | RawInputs


def _map(inputs: Inputs, fn: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    return dataclasses.replace(inputs, **{f.name: fn(getattr(inputs, f.name)) for f in dataclasses.fields(inputs)})


@dataclass
class Item:
    """One clip's view, as a dataset returns it."""

    id: str
    label: str | None
    inputs: Inputs


@dataclass
class Batch:
    """One micro-batch. `inputs` is None when every clip in it was unreadable (`skipped` counts them)."""

    ids: list[str]
    labels: list[str | None]
    inputs: Inputs | None
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def cached(cls, features, mean, std, labels: list[str | None] | None = None) -> "Batch":
        """A batch made outside the data pipeline (benchmarks, tests)."""
        n = features.shape[0]
        return cls([str(i) for i in range(n)], list(labels or [None] * n), CachedInputs(features, mean, std))

    def pin_memory(self) -> "Batch":
        # DataLoader(pin_memory=True) calls this on custom batch types
        if self.inputs is None:
            return self
        return dataclasses.replace(self, inputs=_map(self.inputs, lambda t: t.pin_memory()))


def as_batch(batch: "Batch | Mapping") -> Batch:
    """Accept the old string-keyed dict (`features`/`mean`/`std` or `wave`/`pixels`) from callers outside
    train/ that have not moved to `Batch` yet (benchmarks/train_throughput.py)."""
    if isinstance(batch, Batch):
        return batch
    if "features" in batch:
        inputs: Inputs | None = CachedInputs(batch["features"], batch["mean"], batch["std"])
    elif "wave" in batch:
        inputs = RawInputs(batch["wave"], batch["pixels"])
    else:
        inputs = None
    n = 0 if inputs is None else next(iter(vars(inputs).values())).shape[0]
    return Batch(list(batch.get("id") or [str(i) for i in range(n)]), list(batch.get("label") or [None] * n),
                 inputs, int(batch.get("skipped", 0)))


class StepBatches:
    def __init__(self, n_items: int, batch_size: int, *, seed: int, rank: int = 0, world: int = 1,
                 start: int = 0, stop: int):
        global_batch = batch_size * world
        if n_items < global_batch:
            raise ValueError(
                f"the dataset has {n_items} usable clips, fewer than one global batch "
                f"({batch_size} per process x {world} processes); add data or lower --batch-size"
            )
        self.n, self.batch, self.seed, self.rank, self.world = n_items, batch_size, seed, rank, world
        self.per_epoch = n_items // global_batch
        self.start, self.stop = start, stop
        self._perm_epoch, self._perm = None, None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def batch_at(self, micro_step: int) -> list[tuple[int, int]]:
        epoch, pos = divmod(micro_step, self.per_epoch)
        if self._perm_epoch != epoch:
            gen = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=gen).tolist(), epoch
        g = pos * self.batch * self.world + self.rank * self.batch
        return [(epoch, i) for i in self._perm[g : g + self.batch]]

    def __iter__(self):
        for m in range(self.start, self.stop):
            yield self.batch_at(m)


class RawViews(torch.utils.data.Dataset):
    """The original recipe's input: decode audio and frame for every step (no cache)."""

    def __init__(self, clips, *, window_s: float, size, policy: str, seed: int):
        self.clips, self.window_s, self.size, self.policy, self.seed = clips, window_s, size, policy, seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key):
        epoch, index = key
        clip = self.clips[index]
        view = try_view(clip, item_rng(self.seed, epoch, index), self.window_s, self.size, self.policy)
        if view is None:
            return None
        return Item(clip.id, clip.label, RawInputs(view.wave, view.pixels))


def collate(items: list[Item | None]) -> Batch:
    """Stack the items' tensors; unreadable items (None) are dropped and counted."""
    good = [it for it in items if it is not None]
    skipped = len(items) - len(good)
    if not good:
        return Batch([], [], None, skipped)
    first = good[0].inputs
    stacked = {f.name: torch.stack([getattr(it.inputs, f.name) for it in good]) for f in dataclasses.fields(first)}
    return Batch([it.id for it in good], [it.label for it in good], type(first)(**stacked), skipped)
