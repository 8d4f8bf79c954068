"""Soft-tissue depth of a reconstructed face at the standard craniometric landmarks, beside the published range.

A forensic examiner checks a reconstruction the way it is built by hand: how thick is the tissue at glabella,
nasion, pogonion...? Each bone landmark the pose gave (the skull model's fit names all of them; a landmark
file only its own) is measured to the nearest point of the face surface, as tissue depth is measured on the
bone's normal, and set beside the pooled adult figures of the literature (mean +- 2 SD). The published figures
are real adults; the face is the model's output: the table compares the two, it does not validate either.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh

from facegen.data.representations.build import face_region_mask
from facegen.data.representations.depth_map import DepthView
from facegen.data.synthetic.tissue_table import FSTT_TABLE

PUBLISHED_SOURCE = ("pooled adult FSTT (Stephan & Simpson 2008 T-Table; Hona & Stephan 2023), mean +- 2 SD; "
                    "measured on real adults")  # fmt: skip
TISSUE_DEPTH_MEASURE = ("from each bone landmark (moved onto the nearest scanned bone point) to the nearest point of "
                        "the reconstructed face (mm); model output; landmarks where the scan has no bone are not "
                        "measured")
MAX_SEARCH_MM = 60.0
"""A landmark whose nearest face point is farther than this has no face over it (not reported)."""
ON_BONE_MM = 10.0
"""The pose's skull model places landmarks near the scanned bone, not on it (on the real headsq skull 0-10 mm off:
its rhinion 9.7 mm, as the real nasal bones end elsewhere); each is moved to the nearest scanned bone point, as a
landmark is placed on the surface by hand. One farther than this has no bone under it and is not measured."""


def _points(landmarks_canonical: dict[str, np.ndarray], name: str, bilateral: bool) -> list[tuple[str, np.ndarray]]:
    names = [f"{name}_l", f"{name}_r"] if bilateral else [name]
    return [(n, np.asarray(landmarks_canonical[n], float)) for n in names if n in landmarks_canonical]


def tissue_depth_table(
    face: trimesh.Trimesh, landmarks_canonical: dict[str, np.ndarray], view: DepthView,
    skull: trimesh.Trimesh | None = None, no_bone: np.ndarray | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per standard landmark seen from the front: the face's tissue depth (mm) and the published range.
    With the scanned `skull`, each landmark is first moved onto its nearest bone point (within ON_BONE_MM; the row
    says how far); landmarks over `no_bone` pixels (H, W: bone the scan lacks) are not measured."""
    region = face_region_mask(view)
    rows = []
    for entry in FSTT_TABLE:
        for name, point in _points(landmarks_canonical, entry.name, entry.bilateral):
            row, col = np.rint(view.to_pixel(point)).astype(int)
            if not (0 <= row < view.shape[0] and 0 <= col < view.shape[1] and region[row, col]):
                continue  # a lateral landmark: the frontal face does not cover it
            if no_bone is not None and no_bone[row, col]:
                continue  # the scan has no bone where the skull model put this landmark (a cut, missing bone)
            moved = 0.0
            if skull is not None:
                on_bone, off, _ = trimesh.proximity.closest_point(skull, point[None])
                if not off[0] <= ON_BONE_MM:
                    continue
                point, moved = on_bone[0], float(off[0])
            _, distance, _ = trimesh.proximity.closest_point(face, point[None])
            if not distance[0] <= MAX_SEARCH_MM:
                continue
            low, high = entry.mean_mm - 2 * entry.sd_mm, entry.mean_mm + 2 * entry.sd_mm
            depth = float(distance[0])
            rows.append({"landmark": name, "face_mm": round(depth, 1), "published_mean_mm": entry.mean_mm,
                         "published_low_mm": round(max(low, 0.0), 1), "published_high_mm": round(high, 1),
                         "within": bool(low <= depth <= high), "moved_to_bone_mm": round(moved, 1)})  # fmt: skip
    return rows
