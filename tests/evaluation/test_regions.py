"""Facial regions: a disjoint partition of the face region at any resolution, placed where real landmarks fall;
errors per region and the per-pixel heat map against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facegen.data.representations.build import face_region_mask
from facegen.data.representations.depth_map import DepthView
from facegen.evaluation.regions import FACIAL_REGIONS, error_heat_map, region_errors, region_masks
from tests.conftest import SMALL_SPEC

VIEWS = [DepthView(), DepthView((128, 128), 2.0), DepthView((64, 64), 4.0), DepthView((100, 90), 2.5, (4.0, -10.0))]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: f"{v.shape[0]}x{v.shape[1]}@{v.pixel_mm}")
def test_masks_partition_the_face_region(view: DepthView) -> None:
    masks = region_masks(view)
    assert list(masks) == list(FACIAL_REGIONS)
    assert all(m.shape == view.shape and m.dtype == bool and m.any() for m in masks.values())
    count = np.sum([m.astype(int) for m in masks.values()], axis=0)
    face = face_region_mask(view)
    assert count.max() == 1, "regions overlap"
    assert not (count.astype(bool) & ~face).any(), "a region leaves the face region ellipse"
    assert count.astype(bool).sum() / face.sum() > 0.7
    assert np.array_equal(count.astype(bool), face)  # by design the regions tile the whole ellipse


def test_region_areas_agree_between_resolutions() -> None:
    fine, coarse = region_masks(DepthView()), region_masks(DepthView((128, 128), 2.0))
    for name in FACIAL_REGIONS:
        area_fine, area_coarse = fine[name].sum() * 1.0, coarse[name].sum() * 4.0
        assert area_coarse == pytest.approx(area_fine, rel=0.05), name


def test_regions_are_mirror_symmetric() -> None:
    for mask in region_masks(DepthView()).values():  # centred on x = 0: columns mirror about the midline
        assert np.array_equal(mask, mask[:, ::-1])


EXPECTED_REGION = {
    "pronasale": "nose",
    "alare_l": "nose",
    "alare_r": "nose",
    "stomion": "mouth",
    "pogonion": "chin",
    "glabella": "forehead",
    "inferior_malar_l": "cheeks",
    "inferior_malar_r": "cheeks",
}
EYE_CORNERS = ("exocanthion_l", "exocanthion_r", "endocanthion_l", "endocanthion_r")


@pytest.fixture(scope="module")
def face_landmarks(tmp_path_factory, generator) -> list[dict[str, list[float]]]:
    """Canonical face landmarks of three synthetic heads, read back from the dataset's landmarks.json files."""
    from facegen.data.dataset.writer import write_synthetic_dataset

    root = tmp_path_factory.mktemp("regions") / "ds"
    write_synthetic_dataset(root, n=3, seed=11, spec=SMALL_SPEC, workers=1)
    files = sorted(Path(root, "subjects").glob("*/landmarks.json"))
    assert len(files) == 3
    return [json.loads(f.read_text())["face"] for f in files]


def _pixels_near(view: DepthView, point: list[float], radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels whose centres lie within radius_mm of a point's (x, y)."""
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    return np.nonzero(np.hypot(xx - point[0], yy - point[1]) <= radius_mm)


def test_landmarks_of_real_faces_fall_in_their_regions(face_landmarks) -> None:
    view = SMALL_SPEC.view
    masks = region_masks(view)
    for face in face_landmarks:
        for name, region in EXPECTED_REGION.items():
            row, col = np.round(view.to_pixel(np.asarray(face[name]))).astype(int)
            assert masks[region][row, col], f"{name} at {face[name]} is not in {region}"
        for name in EYE_CORNERS:  # the corners and a 4 mm neighbourhood around each
            rows, cols = _pixels_near(view, face[name], 4.0)
            assert rows.size >= 9 and masks["eyes"][rows, cols].all(), f"{name} at {face[name]} leaves the eyes"


def test_region_errors_on_a_hand_built_error_field() -> None:
    view = DepthView((64, 64), 4.0)
    nose = region_masks(view)["nose"]
    truth = np.full((2, 64, 64), 80.0)
    pred = truth.copy()
    pred[0][nose] += 3.0
    pred[1][nose] -= 3.0
    face = face_region_mask(view)
    errors = region_errors(pred, truth, face, view)
    assert list(errors) == list(FACIAL_REGIONS)
    assert errors["nose"]["mae_mm"] == pytest.approx([3.0, 3.0])
    assert errors["nose"]["signed_mm"] == pytest.approx([3.0, -3.0])
    for name in set(FACIAL_REGIONS) - {"nose"}:
        assert errors[name]["mae_mm"] == pytest.approx([0.0, 0.0])
        assert errors[name]["signed_mm"] == pytest.approx([0.0, 0.0])


def test_region_errors_nan_where_a_subject_has_no_pixel_in_a_region() -> None:
    view = DepthView((64, 64), 4.0)
    masks = region_masks(view)
    truth = np.zeros((2, 64, 64))
    pred = np.where(masks["forehead"], 2.0, np.nan)[None].repeat(2, axis=0)  # NaN outside the mask is ignored
    mask = np.stack([masks["forehead"], masks["forehead"] | masks["chin"]])
    pred[1][masks["chin"]] = -1.0
    errors = region_errors(pred, truth, mask, view)
    assert errors["forehead"]["mae_mm"] == pytest.approx([2.0, 2.0])
    assert np.isnan(errors["chin"]["mae_mm"][0]) and errors["chin"]["signed_mm"][1] == pytest.approx(-1.0)
    assert np.isnan(errors["eyes"]["mae_mm"]).all()


def test_region_errors_refuses_images_of_another_view() -> None:
    with pytest.raises(ValueError, match="view's shape"):
        region_errors(np.zeros((1, 32, 32)), np.zeros((1, 32, 32)), np.ones((32, 32), bool), DepthView((64, 64), 4.0))


def test_error_heat_map_hand_computed() -> None:
    truth = np.zeros((3, 2, 3))
    pred = np.array(
        [
            [[1.0, -2.0, 0.0], [4.0, 0.0, np.nan]],
            [[3.0, 2.0, 0.0], [0.0, 0.0, np.nan]],
            [[-5.0, 9.0, 0.0], [0.0, 1.0, np.nan]],
        ]
    )
    mask = np.array(
        [
            [[1, 1, 0], [1, 0, 0]],
            [[1, 1, 0], [0, 0, 0]],
            [[1, 0, 0], [0, 1, 0]],
        ],
        bool,
    )
    mean_abs, count = error_heat_map(pred, truth, mask)
    assert count.tolist() == [[3, 2, 0], [1, 1, 0]]
    expected = np.array([[3.0, 2.0, np.nan], [4.0, 1.0, np.nan]])
    np.testing.assert_allclose(mean_abs, expected, equal_nan=True)
