"""The 2.5D conditional GAN, trained briefly on a small synthetic set, as a user would ask it for faces."""

import numpy as np
import pytest

from facegen.data.dataset.reader import Dataset
from facegen.data.dataset.writer import write_synthetic_dataset
from facegen.data.subject import Subject
from facegen.models.base import DepthData
from facegen.models.gan.cgan import ConditionalGAN
from facegen.training.config import load_config
from facegen.training.loop import seeded_model, train_in_memory
from tests.conftest import TINY_SPEC

SETTINGS = ["steps=120", "batch_size=8", "lr=1e-3", "model.channels=[16,32,64]", "model.discriminator_channels=16",
            "model.discriminator_layers=2"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, generator):
    root = tmp_path_factory.mktemp("gan") / "ds"
    write_synthetic_dataset(root, n=48, seed=21, spec=TINY_SPEC, workers=1)
    train, test = DepthData.load(root, "train"), DepthData.load(root, "test")
    model = seeded_model(load_config(None, SETTINGS))
    figures = train_in_memory(model, train, load_config(None, SETTINGS))
    return model, figures, train, test, Dataset.open(root).spec.view


def _near(view, landmarks: dict, names: list[str], radius_mm: float = 12.0) -> np.ndarray:
    """Pixels within radius of the mean position of the named skull landmarks."""
    rows, cols = np.ogrid[: view.shape[0], : view.shape[1]]
    mask = np.zeros(view.shape, bool)
    for name in names:
        r, c = view.to_pixel(landmarks[name].mean(axis=0))
        mask |= (rows - r) ** 2 + (cols - c) ** 2 <= (radius_mm / view.pixel_mm) ** 2
    return mask


def test_higher_bmi_gives_thicker_cheeks_not_a_thicker_forehead(trained):
    model, _, train, test, view = trained
    cheeks = _near(view, train.skull_landmarks, ["inferior_malar_l", "inferior_malar_r"])
    forehead = _near(view, train.skull_landmarks, ["supraglabella", "glabella"])
    for i, s in enumerate(test.subjects):
        faces = [
            model.reconstruct(test.skull_depth[i], test.skull_mask[i], Subject(s.subject_id, s.sex, s.age_years, bmi))
            for bmi in (18.0, 40.0)
        ]
        change = faces[1].mean_mm - faces[0].mean_mm
        # The generator's truth: +0.45 mm per BMI unit at the cheeks (about 10 mm here), +0.07 at the brow.
        assert change[cheeks].mean() > 2.0, f"{s.subject_id}: cheeks only {change[cheeks].mean():.2f} mm thicker"
        assert change[cheeks].mean() > 2 * change[forehead].mean()


def test_faces_are_depths_in_mm_on_the_claimed_pixels(trained):
    model, figures, _, test, _ = trained
    assert figures["l1_mm"] < 10.0
    recs = model.reconstruct_many(test)
    assert len(recs) == len(test)
    for rec, truth, region in zip(recs, test.face_depth, test.face_region, strict=True):
        assert rec.face_depth_mm.shape == (1, *truth.shape) and rec.face_depth_mm.dtype == np.float32
        seen = region & rec.mask
        assert seen.mean() > 0.2
        assert np.abs(rec.mean_mm - truth)[seen].mean() < 10.0
    one = model.reconstruct(test.skull_depth[0], test.skull_mask[0], test.subjects[0], n_samples=5)
    assert one.face_depth_mm.shape[0] == 1  # deterministic: a pix2pix GAN gives one face
    np.testing.assert_allclose(one.face_depth_mm, recs[0].face_depth_mm, atol=1e-3)  # batched = one by one


def test_unknown_metadata_is_the_population_centre_not_an_error(trained):
    model, _, _, test, _ = trained
    rec = model.reconstruct(test.skull_depth[0], test.skull_mask[0], Subject("unknown", None, None, None))
    assert np.isfinite(rec.mean_mm).all()


def test_saved_model_gives_the_same_faces(trained, tmp_path):
    model, _, _, test, _ = trained
    model.save(tmp_path / "model")
    again = ConditionalGAN.load(tmp_path / "model")
    a = model.reconstruct(test.skull_depth[1], test.skull_mask[1], test.subjects[1])
    b = again.reconstruct(test.skull_depth[1], test.skull_mask[1], test.subjects[1])
    np.testing.assert_array_equal(a.face_depth_mm, b.face_depth_mm)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_wrong_image_size_is_refused_by_name(trained):
    model, _, _, test, _ = trained
    with pytest.raises(ValueError, match=r"skull depth maps are \(32, 32\), the model was trained on \(64, 64\)"):
        model.reconstruct(test.skull_depth[0][:32, :32], test.skull_mask[0][:32, :32], test.subjects[0])


def test_an_untrained_model_says_so():
    with pytest.raises(RuntimeError, match="not trained"):
        ConditionalGAN(channels=(8, 16)).reconstruct(np.zeros((64, 64), np.float32), np.ones((64, 64), bool),
                                                     Subject("x", None, None, None))  # fmt: skip
