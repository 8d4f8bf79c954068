"""The learned face embedding (eigenfaces) on faces drawn from a known population of shapes."""

import numpy as np
import pytest
from scipy.stats import binomtest

from facegen.evaluation.embedding import FaceEmbedding, embedding_distances
from facegen.evaluation.identification import face_distances, ranks

SIZE = 24


def population(n: int, rng: np.random.Generator, noise_mm: float = 0.3) -> np.ndarray:
    """(n, SIZE, SIZE) depth maps: a dome, 12 smooth shape modes with falling spread, a depth offset, noise."""
    y, x = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j]
    modes = np.stack([np.cos((i % 4 + 1) * x + i) * np.sin((i // 4 + 1) * y + 0.5 * i) for i in range(12)])
    spread = 8.0 / (1.0 + np.arange(12))
    coefficients = rng.normal(size=(n, 12)) * spread
    offsets = rng.normal(0.0, 5.0, size=(n, 1, 1))
    dome = 80.0 - 20.0 * (x**2 + y**2)
    return dome + np.einsum("nk,kij->nij", coefficients, modes) + offsets + rng.normal(0, noise_mm, (n, SIZE, SIZE))


@pytest.fixture(scope="module")
def embedding() -> FaceEmbedding:
    faces = population(300, np.random.default_rng(0))
    return FaceEmbedding.fit(faces, np.ones_like(faces, bool), components=20)


def full(faces: np.ndarray) -> np.ndarray:
    return np.ones_like(faces, bool)


def test_a_face_is_nearest_itself_and_random_faces_score_about_chance(embedding):
    rng = np.random.default_rng(1)
    gallery = population(100, rng)
    mates = embedding_distances(embedding.embed(gallery, full(gallery)), embedding.embed(gallery, full(gallery)))
    assert (ranks(mates) == 1).all()
    strangers = population(100, rng)  # nobody's mate is in the gallery: each row's "mate" is a random face
    hits = int((ranks(embedding_distances(embedding.embed(strangers, full(strangers)),
                                          embedding.embed(gallery, full(gallery)))) == 1).sum())  # fmt: skip
    assert binomtest(hits, 100, 0.01).pvalue > 0.01


def test_a_new_noisy_view_of_a_face_finds_its_mate():
    """Gallery and probes are the same faces with independent 5 mm noise: the embedding, which learned the
    directions faces vary in, sees through the noise better than the raw depth difference (0.97 vs 0.85)."""
    rng = np.random.default_rng(2)
    train = population(300, rng, noise_mm=5.0)
    e = FaceEmbedding.fit(train, full(train), components=12)
    clean = population(80, rng, noise_mm=0.0)
    gallery = clean + rng.normal(0, 5.0, clean.shape)
    probes = clean + rng.normal(0, 5.0, clean.shape)
    rank_1 = (ranks(embedding_distances(e.embed(probes, full(probes)), e.embed(gallery, full(gallery)))) == 1).mean()
    raw = (ranks(face_distances(probes, full(probes), gallery, full(gallery))) == 1).mean()
    assert rank_1 > 0.9 and rank_1 > raw + 0.05


def test_depth_offset_is_not_identity(embedding):
    faces = population(5, np.random.default_rng(3))
    np.testing.assert_allclose(embedding.embed(faces + 7.0, full(faces)), embedding.embed(faces, full(faces)),
                               atol=1e-9)  # fmt: skip


def test_a_partial_face_embeds_like_the_whole_one(embedding):
    """A face read on 70% of the region lands next to itself read whole (gappy PCA), and beside nobody else."""
    faces = population(40, np.random.default_rng(4), noise_mm=0.0)
    partial = full(faces).copy()
    partial[:, :, : int(0.3 * SIZE)] = False
    whole, part = embedding.embed(faces, full(faces)), embedding.embed(faces, partial)
    assert (np.sum(whole * part, axis=1) > 0.95).all()
    assert (ranks(embedding_distances(part, whole)) == 1).all()


def test_a_face_with_too_little_region_is_never_matched(embedding):
    faces = population(3, np.random.default_rng(5))
    masks = full(faces)
    masks[1, :, : SIZE // 2 + 1] = False  # under half the region
    vectors = embedding.embed(faces, masks)
    assert np.isnan(vectors[1]).all() and np.isfinite(vectors[[0, 2]]).all()
    distances = embedding_distances(vectors, embedding.embed(faces, full(faces)))
    assert np.isinf(distances[1]).all() and ranks(distances)[1] == 3


def test_bad_training_sets_are_refused():
    faces = population(10, np.random.default_rng(6))
    with pytest.raises(ValueError, match="at least 3"):
        FaceEmbedding.fit(faces[:2], full(faces[:2]))
    with pytest.raises(ValueError, match="whiten"):
        FaceEmbedding.fit(faces, full(faces), whiten=2.0)
    masks = full(faces)
    masks[0, :, : SIZE - 2] = False
    with pytest.raises(ValueError, match="share only"):
        FaceEmbedding.fit(faces, masks)
    assert len(FaceEmbedding.fit(faces, full(faces), components=80).basis) == 9  # at most N - 1 directions
