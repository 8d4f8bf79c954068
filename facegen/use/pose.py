"""The pose of a case, for the examiner: how it was found, how well, where its landmarks lie, and a picture.

A case stands on its pose: the face is predicted in the canonical (Frankfurt) frame the pose puts the skull
in. An automatic fit that matched little of the skull model's bone (below `WEAK_FIT_SHARE`) is refused
unless the examiner accepts it; the case then flags the pose as weak wherever it is shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegen.data.alignment.canonical import WEAK_FIT_SHARE, Alignment
from facegen.data.scans.ingest import IngestedHead

POSE_FIGURE = "alignment.png"
"""The case file of the alignment figure (front and profile, Frankfurt and midsagittal lines, landmarks)."""
FIGURE_LANDMARKS = ("porion", "orbitale", "nasion")
"""An automatic fit's landmarks drawn on the figure (a landmark file's are all drawn): those that set the pose."""
AUTOMATIC = "automatic fit of the skull model"


class WeakPoseError(ValueError):
    """The automatic pose fit is weak and the examiner has not accepted it; the message says what to do."""


def check_pose(head: IngestedHead, *, accept_weak: bool) -> None:
    """Refuse a weak automatic pose unless it is accepted, naming what was measured and the ways on."""
    alignment = head.alignment
    if not alignment.weak or accept_weak:
        return
    thresholds = head.record.get("thresholds_hu")
    bone = f", or check that --bone-hu ({thresholds['bone']:g} HU) suits the scan" if thresholds else ""
    raise WeakPoseError(
        f"{head.record['input']['name']}: the automatic pose is weak: only {alignment.inlier_share:.0%} of the skull "
        f"model found matching bone (residual {alignment.residual_mm:.2f} mm); a pose is trusted from "
        f"{WEAK_FIT_SHARE:.0%}, and below it poses of synthetic CTs were found up to 11 degrees off. Give porions "
        f"and left orbitale with --landmarks FILE (3D Slicer .mrk.json or CSV){bone}; or pass --accept-weak-pose to "
        "go on with this pose (the case and its report then flag it as weak)"
    )


def canonical_landmarks(alignment: Alignment) -> dict[str, np.ndarray]:
    """The alignment's landmarks in the canonical frame (mm), by name."""
    return alignment.canonical_landmarks()


def pose_record(head: IngestedHead, *, accepted_weak: bool) -> dict[str, Any]:
    """The pose as plain values for case.json and the report: method, fit quality, verdict, landmarks."""
    a = head.alignment
    return {
        "method": AUTOMATIC if a.inlier_share is not None else a.method,
        "bone_matched_share": None if a.inlier_share is None else round(a.inlier_share, 4),
        "residual_mm": None if a.residual_mm is None else round(a.residual_mm, 3),
        "symmetry_matched_share": None if a.symmetry_share is None else round(a.symmetry_share, 4),
        "midline_tilt_from_symmetry_deg": None if a.midline_tilt_deg is None else round(a.midline_tilt_deg, 2),
        "weak_below_share": WEAK_FIT_SHARE,
        "weak": a.weak,
        "weak_accepted": a.weak and accepted_weak,
        "thresholds_hu": head.record.get("thresholds_hu"),
        "landmarks_canonical_mm": {k: np.round(v, 2).tolist() for k, v in canonical_landmarks(a).items()},
        "figure": POSE_FIGURE,
    }


def pose_figure_png(head: IngestedHead) -> bytes:
    """The alignment figure of the case (skull, and the skin found for the pose) as PNG bytes."""
    from facegen.viz.alignment import alignment_figure
    from facegen.viz.report_figures import png_bytes

    landmarks = canonical_landmarks(head.alignment)
    if head.alignment.inlier_share is not None:
        landmarks = {k: v for k, v in landmarks.items() if k.startswith(FIGURE_LANDMARKS)}
    method = AUTOMATIC if head.alignment.inlier_share is not None else head.alignment.method
    return png_bytes(alignment_figure(head.skull, head.face, landmarks, f"Pose: {method}"), dpi=72)
