"""What a case says about what the model does not know: how unusual its skull is, what bone it lacks, and where
the model's face fell inside the bone.

Each check returns plain JSON-ready figures for `case.json` and the report, with a sentence an examiner can
read. None of them changes the face: they say where it should not be trusted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegen.data.representations.build import face_region_mask
from facegen.data.representations.depth_map import DepthView
from facegen.evaluation.regions import region_masks
from facegen.training.skull_space import BONE_EXPECTED_SHARE, SkullSpace

MISSING_REGION_SHARE = 0.5
"""A region lacks its bone when at least this share of its expected bone pixels have none (or bone far behind)."""
PARTS = {"mandible": ("chin", "jaw_line"), "teeth or the bone that holds them": ("mouth",)}
"""Named missing parts and the facial regions whose bone they are (the mandible's absence empties the mouth too)."""
UNKNOWN_SPACE = "unknown: this model was saved without the summary of its training skulls; retrain it"
INSIDE_BONE_LIMIT = 0.05
"""Past this share of the face inside the bone (before correction), the model does not fit this skull."""


def skull_novelty(space: SkullSpace | None, skull_depth: np.ndarray, skull_mask: np.ndarray) -> dict[str, Any]:
    """How far the case's skull lies from the training skulls, its percentile, and whether it is beyond them all."""
    if space is None:
        return {"distance": None, "out_of_distribution": None, "statement": UNKNOWN_SPACE}
    distance = space.distance(skull_depth, skull_mask)
    percentile = space.percentile(distance)
    beyond = bool(distance > space.reference.max())
    statement = (
        f"the skull lies at {distance:.2f} (1 = a typical training skull), farther than every one of the "
        f"{len(space.reference)} training skulls: out of the model's experience, treat the face with caution"
        if beyond
        else f"the skull lies at {distance:.2f} (1 = a typical training skull), farther than "
        f"{percentile:.0f}% of the {len(space.reference)} training skulls"
        + (": beyond their 95th percentile, near the edge of the model's experience" if percentile >= 95 else "")
    )
    return {
        "distance": round(distance, 3),
        "unit": "median distance of the training skulls, each measured with the model's skull space fitted without it",
        "percentile_in_training": round(percentile, 1),
        "training_skulls": len(space.reference),
        "largest_training_distance": round(float(space.reference.max()), 3),
        "out_of_distribution": beyond,
        "statement": statement,
    }


def missing_bone(
    space: SkullSpace | None, skull_depth: np.ndarray, skull_mask: np.ndarray, view: DepthView,
    *, cut_at: list[str] | None = None,
) -> tuple[dict[str, Any], np.ndarray | None]:  # fmt: skip
    """The parts and facial regions whose bone the case's skull lacks (where training skulls have it), the sides
    where the scan's field of view cut the skull (`cut_at`, from ingest), and the (H, W) map of pixels with no
    bone beneath the face (None without a skull space)."""
    cut = [f"the skull is cut by the scan's field of view ({', '.join(cut_at)})"] if cut_at else []
    if space is None:
        return {"parts": cut or None, "field_of_view_cut_at": cut_at or [],
                "statement": "; ".join([*cut, UNKNOWN_SPACE])}, None  # fmt: skip
    missing = space.missing_bone(skull_depth, skull_mask) & face_region_mask(view)  # the vault's rim is no face
    expected = space.bone_share >= BONE_EXPECTED_SHARE
    by_region = {}
    for name, region in region_masks(view).items():
        where = region & expected
        if where.any():
            by_region[name] = round(float(missing[where].mean()), 3)
    lacking = {name for name, share in by_region.items() if share >= MISSING_REGION_SHARE}
    parts = [part for part, regions in PARTS.items() if any(r in lacking for r in regions)]
    if "mandible" in parts:
        parts = [p for p in parts if p != "teeth or the bone that holds them"] if "mouth" in lacking else parts
    others = sorted(lacking - {r for p in parts for r in PARTS[p]})
    parts += [f"bone under the {name.replace('_', ' ')}" for name in others]
    statement = "; ".join(cut + ([f"missing from the skull: {', '.join(parts)}; the face over it is predicted with "
                                  "no bone beneath it (marked on the mesh and in the renders) and is the model's "
                                  "guess alone"] if parts else []))  # fmt: skip
    return {"parts": cut + parts, "share_missing_by_region": by_region, "field_of_view_cut_at": cut_at or [],
            "statement": statement or "no missing bone found"}, missing  # fmt: skip


def inside_bone(moved: dict[str, np.ndarray], face_masks: dict[str, np.ndarray], view: DepthView) -> dict[str, Any]:
    """Per variant and facial region, the share of face the model put inside the bone or within 0.5 mm of it (held
    0.5 mm in front of it before use, by the model's soft floor or by the case)."""
    regions = region_masks(view)
    out: dict[str, Any] = {}
    for name, pushed in moved.items():
        face = face_masks[name]
        total = float(pushed.sum() / max(face.sum(), 1))
        per_region = {r: round(float(pushed[m & face].mean()), 3) for r, m in regions.items() if (m & face).any()}
        out[name] = {"share": round(total, 4), "by_region": per_region, "fits": total <= INSIDE_BONE_LIMIT}
    worst = max((v["share"] for v in out.values()), default=0.0)
    out_of_fit = [name for name, v in out.items() if not v["fits"]]
    limit = f"{INSIDE_BONE_LIMIT:.0%}"
    statement = (f"up to {worst:.1%} of the face came within 0.5 mm of the bone or inside it and was held in front of "
                 f"it; past {limit} the model does not fit this skull ({', '.join(out_of_fit)})" if out_of_fit else
                 f"at most {worst:.1%} of the face came within 0.5 mm of the bone or inside it (held in front of it; "
                 f"the limit is {limit})")  # fmt: skip
    return {"variants": out, "limit": INSIDE_BONE_LIMIT, "model_fits": not out_of_fit, "statement": statement}
