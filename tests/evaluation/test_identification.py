"""Identification metrics: hand-computed ranks and CMC, brute-force distances, chance levels, alignment, pools."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from facegen.evaluation.identification import (
    binomial_interval,
    cmc,
    expected_pool_accuracy,
    face_distances,
    identification_scores,
    pool_accuracy,
    ranks,
)

SIZE = 32


def synthetic_faces(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n smooth face-like depth maps (SIZE x SIZE, mm): one head shape plus 6 random Gaussian bumps each,
    with elliptical face masks shifted by up to 2 pixels per subject (so masks differ pairwise)."""
    yy, xx = np.mgrid[:SIZE, :SIZE] / (SIZE - 1)
    head = 40.0 + 60.0 * np.exp(-(((yy - 0.5) / 0.35) ** 2) - ((xx - 0.5) / 0.28) ** 2)
    centres = rng.uniform(0.2, 0.8, (n, 6, 2, 1, 1))
    widths = rng.uniform(0.08, 0.2, (n, 6, 1, 1))
    amps = rng.normal(0.0, 4.0, (n, 6, 1, 1))
    r2 = (yy - centres[:, :, 0]) ** 2 + (xx - centres[:, :, 1]) ** 2
    faces = head + (amps * np.exp(-r2 / (2 * widths**2))).sum(axis=1)
    shift = rng.integers(-2, 3, (n, 2, 1, 1))
    masks = ((yy * (SIZE - 1) - 15.5 - shift[:, 0]) / 13) ** 2 + ((xx * (SIZE - 1) - 15.5 - shift[:, 1]) / 11) ** 2 < 1
    return faces, masks


def brute_force(x, mx, y, my, *, align: bool, common: np.ndarray | None = None) -> np.ndarray:
    """Float64 pair-by-pair RMS (align: SD) of the depth difference over the shared (or common) pixels."""
    out = np.empty((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            shared = (mx[i] & my[j]) if common is None else common
            diff = x[i][shared] - y[j][shared]
            out[i, j] = np.sqrt(np.mean((diff - (diff.mean() if align else 0.0)) ** 2))
    return out


HAND = np.array(
    [
        [1.0, 2.0, 3.0, 4.0],  # mate nearest: rank 1
        [1.0, 3.0, 3.0, 0.5],  # mate 3 ties column 2, two nearer: rank 4
        [2.0, 5.0, 2.0, 9.0],  # mate 2 ties column 0: rank 2 (tie goes against the mate)
        [4.0, 1.0, 2.0, 3.0],  # two nearer: rank 3
    ]
)


def test_ranks_and_cmc_hand_built_with_ties() -> None:
    r = ranks(HAND)
    assert r.tolist() == [1, 4, 2, 3]
    assert cmc(r, 4).tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    scores = identification_scores(HAND, pools=(2, 4), trials=200)
    assert scores["rank_1"] == 0.25 and scores["rank_1_chance"] == 0.25
    assert scores["rank_5"] == 1.0 and scores["rank_5_chance"] == 1.0  # k capped at G = 4
    assert scores["mean_normalised_rank"] == pytest.approx((0 + 3 + 1 + 2) / 3 / 4)
    # A pool of 4 is the whole gallery: hit, miss, tie of two (1/2), miss.
    assert scores["pool_4"] == pytest.approx(1.5 / 4)
    assert scores["pool_4_chance"] == 0.25


def test_all_equal_distances_rank_last_and_pools_split_ties() -> None:
    d = np.ones((5, 8))
    assert ranks(d).tolist() == [8] * 5
    assert pool_accuracy(d, 4, trials=50, seed=1) == pytest.approx(0.25)
    assert expected_pool_accuracy(d, 4) == pytest.approx(0.25)


def test_pool_accuracy_hand_computed_and_sampling_converges() -> None:
    # Pools of 2 (mate + one foil) from HAND, per probe: 1, (0 + 1/2 + 0)/3, (1/2 + 1 + 1)/3, (1 + 0 + 0)/3.
    exact = (1 + 1 / 6 + 5 / 6 + 1 / 3) / 4
    assert expected_pool_accuracy(HAND, 2) == pytest.approx(exact)
    assert pool_accuracy(HAND, 2, trials=20_000, seed=3) == pytest.approx(exact, abs=0.01)


def test_face_distances_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, mx = synthetic_faces(rng, 5)
    y, my = synthetic_faces(rng, 7)
    for align in (True, False):
        want = brute_force(x, mx, y, my, align=align)
        assert face_distances(x, mx, y, my, align=align) == pytest.approx(want, abs=1e-3)  # float32 floor
        assert face_distances(x, mx, y, my, align=align, dtype=np.float64) == pytest.approx(want, abs=1e-9)
        common = mx.all(axis=0) & my.all(axis=0)
        got = face_distances(x, mx, y, my, align=align, region="common")
        assert got == pytest.approx(brute_force(x, mx, y, my, align=align, common=common), abs=1e-3)
        one_mask = face_distances(x, mx[0], y, mx[0], align=align)  # a 2-D mask for every face
        assert one_mask == pytest.approx(brute_force(x, mx[[0] * 5], y, mx[[0] * 7], align=align), abs=1e-3)


def test_pairs_sharing_too_few_pixels_are_infinitely_far() -> None:
    face = np.full((1, 8, 8), 50.0)
    left, right = np.zeros((1, 8, 8), bool), np.zeros((1, 8, 8), bool)
    left[:, :, :5], right[:, :, 3:] = True, True  # share 2 of the probe's 5 columns
    assert face_distances(face, left, face, right, min_shared=0.5)[0, 0] == np.inf
    assert face_distances(face, left, face, right, min_shared=0.4)[0, 0] == pytest.approx(0.0, abs=1e-3)


def test_truth_as_its_own_reconstruction_is_always_identified() -> None:
    faces, masks = synthetic_faces(np.random.default_rng(1), 40)
    d = face_distances(faces, masks, faces, masks)
    assert np.diag(d).max() < 0.02  # float32 noise floor; other faces lie mm away
    assert np.diag(face_distances(faces, masks, faces, masks, dtype=np.float64)).max() < 1e-5
    scores = identification_scores(d, trials=100)
    assert scores["rank_1"] == 1.0
    assert scores["mean_normalised_rank"] == 0.0
    assert scores["pool_5"] == 1.0 and scores["pool_10"] == 1.0
    assert scores["rank_1_chance"] == pytest.approx(1 / 40)
    assert scores["pool_5_chance"] == 0.2 and scores["mean_normalised_rank_chance"] == 0.5


def test_unrelated_probes_score_at_chance() -> None:
    rng = np.random.default_rng(2)
    gallery, gallery_masks = synthetic_faces(rng, 300)
    probes, probe_masks = synthetic_faces(rng, 300)
    d = face_distances(probes, probe_masks, gallery, gallery_masks)
    r = ranks(d)
    g = d.shape[1]
    # Given the gallery, each probe's rank-k hit is independent with mean exactly k / G averaged over probes.
    for k in (1, 75):
        low, high = binomial_interval(int((r <= k).sum()), len(r), level=0.99)
        assert low <= k / g <= high, k
    scores = identification_scores(d, trials=200, seed=4)
    assert scores["mean_normalised_rank"] == pytest.approx(0.5, abs=0.06)
    assert scores["pool_5"] == pytest.approx(0.2, abs=0.07)
    assert expected_pool_accuracy(d, 5) == pytest.approx(0.2, abs=0.07)
    assert scores["pool_10"] == pytest.approx(0.1, abs=0.05)


def test_alignment_removes_a_constant_depth_offset() -> None:
    rng = np.random.default_rng(3)
    faces, masks = synthetic_faces(rng, 20)
    probes = faces + 7.0
    # Distractors: each face shifted forward by 7 mm and slightly reshaped (about 1 mm), so without
    # alignment the offset probe lies nearer its distractor than its mate.
    yy, xx = np.mgrid[:SIZE, :SIZE]
    bump = np.sin(xx / 3.0 + rng.uniform(0, 6, (20, 1, 1))) * np.cos(yy / 4.0)
    gallery = np.concatenate([faces, faces + 7.0 + bump])
    gallery_masks = np.concatenate([masks, masks])
    aligned = face_distances(probes, masks, gallery, gallery_masks, align=True)
    plain = face_distances(probes, masks, gallery, gallery_masks, align=False)
    assert np.diag(aligned) == pytest.approx(np.zeros(20), abs=0.02)
    assert np.diag(plain) == pytest.approx(np.full(20, 7.0), abs=1e-3)
    exact = face_distances(probes, masks, gallery, gallery_masks, align=True, dtype=np.float64)
    assert np.diag(exact) == pytest.approx(np.zeros(20), abs=1e-5)
    assert ranks(aligned).tolist() == [1] * 20
    assert (np.diag(plain[:, 20:]) < np.diag(plain)).all()  # its own shifted look-alike beats the mate
    assert (ranks(plain) > 1).all()  # so do other people's shifted faces (about 3 mm apart, not 7)


def test_distractors_only_keep_or_worsen_ranks_and_set_chance() -> None:
    rng = np.random.default_rng(4)
    truth, masks = synthetic_faces(rng, 30)
    distractors, distractor_masks = synthetic_faces(rng, 60)
    noise = synthetic_faces(rng, 30)[0] - synthetic_faces(rng, 30)[0]  # smooth reconstruction error
    probes = truth + noise
    d = face_distances(probes, masks, np.concatenate([truth, distractors]), np.concatenate([masks, distractor_masks]))
    mates_only = face_distances(probes, masks, truth, masks)
    assert mates_only == pytest.approx(d[:, :30], abs=1e-3)
    before, after = ranks(mates_only), ranks(d)
    mate = np.diag(d)
    assert (after - before).tolist() == (d[:, 30:] <= mate[:, None]).sum(axis=1).tolist()
    assert (after >= before).all() and (after > before).any() and (before > 1).any()
    scores = identification_scores(d, trials=50)
    assert scores["gallery_size"] == 90 and len(scores["cmc"]) == 90
    assert scores["rank_1_chance"] == pytest.approx(1 / 90)
    assert scores["rank_10_chance"] == pytest.approx(10 / 90)


def test_pool_accuracy_is_reproducible_with_a_seed() -> None:
    d = np.random.default_rng(5).random((40, 60))
    first = pool_accuracy(d, 5, trials=100, seed=11)
    assert pool_accuracy(d, 5, trials=100, seed=11) == first
    assert pool_accuracy(d, 5, trials=100, seed=12) != first
    assert identification_scores(d, seed=7, trials=100) == identification_scores(d, seed=7, trials=100)


def test_bad_inputs_raise_naming_the_problem() -> None:
    faces, masks = synthetic_faces(np.random.default_rng(6), 4)
    with pytest.raises(ValueError, match="probe mask"):
        face_distances(faces, masks[:3], faces, masks)
    with pytest.raises(ValueError, match="differ in size"):
        face_distances(faces, masks, faces[:, :16], masks[:, :16])
    empty = masks.copy()
    empty[2] = False
    with pytest.raises(ValueError, match="empty gallery mask for face 2"):
        face_distances(faces, masks, faces, empty)
    nan_faces = faces.copy()
    nan_faces[1, 16, 16] = np.nan
    with pytest.raises(ValueError, match="non-finite probe depth"):
        face_distances(nan_faces, masks, faces, masks)
    disjoint = np.zeros_like(masks)
    disjoint[:2, :4], disjoint[2:, -4:] = True, True
    with pytest.raises(ValueError, match="dtype"):
        face_distances(faces, masks, faces, masks, dtype=np.float16)
    with pytest.raises(ValueError, match="common region is empty"):
        face_distances(faces, disjoint, faces, disjoint, region="common")
    d = np.random.default_rng(0).random((4, 6))
    with pytest.raises(ValueError, match="larger than the gallery"):
        pool_accuracy(d, 7, trials=10, seed=0)
    with pytest.raises(ValueError, match="larger than the gallery"):
        identification_scores(d, pools=(5, 10))
    with pytest.raises(ValueError, match="more probes"):
        ranks(d.T)
    with pytest.raises(ValueError, match="NaN"):
        ranks(np.where(np.eye(4, 6) > 0, np.nan, d))
    with pytest.raises(ValueError, match="ranks must be integers in 1..4"):
        cmc(np.array([1, 5]), 4)
    with pytest.raises(ValueError, match="successes"):
        binomial_interval(11, 10)


def test_binomial_interval_is_clopper_pearson() -> None:
    low, high = binomial_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025**0.1)  # 0.3085: the textbook 0-of-10 exact bound
    assert binomial_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    low, high = binomial_interval(7, 20, level=0.99)
    assert low == pytest.approx(beta.ppf(0.005, 7, 14))
    assert high == pytest.approx(beta.ppf(0.995, 8, 13))
