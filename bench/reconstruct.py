"""Benchmark of a case: seconds from INPUT to a finished case folder, for a 512 x 512 x 400 CT, the same head's dry
skull CT and its skull mesh.

Inputs (setup, not timed): the synthetic head of bench/ingest.py rendered as a 512 x 512 x 400 CT (0.5 x 0.5 x
0.6 mm, table, headrest and cable) written as .nii.gz, its dry skull (bone and air, on a plastic plate and the
table) at the same spacing and stored as a plain HU + 1000 .nii.gz, and the same head's skull as an STL turned off
the canonical pose. Each case is one `facegen reconstruct` process (imports included), with sex, age and BMI
given (one face) and with BMI unknown (three faces), report, PDF, viewer and manifest included.

    .venv/bin/python bench/reconstruct.py [--model default|RUN] [--keep DIR]

Target: under 20 s per case on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ingest import make_ct, write_inputs
from report import print_summary

TARGET_S = 20.0
SPACING = (0.5, 0.5, 0.6)


def timed_case(input_path: Path, out: Path, model: str, metadata: list[str]) -> float:
    """Wall seconds of one `facegen reconstruct` process."""
    command = [sys.executable, "-m", "facegen.cli.main", "reconstruct", str(input_path), "--out", str(out),
               "--model", model, "--overwrite", *metadata]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="'default' (built first if missing) or a run folder")
    p.add_argument("--keep", type=Path, help="keep inputs and cases here (default: a temporary folder)")
    args = p.parse_args(argv)
    if args.model == "default":
        from facegen.use.reconstruct import resolve_model

        resolve_model("default")  # build it now, outside the timed runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        head, ct, _ = make_ct(SPACING)
        paths, _, _ = write_inputs(ct, folder, ["nifti"])
        import trimesh

        from facegen.data.synthetic.dry_ct import render_dry_skull_ct, stored
        from facegen.io.volume import write_nifti

        skull = head.skull.copy()
        skull.apply_transform(trimesh.transformations.rotation_matrix(np.radians(20), [0.2, 1.0, 0.1]))
        skull.export(folder / "skull.stl")
        dry = render_dry_skull_ct(head, spacing_mm=SPACING, seed=0, support="plate", table=True)
        write_nifti(stored(dry, 1000.0), folder / "dry.nii.gz")
        dry_name = f"dry-skull CT {'x'.join(str(n) for n in dry.shape)} .nii.gz"
        del dry
        inputs = (("CT 512x512x400 .nii.gz", paths["nifti"]), (dry_name, folder / "dry.nii.gz"),
                  ("skull mesh .stl", folder / "skull.stl"))  # fmt: skip
        known = ["--sex", "F", "--age", "45", "--bmi", "26"]
        unknown_bmi = ["--sex", "F", "--age", "45"]
        rows, figures = [], {}
        for name, path in inputs:
            for label, metadata in (("1 face", known), ("3 faces, BMI unknown", unknown_bmi)):
                seconds = timed_case(path, folder / f"case-{len(figures)}", args.model, metadata)
                key = f"{name}, {label}"
                figures[key] = seconds
                rows.append((key, f"{seconds:.1f} s ({seconds / TARGET_S:.2f}x the {TARGET_S:.0f} s target)"))
                print(f"{key}: {seconds:.1f} s", flush=True)
        print_summary(rows, figures)


if __name__ == "__main__":
    main()
