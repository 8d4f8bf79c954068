"""Benchmark of every model family on the same data: template, statistical shape regression, 2.5D GAN,
diffusion model and 3D GAN, side by side.

1. A synthetic dataset of 600 subjects at 128^2 (2 mm pixels) with 64^3 grids (4 mm voxels; 420 train /
   90 val / 90 test), written once into the output folder (reused when it is already there).
2. Each model trained by `facegen train` in its own process, timed, with its peak memory (max RSS), with
   its configs/*-cpu-*.toml (gan2d 13 min on 2 idle cores; diffusion2d and gan3d were measured only on a
   shared machine: see docs/benchmarks.md). --reuse keeps runs that finished.
3. `facegen evaluate`'s comparison on the held-out test split, beside the dataset's floor, and each
   model's mean absolute error as a ratio to the template's; a model that samples (diffusion) is also
   checked for the calibration of its uncertainty.

    .venv/bin/python bench/models.py [--out bench-output/models] [--n 600] [--only template pca ...] [--data DIR]
        [--reuse]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from report import family_configs, print_summary, run_timed

ROOT = Path(__file__).resolve().parents[1]
TRAIN_TARGET_MIN = 15.0
CONFIGS = family_configs("cpu")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench-output" / "models")
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--only", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    p.add_argument("--data", type=Path, help="an existing dataset to use instead of OUT/dataset")
    p.add_argument("--reuse", action="store_true", help="keep runs in OUT/runs that finished (have run.json)")
    args = p.parse_args(argv)
    facegen = [sys.executable, "-m", "facegen.cli.main"]
    data = args.data or args.out / "dataset"
    if not (data / "dataset.json").exists():
        run_timed([*facegen, "synth", "--n", str(args.n), "--seed", str(args.seed), "--size", "128", "--grid", "64",
                   "--out", str(data), "--overwrite"])  # fmt: skip
    rows, figures = [], {}
    for family in args.only:
        run = args.out / "runs" / family
        if args.reuse and (run / "run.json").exists():
            rows.append((f"{family}: training", "reused (finished earlier)"))
            continue
        command = [*facegen, "train", "--model", family, "--data", str(data), "--out", str(run), "--overwrite"]
        if CONFIGS[family] is not None:
            command += ["--config", str(CONFIGS[family])]
        seconds, peak = run_timed(command)
        figures[family] = {"train_seconds": seconds, "peak_rss_mib": peak}
        budget = f"{seconds / 60 / TRAIN_TARGET_MIN:.2f}x the {TRAIN_TARGET_MIN:.0f} min budget"
        rows.append((f"{family}: training (process wall)", f"{seconds / 60:.1f} min ({budget})"))
        rows.append((f"{family}: peak memory", f"{peak:.0f} MiB"))
    runs = [str(args.out / "runs" / family) for family in args.only]
    evaluate = [*facegen, "evaluate", "--data", str(data), "--out", str(args.out / "report"), "--overwrite"]
    for run in runs:
        evaluate += ["--run", run]
    run_timed(evaluate)
    record = json.loads((args.out / "report" / "report.json").read_text())
    mae = {m["name"]: m["metrics"]["mae_mm"] for m in record["models"]}
    for name, value in mae.items():
        ratio = f" ({value['mean'] / mae['template']['mean']:.2f}x template)" if "template" in mae else ""
        rows.append((f"{name}: test MAE", f"{value['mean']:.2f} +- {value['sd']:.2f} mm{ratio}"))
        figures[name] = figures.get(name, {}) | {"test_mae_mm": value["mean"]}
    for m in record["models"]:
        if "calibration" in m:
            c = m["calibration"]
            rows.append((f"{m['name']}: Spearman(SD, |error|), 95% band coverage",
                         f"{c['spearman_sd_error']:.2f}, {c['coverage']:.1%} ({c['samples']} samples)"))  # fmt: skip
    if record["floor"]:
        rows.append(("floor (noise-free face): test MAE", f"{record['floor']['metrics']['mae_mm']['mean']:.2f} mm"))
    figures["comparison"] = record
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
