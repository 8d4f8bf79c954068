"""The dataset card: what a dataset is, how it was made, its floor, and a checksum of every file."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from facegen.data.dataset.split import SPLITS, bmi_band
from facegen.data.representations.build import RepresentationSpec
from facegen.data.synthetic.tissue_table import FSTT_BY_NAME

ICT_NOTICE = (
    "Face shapes derive from the ICT Face Model Light (USC Institute for Creative Technologies, ICT-FaceKit), "
    "MIT licence; the licence text travels with facegen (facegen/assets/ICT-LICENSE.txt)."
)


FRAME = "canonical: Frankfurt horizontal y=0, midsagittal x=0, origin porion midpoint; +x left, +y up, +z anterior; mm"


def file_manifest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` except the card itself, by path relative to `root`."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == "dataset.json":
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, float)
    return {"mean": round(float(a.mean()), 4), "sd": round(float(a.std()), 4), "n": int(a.size)}


def _tissue_summary(results) -> dict[str, dict[str, float]]:
    """Measured tissue depth per tabled landmark (left side for bilateral ones) beside the table."""
    out = {}
    for name, row in sorted(FSTT_BY_NAME.items()):
        key = f"{name}_l" if row.bilateral else name
        values = [r.tissue_depth_mm[key] for r in results if key in r.tissue_depth_mm]
        if values:
            out[name] = {**_summary(values), "table_mean": row.mean_mm, "table_sd": row.sd_mm}
    return out


def subject_counts(subjects, splits: dict[str, str]) -> dict[str, dict[str, int]]:
    """Subjects per split, sex, BMI band and group ("unknown" where not known)."""
    return {
        "split": dict(sorted(Counter(splits.values()).items())),
        "sex": dict(sorted(Counter(s.sex.value if s.sex else "unknown" for s in subjects).items())),
        "bmi_band": dict(sorted(Counter(bmi_band(s.bmi) for s in subjects).items())),
        "group": dict(sorted(Counter(s.group or "unknown" for s in subjects).items())),
    }


def build_card(
    stage: Path,
    results,
    splits: dict[str, str],
    *,
    seed: int,
    spec: RepresentationSpec,
    ct: bool,
    software_version: str,
) -> dict:
    """The card of a freshly written synthetic dataset in folder `stage`."""
    from facegen.data.synthetic.generator import GENERATOR_VERSION
    from facegen.data.synthetic.template import TEMPLATE_VERSION

    subjects = [r.subject for r in results]
    by_split = {s: [r for r in results if splits[r.subject.subject_id] == s] for s in SPLITS}
    return {
        "kind": "facegen synthetic heads",
        "software_version": software_version,
        "generator_version": GENERATOR_VERSION,
        "template_version": TEMPLATE_VERSION,
        "seed": seed,
        "n_subjects": len(results),
        "ct": ct,
        "counts": subject_counts(subjects, splits),
        "floor": {
            "definition": "distance between the true face and the noise-free face (what skull and metadata imply); "
            "no predictor beats it on average",
            "surface_mm": _summary([r.floor_mm for r in results]),
            "depth_mae_mm": _summary([r.floor_depth_mae_mm for r in results]),
            "depth_mae_mm_by_split": {
                s: _summary([r.floor_depth_mae_mm for r in rs]) for s, rs in by_split.items() if rs
            },
        },
        "tissue_depth_mm": _tissue_summary(results),
        "representation": spec.to_dict(),
        "frame": FRAME,
        "licence_notice": ICT_NOTICE,
        "files": file_manifest(stage),
    }
