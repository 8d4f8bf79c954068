"""The neck's bones below the mandible leave the skull the models see; a case's face ends under the chin."""

from pathlib import Path

import numpy as np
import pytest
import trimesh

from facegen.data.representations.depth_map import DepthView, render_depth_map
from facegen.data.representations.mandibular_plane import (
    MARGIN_MM,
    SUBMENTAL_MM,
    above_plane,
    mandibular_plane,
    without_neck_bones,
)
from facegen.data.scans.ingest import IngestOptions, head_representations, ingest_input
from tests.conftest import SHARED, SMALL_SPEC

VIEW = DepthView(shape=(128, 128), pixel_mm=2.0)
HEADSQ = SHARED / "data" / "headsq-ct"


def _spine(landmarks: dict[str, np.ndarray]) -> trimesh.Trimesh:
    """A cervical column: a 12 mm cylinder 60 mm behind the chin, from 90 mm below menton up to the mandibular plane
    (above it a real column hides behind the jaw, or shows through gaps between teeth where no plane could say)."""
    point, normal = mandibular_plane(landmarks)
    z = float(landmarks["menton"][2]) - 60.0
    top = float(point[1] - (normal[0] * (0.0 - point[0]) + normal[2] * (z - point[2])) / normal[1])
    bottom = float(landmarks["menton"][1]) - 90.0
    column = trimesh.creation.cylinder(radius=12.0, height=top - bottom, sections=24)
    column.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))  # axis along y
    column.apply_translation([0.0, (top + bottom) / 2, z])
    return column.subdivide_to_size(max_edge=3.0)  # vertebrae-sized pieces, as a CT's surface


def test_a_spine_under_the_jaw_leaves_the_depth_map_and_the_skull_stays_as_it_was(one_head):
    skull, landmarks = one_head.skull, one_head.skull_landmarks
    with_spine = trimesh.util.concatenate([skull, _spine(landmarks)])
    bare, seen = render_depth_map(skull, VIEW), render_depth_map(with_spine, VIEW)
    assert (seen.mask & ~bare.mask).sum() > 50  # the column shows below the chin, 60 mm behind it
    trimmed, share = without_neck_bones(with_spine, landmarks)
    assert share > 0
    after = render_depth_map(trimmed, VIEW)
    np.testing.assert_array_equal(after.mask, bare.mask)
    np.testing.assert_allclose(after.depth_mm[bare.mask], bare.depth_mm[bare.mask], atol=1e-4)
    unchanged, share = without_neck_bones(skull, landmarks)  # the occiput's underside lies below the plane: kept
    assert share == 0.0 and unchanged is skull


def test_without_the_planes_landmarks_the_skull_is_kept_whole(one_head):
    landmarks = {k: v for k, v in one_head.skull_landmarks.items() if k != "menton"}
    kept, share = without_neck_bones(one_head.skull, landmarks)
    assert kept is one_head.skull and share == 0.0
    assert above_plane(np.zeros(VIEW.shape), VIEW, landmarks).all()


def test_a_case_face_keeps_the_chin_and_leaves_the_neck(one_head):
    face = render_depth_map(one_head.face, VIEW)
    kept = above_plane(face.depth_mm, VIEW, one_head.skull_landmarks) & face.mask
    _, y = VIEW.pixel_centres()
    menton = one_head.skull_landmarks["menton"]
    over_bone = face.mask & render_depth_map(one_head.skull, VIEW).mask  # the chin and jaw included
    assert over_bone.sum() > 3000 and kept[over_bone].all()
    neck = (y < menton[1] - SUBMENTAL_MM - 30.0)[:, None] & face.mask
    assert neck.sum() > 100 and not kept[neck].any()  # the neck far below the chin is not the face


@pytest.mark.skipif(not HEADSQ.exists(), reason="../shared/data/headsq-ct is not beside the repository")
def test_the_real_cts_vertebrae_are_not_in_its_skull_depth_map(tmp_path: Path) -> None:
    head = ingest_input(HEADSQ / "quarter.nhdr", IngestOptions(spec=SMALL_SPEC, full_face=False))
    menton = head.alignment.canonical_landmarks()["menton"]
    point, normal = mandibular_plane(head.alignment.canonical_landmarks())
    spine = ((np.asarray(head.skull.vertices) - point) @ normal < -MARGIN_MM - 10.0).sum()
    assert spine > 500  # the scan holds the upper cervical column below the mandible
    depth = head_representations(head, SMALL_SPEC).skull_depth
    x, y = SMALL_SPEC.view.pixel_centres()
    under_chin = (y < menton[1] - 10.0)[:, None] & (np.abs(x) < 20.0)[None, :]
    seen = render_depth_map(head.skull, SMALL_SPEC.view)
    assert seen.mask[under_chin].sum() > 20  # before: bone under the chin, far behind it
    assert depth.mask[under_chin].sum() == 0


def test_a_wide_synthetic_skulls_column_below_the_chin_is_not_read_and_the_rest_of_its_interior_is():
    """The wide variation builds the cervical column down to 30 mm below menton (a real head CT's); a dataset reads
    its skulls as a case reads an ingested one: no bone under the chin, the column behind the nose kept."""
    from facegen.data.representations.build import represent
    from facegen.data.synthetic.generator import HeadGenerator
    from facegen.data.synthetic.population import sample_subject

    rng = np.random.default_rng(11)
    head = HeadGenerator(skull_variation="wide").generate(sample_subject(rng, "W0"), rng)
    spec = SMALL_SPEC
    whole = represent(head.skull, head.face, spec=spec, grids=False).skull_depth
    read = represent(head.skull, head.face, spec=spec, grids=False, skull_landmarks=head.skull_landmarks).skull_depth
    x, y = spec.view.pixel_centres()
    menton = head.skull_landmarks["menton"]
    under_chin = (y < menton[1] - 10.0)[:, None] & (np.abs(x) < 20.0)[None, :]
    assert whole.mask[under_chin].sum() > 10 and not read.mask[under_chin].any()
    above = (y > menton[1] + 10.0)[:, None] & np.ones(spec.view.shape, bool)
    np.testing.assert_array_equal(read.mask[above], whole.mask[above])  # orbit walls, the column behind the nose
