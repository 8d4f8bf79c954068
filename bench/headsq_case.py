"""The real skull's case, measured: the shared headsq CT with its soft tissue removed, reconstructed, against the
same person's own face (issue 18's real-skull acceptance).

1. The dry skull: headsq's values below 300 HU set to air (-1000 HU), written beside its header (as the tests do).
2. `facegen reconstruct dry.nhdr --sex F --age 40 --bmi 24` (default model, or --model RUN): the share of the face
   within 0.5 mm of the bone, the landmark tissue depths and how many lie within the published mean +- 2 SD, the
   skull's distance from the training skulls.
3. The full CT ingested with its skin in the model's view: the face's mean distance from the person's real skin
   along the view (over the facial region, both faces present) and the share within 2.5 mm, and the person's own
   tissue depth at each landmark, measured as the case measures the face's (from the scanned bone, nearest skin).

Figures only; it asserts nothing. The pose of the dry skull is from the bone alone and the full CT's from bone and
skin (1.5 degrees, 3.3 mm apart): part of the skin distance is that difference.

    .venv/bin/python bench/headsq_case.py [--model default|RUN] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import print_summary

ROOT = Path(__file__).resolve().parents[1]
HEADSQ = ROOT.parent / "shared" / "data" / "headsq-ct"
DRY_BELOW = 1300
"""Stored values (HU + 1000) below this are soft tissue or air: set to air for the dry skull (300 HU)."""
METADATA = ["--sex", "F", "--age", "40", "--bmi", "24"]
VARIANT = "F-age40-bmi24"


def write_dry_skull(folder: Path) -> Path:
    """headsq with its soft tissue removed, as a detached NRRD in `folder`."""
    raw = b"".join((HEADSQ / f"quarter.{n}").read_bytes() for n in range(1, 94))
    values = np.frombuffer(raw, "<i2").copy()
    values[values < DRY_BELOW] = 0
    (folder / "dry.raw").write_bytes(values.astype("<i2").tobytes())
    header = (HEADSQ / "quarter.nhdr").read_text().replace("quarter.%d 1 93 1", "dry.raw")
    (folder / "dry.nhdr").write_text(header)
    return folder / "dry.nhdr"


def own_face(case: Path) -> dict[str, object]:
    """The person's skin and tissue depths from the full CT, in the case model's view (canonical frame)."""
    from facegen.data.representations.build import RepresentationSpec
    from facegen.data.representations.depth_map import DepthView
    from facegen.data.representations.voxel_grid import GridSpec
    from facegen.data.scans.ingest import IngestOptions, head_representations, ingest_input
    from facegen.use.tissue_depths import tissue_depth_table

    record = json.loads((case / "case.json").read_text())
    depth = np.load(case / VARIANT / "face_depth_mm.npy")
    view = DepthView(tuple(depth.shape[-2:]), 256.0 / depth.shape[-1])
    spec = RepresentationSpec(view, GridSpec(shape=(8, 8, 8)))
    head = ingest_input(HEADSQ / "quarter.nhdr", IngestOptions(spec=spec, full_face=True))
    reps = head_representations(head, spec)
    rows = tissue_depth_table(head.face, head.alignment.canonical_landmarks(), view, head.skull)
    return {"skin": reps.face_depth, "region": reps.face_region, "rows": rows, "record": record}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--keep", type=Path, help="keep the dry skull and the case in this folder")
    args = p.parse_args(argv)
    if not HEADSQ.exists():
        raise SystemExit(f"{HEADSQ} is not here: the shared data sit beside the repository")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        dry, case = write_dry_skull(folder), folder / "case"
        command = [sys.executable, "-m", "facegen.cli.main", "reconstruct", str(dry), "--out", str(case),
                   "--model", args.model, "--overwrite", *METADATA]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        own = own_face(case)
        face = np.load(case / VARIANT / "face_depth_mm.npy")
        face = face[0] if face.ndim == 3 else face
        claimed = np.load(case / VARIANT / "face_mask.npy")
        skin = own["skin"]
        both = own["region"] & claimed & skin.mask
        error = np.abs(face - skin.depth_mm)[both]
    record = own["record"]
    rows_case = record["tissue_depth"]["faces"][VARIANT]
    person = {r["landmark"]: r for r in own["rows"]}
    within = sum(r["within"] for r in rows_case)
    rows = [
        ("case seconds (first use builds the default model)", f"{seconds:.1f}"),
        ("face within 0.5 mm of the bone", f"{record['inside_bone']['variants'][VARIANT]['share']:.1%}"),
        ("landmarks within the published mean +- 2 SD", f"{within} of {len(rows_case)}"),
        ("skull distance (1 = typical training skull)", f"{record['skull_novelty']['distance']}"),
        ("mean distance from the person's skin, mm", f"{error.mean():.2f}"),
        ("share within 2.5 mm of the person's skin", f"{np.mean(error <= 2.5):.0%}"),
    ]
    for r in rows_case:
        own_mm = person.get(r["landmark"], {}).get("face_mm", float("nan"))
        flag = "" if r["within"] else "  OUT"
        rows.append((f"  {r['landmark']} (published {r['published_low_mm']}-{r['published_high_mm']})",
                     f"face {r['face_mm']:.1f}, person {own_mm:.1f}{flag}"))  # fmt: skip
    figures = {"seconds": seconds, "within_2sd": within, "landmarks": len(rows_case),
               "skin_mae_mm": float(error.mean()), "skin_within_2_5mm": float(np.mean(error <= 2.5)),
               "skull_distance": record["skull_novelty"]["distance"],
               "near_bone_share": record["inside_bone"]["variants"][VARIANT]["share"]}  # fmt: skip
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
