"""Landmark tissue depths: measured from the bone to the face, and only where the scan has bone."""

from __future__ import annotations

import numpy as np
import trimesh

from facegen.data.representations.depth_map import DepthView
from facegen.use.tissue_depths import tissue_depth_table

VIEW = DepthView(shape=(128, 128), pixel_mm=2.0, centre_mm=(0.0, 0.0))


def test_a_landmark_is_measured_from_the_bone_under_it_and_not_where_the_scan_has_none():
    """Bone: a sphere of 80 mm; face: one of 86 mm (6 mm of tissue everywhere). Glabella placed 5 mm in front of the
    bone (as a skull model's fit places it) is moved onto the bone and reads 6 mm, not 1; nasion 15 mm off has no
    bone under it; pogonion over pixels the scan lacks (a cut) is not measured."""
    skull = trimesh.creation.icosphere(subdivisions=5, radius=80.0)
    face = trimesh.creation.icosphere(subdivisions=5, radius=86.0)
    on_sphere = lambda y, out: np.array([0.0, y, np.sqrt(80.0**2 - y**2) + out])  # noqa: E731
    landmarks = {"glabella": on_sphere(20.0, 5.0), "nasion": on_sphere(10.0, 15.0), "pogonion": on_sphere(-40.0, 0.0)}
    as_placed = {row["landmark"]: row for row in tissue_depth_table(face, landmarks, VIEW)}
    assert abs(as_placed["glabella"]["face_mm"] - 1.0) < 0.2  # without the skull: from where the fit put it
    no_bone = np.zeros(VIEW.shape, bool)
    row, col = np.rint(VIEW.to_pixel(landmarks["pogonion"])).astype(int)
    no_bone[row - 2 : row + 3, col - 2 : col + 3] = True
    on_scan = {row["landmark"]: row for row in tissue_depth_table(face, landmarks, VIEW, skull, no_bone)}
    assert set(on_scan) == {"glabella"}
    assert abs(on_scan["glabella"]["face_mm"] - 6.0) < 0.2 and abs(on_scan["glabella"]["moved_to_bone_mm"] - 5.0) < 0.1
