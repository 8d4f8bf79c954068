"""Benchmark of the synthetic head generator: throughput, CT cost, and one grid at the seeds' resolution.

What it measures (figures and ratios only; it asserts nothing about speed):

1. Subjects per minute of the full dataset job without CT (`write_synthetic_dataset`, default
   representations: 256x256 depth maps at 1 mm and 128^3 grids, plus meshes and landmarks), after a
   warm-up that builds or loads the head template once (cached under ~/.cache/facegen; timed apart),
   and its ratio to the target of 60 subjects/minute on 2 cores.
2. The same job with CT volumes for a few subjects: subjects per minute and size on disk per subject.
3. Seconds, traced peak memory (tracemalloc) and process max RSS for one skull grid and one face grid
   at the seeds' resolution 512 x 512 x 102, with the occupied fraction of each grid.
4. A summary table, and the same summary as one JSON line prefixed `BENCH_JSON `.

Run from the repository root:

    .venv/bin/python bench/synth.py [--n N] [--workers W] [--ct-n K] [--skip-seed-grid]

Defaults: N=60 subjects, W=2 workers, K=4 CT subjects. Each dataset is written into a temporary
folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from report import print_summary

TARGET_SUBJECTS_PER_MIN = 60.0
TARGET_CORES = 2
MIB = 1024.0**2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="subjects in the dataset job without CT (default 60)")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the dataset jobs (default 2)")
    p.add_argument("--ct-n", type=int, default=4, help="subjects in the dataset job with CT (default 4)")
    p.add_argument("--skip-seed-grid", action="store_true", help="skip the 512 x 512 x 102 grid figures")
    return p.parse_args(argv)


def max_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports kB) of this process or its reaped children."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def folder_bytes(root: Path) -> tuple[int, int]:
    """Apparent bytes (sum of file sizes) and allocated bytes (blocks) of all files under `root`."""
    apparent = allocated = 0
    for path in root.rglob("*"):
        if path.is_file():
            st = path.stat()
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def warm_up() -> float:
    """Build or load the head template once in this process; returns seconds."""
    from facegen.data.dataset.writer import _generator

    t0 = time.perf_counter()
    _generator()
    return time.perf_counter() - t0


def time_dataset(n: int, workers: int, ct: bool) -> dict[str, Any]:
    """Write an n-subject dataset into a temporary folder; returns seconds, rate and sizes."""
    from facegen.data.dataset.writer import write_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="facegen-bench-") as tmp:
        out = Path(tmp) / "dataset"
        t0 = time.perf_counter()
        write_synthetic_dataset(out, n=n, seed=0, workers=workers, overwrite=True, ct=ct)
        seconds = time.perf_counter() - t0
        apparent, allocated = folder_bytes(out)
        ct_sizes = [p.stat().st_size for p in out.rglob("ct.nii.gz")]
    return {
        "n": n,
        "workers": workers,
        "ct": ct,
        "seconds": seconds,
        "subjects_per_min": 60.0 * n / seconds,
        "mib_per_subject": apparent / n / MIB,
        "mib_per_subject_allocated": allocated / n / MIB,
        "ct_files": len(ct_sizes),
        "ct_mib_per_subject": float(np.mean(ct_sizes)) / MIB if ct_sizes else 0.0,
    }


def traced(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run `fn` under tracemalloc; returns its result and the traced peak in MiB."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / MIB


def seed_grid(name: str, mesh: Any) -> dict[str, Any]:
    """Voxelize one mesh at SEED_GRID_SHAPE: seconds (untraced run), traced peak MiB and occupied fraction."""
    from facegen.data.representations.voxel_grid import SEED_GRID_SHAPE, GridSpec, voxelize

    spec = GridSpec(shape=SEED_GRID_SHAPE)
    t0 = time.perf_counter()
    grid = voxelize(mesh, spec)
    seconds = time.perf_counter() - t0
    del grid
    grid, peak_mib = traced(lambda: voxelize(mesh, spec))
    occ = grid.occupancy
    return {
        "mesh": name,
        "shape": list(occ.shape),
        "seconds": seconds,
        "traced_peak_mib": peak_mib,
        "grid_mib": occ.nbytes / MIB,
        "occupied_fraction": float(occ.mean()),
        "max_rss_mib_after": max_rss_mib(),
    }


def seed_grids() -> dict[str, Any]:
    """Generate one head (subject B0, rng 0) and voxelize its skull and face at the seeds' resolution."""
    from facegen.data.synthetic.generator import HeadGenerator
    from facegen.data.synthetic.population import sample_subject

    rss_before = max_rss_mib()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    head = HeadGenerator().generate(sample_subject(rng, "B0"), rng)
    head_seconds = time.perf_counter() - t0
    return {
        "head_seconds": head_seconds,
        "max_rss_mib_before": rss_before,
        "skull": seed_grid("skull", head.skull),
        "face": seed_grid("face", head.face),
    }


def print_dataset(title: str, r: dict[str, Any]) -> None:
    """Print one dataset job's figures."""
    print(f"\n== {title} ==")
    print(f"  {r['n']} subjects, {r['workers']} workers, ct={r['ct']}: {r['seconds']:.1f} s")
    print(f"  subjects/minute: {r['subjects_per_min']:.1f}")
    print(
        f"  size per subject: {r['mib_per_subject']:.2f} MiB apparent, {r['mib_per_subject_allocated']:.2f} MiB"
        " allocated (incl. share of arrays.zarr)"
    )
    if r["ct"]:
        print(f"  CT volume per subject: {r['ct_mib_per_subject']:.2f} MiB ({r['ct_files']} files)")


def print_grid(g: dict[str, Any]) -> None:
    """Print one seed-resolution grid's figures."""
    shape = " x ".join(str(s) for s in g["shape"])
    print(
        f"  {g['mesh']:<5} {shape}: {g['seconds']:.2f} s, traced peak {g['traced_peak_mib']:.0f} MiB"
        f" (grid itself {g['grid_mib']:.0f} MiB), occupied {100 * g['occupied_fraction']:.2f}%,"
        f" process max RSS so far {g['max_rss_mib_after']:.0f} MiB"
    )


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows of the summary table."""
    rows = [
        ("machine cores (os.cpu_count)", str(s["cores"])),
        ("template warm-up (s)", f"{s['warmup_seconds']:.2f}"),
    ]
    d = s["dataset"]
    rows += [
        (f"no-CT job: subjects/min (n={d['n']}, w={d['workers']})", f"{d['subjects_per_min']:.1f}"),
        (f"  ratio to target {TARGET_SUBJECTS_PER_MIN:.0f}/min on {TARGET_CORES} cores", f"{s['target_ratio']:.2f}"),
        ("  ratio scaled to 2 effective cores", f"{s['target_ratio_per_core']:.2f}"),
        ("  MiB per subject", f"{d['mib_per_subject']:.2f}"),
    ]
    c = s["dataset_ct"]
    if c:
        rows += [
            (f"CT job: subjects/min (n={c['n']}, w={c['workers']})", f"{c['subjects_per_min']:.1f}"),
            ("  ratio to the no-CT target", f"{c['subjects_per_min'] / TARGET_SUBJECTS_PER_MIN:.2f}"),
            ("  MiB per subject (all files)", f"{c['mib_per_subject']:.2f}"),
            ("  MiB per CT volume", f"{c['ct_mib_per_subject']:.2f}"),
        ]
    g = s["seed_grid"]
    if g:
        rows.append(("seed-grid head generation (s)", f"{g['head_seconds']:.2f}"))
        for k in ("skull", "face"):
            rows += [
                (f"{k} grid 512x512x102 (s)", f"{g[k]['seconds']:.2f}"),
                (f"  {k} traced peak (MiB)", f"{g[k]['traced_peak_mib']:.0f}"),
                (f"  {k} occupied fraction", f"{g[k]['occupied_fraction']:.4f}"),
            ]
        rows.append(("process max RSS (MiB)", f"{s['max_rss_mib']:.0f}"))
    rows.append(("children max RSS (MiB)", f"{s['children_max_rss_mib']:.0f}"))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    print(f"facegen synthetic benchmark: {cores} cores, n={args.n}, workers={args.workers}, ct-n={args.ct_n}")

    warmup = warm_up()
    print(f"\n== warm-up ==\n  template build/load + generator: {warmup:.2f} s")

    dataset = time_dataset(args.n, args.workers, ct=False)
    print_dataset("dataset job without CT", dataset)
    ratio = dataset["subjects_per_min"] / TARGET_SUBJECTS_PER_MIN
    print(f"  ratio to target ({TARGET_SUBJECTS_PER_MIN:.0f} subjects/min on {TARGET_CORES} cores): {ratio:.2f}")

    dataset_ct = time_dataset(args.ct_n, args.workers, ct=True) if args.ct_n > 0 else None
    if dataset_ct:
        print_dataset("dataset job with CT", dataset_ct)

    grids = None
    if not args.skip_seed_grid:
        print("\n== one grid at the seeds' resolution 512 x 512 x 102 ==")
        grids = seed_grids()
        print(f"  head generation: {grids['head_seconds']:.2f} s")
        print_grid(grids["skull"])
        print_grid(grids["face"])

    summary = {
        "cores": cores,
        "warmup_seconds": warmup,
        "dataset": dataset,
        "target_subjects_per_min": TARGET_SUBJECTS_PER_MIN,
        "target_cores": TARGET_CORES,
        "target_ratio": ratio,
        "target_ratio_per_core": ratio * TARGET_CORES / min(cores, args.workers),
        "dataset_ct": dataset_ct,
        "seed_grid": grids,
        "max_rss_mib": max_rss_mib(),
        "children_max_rss_mib": max_rss_mib(resource.RUSAGE_CHILDREN),
    }
    print_summary(summary_rows(summary), summary)


if __name__ == "__main__":
    main()
