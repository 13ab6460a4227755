"""The feature cache: content-keyed, batched, shared between shards, robust to torn files."""

import numpy as np
import pytest

from train.evaluate import features as F


class CountingEncoder:
    def __init__(self):
        self.batches = []

    def __call__(self, loaded):
        self.batches.append(len(loaded))
        return np.stack([np.full(3, float(x)) for x in loaded])


def _items(values):
    return [F.Item(F.text_digest("v", v), lambda v=v: v) for v in values]


def test_extract_batches_caches_and_keeps_order(tmp_path):
    cache, enc = F.FeatureCache(tmp_path), CountingEncoder()
    out = F.extract(enc, "m1", _items([3, 1, 2, 1, 5]), cache, batch_size=2, show_progress=False)
    assert out[:, 0].tolist() == [3, 1, 2, 1, 5]
    assert enc.batches == [2, 2]  # four distinct items, duplicates embedded once
    again = F.extract(enc, "m1", _items([5, 3]), cache, batch_size=2, show_progress=False)
    assert again[:, 0].tolist() == [5, 3] and enc.batches == [2, 2]  # all from the cache
    F.extract(enc, "m2", _items([5]), cache, batch_size=2, show_progress=False)
    assert enc.batches == [2, 2, 1]  # another model key is another cache


def test_shards_partition_the_work_and_meet_in_the_cache(tmp_path):
    cache, encs = F.FeatureCache(tmp_path), [CountingEncoder() for _ in range(3)]
    items = _items(range(10))
    done = [F.compute_missing(encs[i], "m", items, cache, 4, shard_index=i, shard_count=3, show_progress=False)
            for i in range(3)]
    assert sum(done) == 10 and all(d > 0 for d in done)
    assert F.load_features("m", [it.key for it in items], cache)[:, 0].tolist() == list(range(10))
    assert sorted(x for s in (F.shard(list(range(7)), i, 3) for i in range(3)) for x in s) == list(range(7))


def test_missing_entry_and_torn_file(tmp_path):
    cache = F.FeatureCache(tmp_path)
    with pytest.raises(RuntimeError, match="missing from the cache"):
        F.load_features("m", ["abcd"], cache)
    cache.put("m", "abcd", np.ones(2))
    cache.path("m", "abcd").write_bytes(b"garbage")
    assert cache.get("m", "abcd") is None  # recomputed rather than crashing


def test_file_digest_is_content_based(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"other")
    assert F.file_digest(a) == F.file_digest(b) != F.file_digest(c)
