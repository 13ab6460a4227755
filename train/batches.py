"""Which clips each micro-batch holds, as a pure function of (seed, micro step).

Every epoch is a seeded permutation; micro step m of the run takes slice m of it, and process r takes
its own part of that global batch. Nothing depends on iterator state, so a resumed run sees exactly
the batches the interrupted run would have seen.
"""

from __future__ import annotations

import torch

from .data.sampling import item_rng, try_view


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

    def epoch_of(self, micro_step: int) -> int:
        return micro_step // self.per_epoch

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
        return {"id": clip.id, "label": clip.label, "wave": view.wave, "pixels": view.pixels}


def collate(items: list[dict | None]) -> dict | None:
    """Stack tensors, keep ids/labels as lists; unreadable items (None) are dropped and counted."""
    good = [it for it in items if it is not None]
    out: dict = {"skipped": len(items) - len(good)}
    if not good:
        return out
    for key in good[0]:
        values = [it[key] for it in good]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out
