import json

import numpy as np
import pytest

from facegen.data.dataset.writer import write_synthetic_dataset
from facegen.models.base import DepthData
from facegen.models.baselines.pca import StatisticalShapeRegression
from facegen.models.registry import create
from tests.conftest import SMALL_SPEC


@pytest.fixture(scope="module")
def splits(tmp_path_factory, generator):
    root = tmp_path_factory.mktemp("pca") / "ds"
    write_synthetic_dataset(root, n=40, seed=11, spec=SMALL_SPEC, workers=1)
    return DepthData.load(root, "train"), DepthData.load(root, None)


def _held_out_mae(model, train, everyone) -> tuple[float, float]:
    """MAE over the face region of subjects not in training, for the model and for the mean training face."""
    seen = {s.subject_id for s in train.subjects}
    mean_face = np.where(train.face_mask, train.face_depth, 0).sum(0) / np.maximum(train.face_mask.sum(0), 1)
    errors, naive = [], []
    for i, subject in enumerate(everyone.subjects):
        if subject.subject_id in seen:
            continue
        rec = model.reconstruct(everyone.skull_depth[i], everyone.skull_mask[i], subject)
        region = everyone.face_region[i] & rec.mask
        errors.append(np.abs(rec.mean_mm - everyone.face_depth[i])[region].mean())
        naive.append(np.abs(mean_face - everyone.face_depth[i])[region].mean())
    return float(np.mean(errors)), float(np.mean(naive))


def test_statistical_model_beats_the_mean_face_on_held_out_subjects(splits):
    train, everyone = splits
    model = create("pca", skull_components=10, face_components=10)
    figures = model.fit(train)
    assert 0.5 < figures["face_explained"] <= 1.0
    mae, naive = _held_out_mae(model, train, everyone)
    assert mae < 0.8 * naive, f"PCA regression {mae:.2f} mm vs mean face {naive:.2f} mm"


def test_reconstruction_is_deterministic_and_samples_spread(splits, tmp_path):
    train, everyone = splits
    model = StatisticalShapeRegression(skull_components=10, face_components=10)
    model.fit(train)
    args = (everyone.skull_depth[0], everyone.skull_mask[0], everyone.subjects[0])
    one = model.reconstruct(*args)
    assert one.face_depth_mm.shape == (1, *SMALL_SPEC.view.shape)
    assert one.has_spread and np.isfinite(one.sd_mm).all() and one.sd_mm[one.mask].min() > 0
    a, b = model.reconstruct(*args, seed=3, n_samples=8), model.reconstruct(*args, seed=3, n_samples=8)
    assert np.array_equal(a.face_depth_mm, b.face_depth_mm)
    assert a.sd_mm[a.mask].mean() > 0.1
    model.save(tmp_path / "m")
    again = StatisticalShapeRegression.load(tmp_path / "m").reconstruct(*args)
    assert np.array_equal(again.face_depth_mm, one.face_depth_mm)


def test_the_stated_spread_holds_the_held_out_truth(splits):
    """The closed-form predictive SD: its 95% band holds most held-out faces and it matches the samples' spread."""
    from facegen.evaluation.calibration import calibration_of_spread

    train, everyone = splits
    model = StatisticalShapeRegression(skull_components=10, face_components=10)
    model.fit(train)
    seen = {s.subject_id for s in train.subjects}
    held = [i for i, s in enumerate(everyone.subjects) if s.subject_id not in seen]
    recs = [model.reconstruct(everyone.skull_depth[i], everyone.skull_mask[i], everyone.subjects[i]) for i in held]
    region = np.stack([r.mask for r in recs]) & everyone.face_region[held]
    c = calibration_of_spread(np.stack([r.mean_mm for r in recs]), np.stack([r.sd_mm for r in recs]),
                              everyone.face_depth[held], region)  # fmt: skip
    assert 0.75 <= c["coverage"] <= 0.995, c
    assert c["spearman_sd_error"] > 0.05, c
    samples = model.reconstruct(everyone.skull_depth[0], everyone.skull_mask[0], everyone.subjects[0], n_samples=400)
    drawn = samples.face_depth_mm.std(axis=0)[samples.mask]  # the modes' part of the stated SD, without the detail
    # 400 draws: their SD is within ~5% (1 SE); 1e-3 mm: float32 rounding where the stated SD is 0
    assert np.all(drawn <= 1.2 * samples.sd_mm[samples.mask] + 1e-3)
    assert np.median(drawn / samples.sd_mm[samples.mask]) > 0.3


def test_unfitted_model_and_wrong_shape_are_refused(splits):
    train, _ = splits
    model = StatisticalShapeRegression()
    with pytest.raises(RuntimeError, match="not fitted"):
        model.reconstruct(train.skull_depth[0], train.skull_mask[0], train.subjects[0])
    model.fit(train)
    with pytest.raises(ValueError, match="fitted on"):
        model.reconstruct(train.skull_depth[0][:10], train.skull_mask[0][:10], train.subjects[0])


@pytest.fixture(scope="module")
def relative(splits):
    model = create("pca", skull_components=10, face_components=10)
    model.fit(splits[0])
    return model


@pytest.mark.parametrize("seed", range(6))
def test_a_face_relative_to_the_bone_never_passes_into_it_whatever_the_skull(relative, splits, seed):
    train, _ = splits
    rng = np.random.default_rng(seed)
    i = int(rng.integers(len(train.subjects)))
    spikes = rng.normal(0.0, rng.uniform(1.0, 60.0), train.skull_depth[i].shape)  # noise to absurd relief
    skull = train.skull_depth[i] + spikes * (rng.random(spikes.shape) < rng.uniform(0.05, 1.0))
    mask = train.skull_mask[i] & (rng.random(skull.shape) < rng.uniform(0.3, 1.0))  # holes, cuts
    rec = relative.reconstruct(skull, mask, train.subjects[i], seed=seed, n_samples=3)
    over_bone = mask & rec.mask
    assert relative.relative_to_bone and over_bone.sum() > 100
    assert np.all(rec.face_depth_mm[:, over_bone] > skull[over_bone]), "skin inside bone"


def test_bone_relative_models_reload_as_such_and_older_files_as_absolute(relative, splits, tmp_path):
    relative.save(tmp_path / "rel")
    again = StatisticalShapeRegression.load(tmp_path / "rel")
    train = splits[0]
    a = relative.reconstruct(train.skull_depth[0], train.skull_mask[0], train.subjects[0])
    b = again.reconstruct(train.skull_depth[0], train.skull_mask[0], train.subjects[0])
    assert again.relative_to_bone and np.array_equal(a.face_depth_mm, b.face_depth_mm)
    record = json.loads((tmp_path / "rel" / "model.json").read_text())
    record.pop("relative_to_bone")  # as a model fitted before faces were relative to the bone
    (tmp_path / "rel" / "model.json").write_text(json.dumps(record))
    assert not StatisticalShapeRegression.load(tmp_path / "rel").relative_to_bone


def test_a_skull_beyond_the_training_spread_is_read_at_its_edge_and_one_within_as_it_is(relative, splits):
    """A real skull read by a model of synthetic ones lies far outside their spread: its scores are shortened to the
    training skulls' 99th-percentile length (the regression does not extrapolate); held-out ones are left alone."""
    train, everyone = splits
    s = relative.state
    x = relative._skull_vectors(train.skull_depth, train.skull_mask, s["skull_fill"])
    lengths = np.linalg.norm((x - s["skull_mean"]) @ s["skull_modes"].T / s["skull_sd"], axis=1)
    # fitted before the model could complete a cut skull from its own modes (read now, completed: 2% apart)
    assert float(s["skull_score_radius"]) == pytest.approx(np.percentile(lengths, 99), rel=0.05)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, len(s["skull_sd"]))) * [[0.5], [5.0], [50.0]]
    held = relative._held_in_spread(scores)
    radius = float(s["skull_score_radius"])
    assert np.allclose(held[0], scores[0])  # within the spread: as it is
    assert np.allclose(np.linalg.norm(held[1:], axis=1), radius)  # beyond: on its edge, in the same direction
    assert np.allclose(held[1:] / radius, scores[1:] / np.linalg.norm(scores[1:], axis=1, keepdims=True))
    shape = np.array(train.skull_depth[0].shape)[:, None, None]
    bulge = 150.0 * np.exp(-(((np.indices(shape.ravel()) - shape / 2) / (shape / 8)) ** 2).sum(0))  # an absurd skull
    without = StatisticalShapeRegression(10, 10)
    without.view, without.state = relative.view, {k: v for k, v in s.items() if k != "skull_score_radius"}
    faces = [m.reconstruct(train.skull_depth[0] + bulge, train.skull_mask[0], train.subjects[0]).face_depth_mm
             for m in (relative, without)]  # fmt: skip
    assert not np.allclose(faces[0], faces[1]), "the absurd skull was within the spread: the test shows nothing"
    seen = {t.subject_id for t in train.subjects}
    for i, subject in enumerate(everyone.subjects):
        if subject.subject_id not in seen:
            a = relative.reconstruct(everyone.skull_depth[i], everyone.skull_mask[i], subject).face_depth_mm
            b = without.reconstruct(everyone.skull_depth[i], everyone.skull_mask[i], subject).face_depth_mm
            held_out_length = np.linalg.norm(relative._held_in_spread(
                (relative._skull_vectors(everyone.skull_depth[i][None], everyone.skull_mask[i][None], s["skull_fill"])
                 - s["skull_mean"]) @ s["skull_modes"].T / s["skull_sd"]))  # fmt: skip
            assert np.array_equal(a, b) or held_out_length == pytest.approx(radius)


def test_a_skull_cut_above_the_brow_gets_a_forehead_without_a_step(relative, splits):
    """A scan cut 12 mm above glabella (as the headsq CT): the face over what was cut stays near the uncut skull's
    face, and no crease runs along the cut (the old completion, which carried the envelope's fall at the cut into
    the forehead, left a 3.5 mm crease here, and its faces 6.9 mm off above such cuts on 20 held-out heads at
    128^2: 1.6 mm now)."""
    train, everyone = splits
    seen = {t.subject_id for t in train.subjects}
    for i, subject in enumerate(everyone.subjects):
        if subject.subject_id in seen:
            continue
        glabella_row = relative.view.to_pixel(everyone.skull_landmarks["glabella"][i])[0]
        cut = int(round(glabella_row - 12.0 / relative.view.pixel_mm))  # 12 mm above glabella, as the headsq CT
        mask = everyone.skull_mask[i].copy()
        mask[:cut] = False
        whole = relative.reconstruct(everyone.skull_depth[i], everyone.skull_mask[i], subject).mean_mm
        part = relative.reconstruct(everyone.skull_depth[i], mask, subject).mean_mm
        band = slice(cut - 5, cut + 8)
        x = relative.view.pixel_centres()[0]
        columns = everyone.skull_mask[i][cut : cut + 8].all(axis=0) & (np.abs(x) < 30.0)  # the central forehead
        assert columns.sum() > 10
        assert np.abs(part - whole)[band][:, columns].mean() < 3.0
        crease = np.abs(np.diff(part[band][:, columns], 2, axis=0)).max()
        assert crease < 2.0, f"a crease of {crease:.1f} mm along the cut"
