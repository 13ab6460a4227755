"""Metric functions on constructed embeddings whose answers are known."""

import numpy as np
import pytest

from train.evaluate import metrics as M
from train.evaluate.scoring import BootstrapSettings, References, RowFeatures, score_row


def _distinct(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_identical_embeddings_win_every_comparison():
    x = _distinct(40, 16)
    wins = M.win_fraction(x, x, np.arange(40))
    assert wins.shape == (40,)
    assert np.all(wins == 1.0)


def test_shuffled_pairs_are_near_chance():
    rng = np.random.default_rng(1)
    refs = _distinct(400, 32, seed=2)
    queries = refs[rng.permutation(400)]  # each query is some other clip's reference
    wins = M.win_fraction(queries, refs, np.arange(400))
    assert abs(wins.mean() - 0.5) < 0.05


def test_win_fraction_counts_strictly_lower_only():
    refs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # clip 2's reference equals clip 0's
    wins = M.win_fraction(np.array([[1.0, 0.0]]), refs, np.array([0]))
    assert wins[0] == pytest.approx(0.5)  # beats clip 1, ties clip 2 (a tie is not a win)


def test_win_fraction_is_scale_invariant_and_checks_shapes():
    x = _distinct(10, 8)
    assert np.allclose(M.win_fraction(3 * x, x, np.arange(10)), 1.0)
    with pytest.raises(ValueError, match="widths"):
        M.win_fraction(x, x[:, :4], np.arange(10))
    with pytest.raises(ValueError, match="at least two"):
        M.win_fraction(x[:1], x[:1], np.array([0]))


def test_perfect_classifier_has_aic_one_and_top5_is_clipped():
    classes = _distinct(6, 12, seed=3)
    targets = np.array([0, 1, 2, 3, 4, 5, 2, 2])
    images = classes[targets] + 0.01 * _distinct(8, 12, seed=4)
    correct = M.topk_correct(images, classes, targets, (1, 5))
    assert correct[1].all() and correct[5].all()
    three = M.topk_correct(images[:3], classes[:3], targets[:3], (5,))
    assert three[5].all()  # top-5 over three classes is always right


def test_topk_ranks_the_target():
    classes = np.eye(4)
    image = np.array([[0.9, 0.5, 0.1, 0.0]])  # ranking: 0, 1, 2, 3
    for target, top1, top2 in [(0, True, True), (1, False, True), (2, False, False)]:
        c = M.topk_correct(image, classes, np.array([target]), (1, 2))
        assert (c[1][0], c[2][0]) == (top1, top2)


def test_per_class_accuracy():
    acc, n = M.per_class_accuracy(np.array([1, 0, 1, 1]), np.array([0, 0, 1, 1]), 3)
    assert n.tolist() == [2, 2, 0]
    assert acc[0] == 0.5 and acc[1] == 1.0 and np.isnan(acc[2])


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")  # inside pytorch-fid
def test_fid_of_a_set_with_itself_is_zero_and_matches_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    a = _distinct(300, 24, seed=5)
    b = 1.5 * _distinct(250, 24, seed=6) + 0.3
    assert abs(M.fid(a, a)) < 1e-8
    ours = M.fid(a, b)
    theirs = calculate_frechet_distance(*M.gaussian_stats(a), *M.gaussian_stats(b))
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert ours > 1.0


def test_fid_grows_with_a_mean_shift():
    a = _distinct(200, 8, seed=7)
    assert M.fid(a, a + 0.5) == pytest.approx(8 * 0.25, rel=1e-9)  # same covariance: only ||dmu||^2


def test_bootstrap_mean_ci_brackets_the_mean_and_is_reproducible():
    values = np.random.default_rng(8).uniform(size=200)
    r1 = M.mean_with_ci(values, n_resamples=500, seed=3)
    r2 = M.mean_with_ci(values, n_resamples=500, seed=3)
    assert r1 == r2
    lo, hi = r1["ci"]
    assert lo < r1["value"] < hi and hi - lo < 0.2
    assert M.mean_with_ci(np.array([np.nan, np.nan]))["value"] is None


def test_fid_ci_is_paired_over_clips_and_contains_the_estimate():
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(60, 6))
    gen = np.repeat(ref, 2, axis=0) + 0.3 * rng.normal(size=(120, 6))  # two images per clip
    out = M.fid_with_ci(ref, gen, np.arange(60), np.repeat(np.arange(60), 2), n_resamples=50, seed=0)
    assert out["n"] == 60
    lo, hi = out["ci"]
    assert lo <= out["value"] <= hi


def test_score_row_on_constructed_features():
    n, d = 12, 8
    audio = _distinct(n, d, seed=10)
    frames = _distinct(n, d, seed=11)
    classes = _distinct(3, d, seed=12)
    targets = np.arange(n) % 3
    owner = np.repeat(np.arange(n), 2)
    refs = References(audio, frames, frames, classes, targets, ["a", "b", "c"])
    row = RowFeatures(owner=owner, clip_b32=audio[owner], clip_l14=classes[targets[owner]], inception=frames[owner])
    out = score_row(row, refs, {"ais", "iis", "aic", "fid"}, BootstrapSettings(resamples=50, fid_resamples=5))
    m = out["metrics"]
    assert m["ais"]["value"] == 1.0
    assert m["aic_top1"]["value"] == 1.0 and m["aic_top5"]["value"] == 1.0
    # every frame appears twice: same mean, covariance off only by the n-1 vs 2n-1 normalisation
    assert abs(m["fid"]["value"]) < 0.02
    assert [c["n"] for c in out["per_class"]] == [8, 8, 8]
    gt = RowFeatures(owner=np.arange(n), clip_b32=audio, clip_l14=frames, inception=frames, is_reference=True)
    gt_out = score_row(gt, refs, {"ais", "iis", "aic", "fid"}, BootstrapSettings(resamples=20))
    assert "iis" not in gt_out["metrics"] and "fid" not in gt_out["metrics"]
    assert gt_out["metrics"]["ais"]["value"] == 1.0


def test_win_fraction_chunking_does_not_change_the_answer():
    rng = np.random.default_rng(13)
    refs, queries = rng.normal(size=(30, 5)), rng.normal(size=(70, 5))
    owner = rng.integers(0, 30, size=70)
    assert np.array_equal(M.win_fraction(queries, refs, owner, chunk=7), M.win_fraction(queries, refs, owner))
