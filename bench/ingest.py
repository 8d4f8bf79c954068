"""Benchmark of scan ingestion: seconds and peak memory for one 512 x 512 x 400 head CT, end to end.

What it measures (figures and ratios only; it asserts nothing about speed):

1. Setup, not timed against the target: one synthetic head (subject B0001, rng 0) rendered as a CT in HU at
   the chosen spacing (default 0.5 x 0.5 x 0.6 mm), cropped or padded with air (-1000 HU) to exactly
   512 x 512 x 400 voxels over the head (top of the scalp a few mm below the top slice, the neck cut below),
   with a table, headrest, pillow and cable added around it; written once as a DICOM series (400 files, with
   planted identifying tags) and once as a NIfTI (.nii.gz) into a temporary folder.
2. For each input, a fresh Python process runs `ingest_input(path)` (read, calibrate HU, segment, mesh, align
   to the canonical pose; with --skull-only as `facegen reconstruct` does: `IngestOptions(full_face=False)`,
   the skin only rough) then `head_representations(head, RepresentationSpec())`. Reported: the whole
   child's wall seconds (interpreter start and imports included), the seconds of ingest + represent alone,
   a stage breakdown (read, HU calibration, segmentation, surfaces, skull-model build, alignment fit, input
   hash, other checks, representations) taken by wrapping the functions `ingest_volume` calls, and the
   child's own peak resident memory (VmHWM from /proc/self/status, read in the child after exec). The
   parent's getrusage(RUSAGE_CHILDREN) ru_maxrss is printed too but is no measure of the job: Linux carries
   the parent's high-water mark into the child through fork/vfork + exec, so it shows the parent's setup
   peak. Also printed: the child's CPU seconds (user + sys) and the 1-min load average around each run, since
   wall seconds on 2 cores move a lot when anything else runs.
3. Pose error against the truth: the synthetic head is generated in the canonical frame and the volume keeps
   those coordinates, so the ingested skull should lie on the true skull and `alignment.to_canonical`
   should be the identity. Reported: median / 90th percentile distance from ingested skull vertices to the
   nearest true skull vertex (scipy cKDTree; points sampled on the true surface itself score about 0.8 mm
   with its ~2 mm edges, printed alongside as the floor), the rotation angle and translation of
   `to_canonical`, and the distances of the fitted porions, orbitales and nasion from the true ones.
4. Ratios to the target of under 30 s and under 4 GB per CT on 2 cores, a summary table, and the same
   summary as one JSON line prefixed `BENCH_JSON `.

Run from the repository root:

    .venv/bin/python bench/ingest.py [--spacing SX SY SZ] [--inputs dicom nifti] [--keep DIR] [--skull-only]

Rendering the CT and writing the files take a minute or two before the timed runs start; the temporary
folder is removed afterwards unless --keep names a folder to write into instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from report import print_summary

TARGET_SECONDS = 30.0
TARGET_GB = 4.0
TARGET_CORES = 2
SHAPE = (512, 512, 400)
TOP_MARGIN_MM = 6.0
"""Air above the scalp in the top slices."""
MIB = 1024.0**2
GB = 1e9
PLANTED = {"PatientName": "DOE^JANE^QX7", "PatientID": "PID-99812345", "PatientSex": "F", "PatientAge": "045Y"}
"""Identifying values in the series, as a real export carries them (the reader must drop them)."""
CHILD_TAG = "CHILD_JSON "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=(0.5, 0.5, 0.6),
        metavar=("SX", "SY", "SZ"),
        help="voxel mm along i (left), j (posterior), k (superior, slices); default 0.5 0.5 0.6",
    )
    p.add_argument(
        "--inputs",
        nargs="+",
        choices=("dicom", "nifti"),
        default=["dicom", "nifti"],
        help="which inputs to ingest (default both)",
    )
    p.add_argument("--keep", type=Path, default=None, help="write the inputs here and keep them (default: temp)")
    p.add_argument(
        "--skull-only", action="store_true", help="ingest as a case does: IngestOptions(full_face=False), rough skin"
    )
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def vm_hwm_mib() -> float:
    """Peak resident set size of this process (VmHWM) in MiB, or ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- setup: the 512 x 512 x 400 CT ---------------------------------------------------------------------


def fit_to_shape(volume: Any, start: np.ndarray, shape: tuple[int, int, int]) -> Any:
    """The sub-box of `volume` starting at index `start` with `shape` voxels; outside it, air (-1000 HU)."""
    from facegen.io.volume import Volume

    start = np.asarray(start, int)
    out = np.full(shape, -1000, np.int16)
    src = tuple(slice(max(a, 0), min(a + n, m)) for a, n, m in zip(start, shape, volume.shape, strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, start, strict=True))
    out[dst] = volume.array[src]
    return Volume(out, volume.spacing_mm, volume.index_to_world(start.astype(float)), volume.direction)


def make_ct(spacing: tuple[float, float, float]) -> tuple[Any, Any, dict[str, float]]:
    """Synthetic head, its 512 x 512 x 400 CT with scanner objects, and setup seconds."""
    from facegen.data.scans.scanner_objects import add_scanner_objects
    from facegen.data.synthetic.ct import render_ct
    from facegen.data.synthetic.generator import HeadGenerator
    from facegen.data.synthetic.population import sample_subject

    seconds = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    head = HeadGenerator().generate(sample_subject(rng, "B0001"), rng)
    seconds["head"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rendered = render_ct(head, spacing_mm=spacing, seed=0)
    seconds["render"] = time.perf_counter() - t0
    # Place the box: centred on the head in i and j, scalp top TOP_MARGIN_MM below the top slice along k.
    v = np.asarray(head.face.vertices)
    top = float(v[:, 1].max()) + TOP_MARGIN_MM
    bottom = top - (SHAPE[2] - 1) * spacing[2]
    upper = v[v[:, 1] >= bottom]
    centre = 0.5 * (upper.min(axis=0) + upper.max(axis=0))
    centre[1] = 0.5 * (top + bottom)
    centre_ijk = rendered.world_to_index(centre[None])[0]
    start = np.round(centre_ijk - (np.asarray(SHAPE) - 1) / 2.0).astype(int)
    fitted = fit_to_shape(rendered, start, SHAPE)
    del rendered

    t0 = time.perf_counter()
    ct = add_scanner_objects(fitted, np.random.default_rng(1))
    seconds["scanner_objects"] = time.perf_counter() - t0
    return head, ct, seconds


def write_inputs(ct: Any, folder: Path, kinds: list[str]) -> tuple[dict[str, Path], dict[str, float], dict[str, float]]:
    """Write the CT as a DICOM series and/or NIfTI; paths, write seconds and MiB on disk per input."""
    from facegen.data.scans.dicom_export import write_dicom_series
    from facegen.io.volume import write_nifti

    paths, seconds, mib = {}, {}, {}
    if "dicom" in kinds:
        t0 = time.perf_counter()
        files = write_dicom_series(ct, folder / "series", tags=PLANTED, seed=3)
        seconds["dicom"] = time.perf_counter() - t0
        paths["dicom"] = folder / "series"
        mib["dicom"] = sum(f.stat().st_size for f in files) / MIB
    if "nifti" in kinds:
        t0 = time.perf_counter()
        path = write_nifti(ct, folder / "ct.nii.gz")
        seconds["nifti"] = time.perf_counter() - t0
        paths["nifti"] = path
        mib["nifti"] = path.stat().st_size / MIB
    return paths, seconds, mib


# --- the timed child ---------------------------------------------------------------------------------------


def child(path: Path, result: Path, skull_only: bool = False) -> None:
    """Ingest `path` and build its representations in this (fresh) process; print one CHILD_JSON line."""
    t_start = time.perf_counter()
    import facegen.data.alignment.register as register
    import facegen.data.scans.ingest as ingest
    import facegen.data.scans.intensity as intensity
    import facegen.data.scans.segment as segment
    import facegen.data.scans.surfaces as surfaces
    import facegen.data.scans.volumes as volumes
    from facegen.data.representations.build import RepresentationSpec

    import_seconds = time.perf_counter() - t_start
    stages: dict[str, float] = {}

    def timed(module: Any, name: str, stage: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - t0

        setattr(module, name, wrapper)

    # ingest_volume imports these from their modules when called, and align_head / input_sha256 by name.
    timed(volumes, "read_scan", "read")
    timed(intensity, "to_hounsfield", "calibrate_hu")
    timed(segment, "segment_head", "segment")
    timed(surfaces, "surfaces_from_ct", "surfaces")
    if skull_only:
        timed(segment, "segment_skull", "segment")
        timed(surfaces, "skull_surfaces", "surfaces")
    timed(register, "skull_model", "align_model_build")
    timed(ingest, "align_head", "align")
    timed(ingest, "input_sha256", "input_hash")

    cpu0 = os.times()
    t0 = time.perf_counter()
    head = ingest.ingest_input(path, ingest.IngestOptions(full_face=False) if skull_only else None)
    ingest_seconds = time.perf_counter() - t0
    hwm_ingest = vm_hwm_mib()
    t0 = time.perf_counter()
    reps = ingest.head_representations(head, RepresentationSpec())
    represent_seconds = time.perf_counter() - t0
    cpu1 = os.times()
    hwm = vm_hwm_mib()

    named = sum(v for k, v in stages.items() if k != "align_model_build")
    stages["align_fit"] = stages.pop("align", 0.0) - stages.get("align_model_build", 0.0)
    stages["other"] = ingest_seconds - named
    stages["represent"] = represent_seconds
    np.savez(
        result,
        skull=np.asarray(head.skull.vertices),
        face=np.asarray(head.face.vertices) if head.face is not None else np.zeros((0, 3)),
        to_canonical=head.alignment.to_canonical.as_matrix(),
        landmark_names=np.array(sorted(head.alignment.landmarks)),
        landmarks=np.array([head.alignment.landmarks[k] for k in sorted(head.alignment.landmarks)]),
    )
    out = {
        "import_seconds": import_seconds,
        "ingest_seconds": ingest_seconds,
        "represent_seconds": represent_seconds,
        "cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "stages": stages,
        "vm_hwm_mib_after_ingest": hwm_ingest,
        "vm_hwm_mib": hwm,
        "skull_vertices": len(head.skull.vertices),
        "face_vertices": 0 if head.face is None else len(head.face.vertices),
        "method": head.alignment.method,
        "inlier_share": head.alignment.inlier_share,
        "residual_mm": head.alignment.residual_mm,
        "reader": head.record["input"]["reader"],
        "intensity": head.record.get("intensity"),
        "skull_depth_pixels": int(reps.skull_depth.mask.sum()),
        "threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    print(CHILD_TAG + json.dumps(out, default=str), flush=True)


def run_child(path: Path, result: Path, skull_only: bool = False) -> dict[str, Any]:
    """Run `child` in a fresh interpreter; its figures plus wall seconds and the parent's view of its RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--result", str(result)]
    cmd += ["--skull-only"] if skull_only else []
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    load = {"load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_TAG)]
    if proc.returncode != 0 or not lines:
        return {
            **load,
            "ok": False,
            "wall_seconds": wall,
            "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-4000:],
        }
    out = json.loads(lines[-1][len(CHILD_TAG) :])
    out.update(
        load,
        ok=True,
        wall_seconds=wall,
        children_maxrss_mib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
    )
    return out


# --- pose error against the truth --------------------------------------------------------------------------


def pose_error(head: Any, result: Path) -> dict[str, Any]:
    """Distances of the ingested skull and landmarks from the truth, and the residual rotation/translation."""
    import trimesh
    from scipy.spatial import cKDTree

    data = np.load(result)
    tree = cKDTree(np.asarray(head.skull.vertices))
    dist, _ = tree.query(data["skull"])
    # What a perfect result would score: points on the true surface are ~0.8 mm from its nearest vertex.
    on_truth, _ = trimesh.sample.sample_surface(head.skull, len(data["skull"]), seed=0)
    floor, _ = tree.query(on_truth)
    m = data["to_canonical"]
    angle = float(np.degrees(np.arccos(np.clip((np.trace(m[:3, :3]) - 1.0) / 2.0, -1.0, 1.0))))
    truth = head.skull_landmarks
    landmarks = {}
    for name, point in zip(data["landmark_names"], data["landmarks"], strict=True):
        if str(name) in truth and str(name) in ("porion_l", "porion_r", "orbitale_l", "orbitale_r", "nasion"):
            landmarks[str(name)] = float(np.linalg.norm(point - np.asarray(truth[str(name)])))
    return {
        "skull_median_mm": float(np.median(dist)),
        "skull_p90_mm": float(np.percentile(dist, 90)),
        "skull_floor_median_mm": float(np.median(floor)),
        "rotation_deg": angle,
        "translation_mm": float(np.linalg.norm(m[:3, 3])),
        "landmark_error_mm": landmarks,
    }


# --- report ------------------------------------------------------------------------------------------------


def print_run(kind: str, r: dict[str, Any]) -> None:
    """Print one input's figures."""
    print(f"\n== {kind} ==")
    if not r["ok"]:
        print(f"  FAILED (exit {r['returncode']}) after {r['wall_seconds']:.1f} s:\n{r['stderr_tail']}")
        return
    print(f"  reader: {r['reader']}; intensity: {r['intensity']}")
    print(
        f"  child wall {r['wall_seconds']:.1f} s (imports {r['import_seconds']:.1f} s,"
        f" ingest {r['ingest_seconds']:.1f} s,"
        f" represent {r['represent_seconds']:.1f} s); peak RSS {r['vm_hwm_mib']:.0f} MiB"
        f" ({r['vm_hwm_mib_after_ingest']:.0f} MiB after ingest)"
    )
    print(
        f"  CPU (user+sys) of ingest + represent {r['cpu_seconds']:.1f} s;"
        f" 1-min load average {r['load_1min_before']:.1f} before, {r['load_1min_after']:.1f} after"
        f" (above {TARGET_CORES} means other work shared the cores)"
    )
    for stage, s in sorted(r["stages"].items(), key=lambda kv: -kv[1]):
        print(f"    {stage:<18} {s:7.2f} s")
    print(f"  alignment: {r['method']}, bone matched {r['inlier_share']}, residual {r['residual_mm']} mm")
    e = r.get("pose")
    if e:
        lm = ", ".join(f"{k} {v:.1f}" for k, v in sorted(e["landmark_error_mm"].items()))
        print(
            f"  pose vs truth: skull median {e['skull_median_mm']:.2f} mm (p90 {e['skull_p90_mm']:.2f};"
            f" {e['skull_floor_median_mm']:.2f} for points on the true surface itself),"
            f" rotation {e['rotation_deg']:.2f} deg, translation {e['translation_mm']:.2f} mm; landmarks mm: {lm}"
        )


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows of the summary table."""
    rows = [
        ("machine cores (os.cpu_count / affinity)", f"{s['cores']} / {s['affinity']}"),
        ("CT shape / spacing (mm)", f"{'x'.join(map(str, s['shape']))} / {'x'.join(f'{v:g}' for v in s['spacing'])}"),
        ("setup: render + objects + write (s)", f"{sum(s['setup_seconds'].values()):.1f}"),
    ]
    for kind, r in s["runs"].items():
        rows.append((f"{kind}: input size (MiB)", f"{s['input_mib'][kind]:.0f}"))
        if not r["ok"]:
            rows.append((f"{kind}: result", "FAILED"))
            continue
        rows += [
            (f"{kind}: child wall (s)", f"{r['wall_seconds']:.1f}"),
            (f"  ratio to {TARGET_SECONDS:.0f} s", f"{r['wall_seconds'] / TARGET_SECONDS:.2f}"),
            ("  ingest + represent (s)", f"{r['ingest_seconds'] + r['represent_seconds']:.1f}"),
            ("  CPU user+sys of ingest + represent (s)", f"{r['cpu_seconds']:.1f}"),
            ("  1-min load average before / after", f"{r['load_1min_before']:.1f} / {r['load_1min_after']:.1f}"),
            ("  peak RSS (MiB)", f"{r['vm_hwm_mib']:.0f}"),
            (f"  ratio to {TARGET_GB:g} GB", f"{r['vm_hwm_mib'] * MIB / GB / TARGET_GB:.2f}"),
        ]
        if r.get("pose"):
            rows += [
                ("  skull median distance to truth (mm)", f"{r['pose']['skull_median_mm']:.2f}"),
                ("  same for the true surface itself (mm)", f"{r['pose']['skull_floor_median_mm']:.2f}"),
                ("  residual rotation (deg)", f"{r['pose']['rotation_deg']:.2f}"),
                ("  residual translation (mm)", f"{r['pose']['translation_mm']:.2f}"),
            ]
    rows.append(("parent max RSS, setup (MiB)", f"{s['parent_maxrss_mib']:.0f}"))
    rows.append(("children max RSS, getrusage (MiB; see docstring)", f"{s['children_maxrss_mib']:.0f}"))
    return rows


def bench(args: argparse.Namespace, folder: Path) -> None:
    """Set up the inputs in `folder`, ingest each in a child process, and print the figures."""
    cores = os.cpu_count() or 1
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    spacing = tuple(float(v) for v in args.spacing)
    print(
        f"facegen ingest benchmark: {cores} cores (target: {TARGET_SECONDS:.0f} s and {TARGET_GB:g} GB on"
        f" {TARGET_CORES} cores), CT {SHAPE} at {spacing} mm, inputs {args.inputs}"
        + (" (skull only, as a case ingests)" if args.skull_only else "")
    )
    head, ct, setup = make_ct(spacing)
    print(
        f"\n== setup (not timed against the target) ==\n  head {setup['head']:.1f} s, render {setup['render']:.1f} s,"
        f" scanner objects {setup['scanner_objects']:.1f} s; CT {ct.shape}, origin {np.round(ct.origin_mm, 1)} mm"
    )
    paths, write_seconds, mib = write_inputs(ct, folder, args.inputs)
    del ct
    for kind in paths:
        print(f"  {kind}: written in {write_seconds[kind]:.1f} s, {mib[kind]:.0f} MiB -> {paths[kind]}")
    setup.update({f"write_{k}": v for k, v in write_seconds.items()})

    runs = {}
    for kind, path in paths.items():
        result = folder / f"result_{kind}.npz"
        r = run_child(path, result, args.skull_only)
        if r["ok"]:
            r["pose"] = pose_error(head, result)
        runs[kind] = r
        print_run(kind, r)

    summary = {
        "cores": cores,
        "affinity": affinity,
        "shape": list(SHAPE),
        "spacing": list(spacing),
        "target_seconds": TARGET_SECONDS,
        "target_gb": TARGET_GB,
        "target_cores": TARGET_CORES,
        "setup_seconds": setup,
        "input_mib": mib,
        "runs": runs,
        "parent_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "children_maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
    }
    print_summary(summary_rows(summary), summary)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with the hidden --child, one timed ingest) and print its figures."""
    args = parse_args(argv)
    if args.child is not None:
        child(args.child, args.result, args.skull_only)
        return
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        bench(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="facegen-bench-ingest-") as tmp:
        bench(args, Path(tmp))


if __name__ == "__main__":
    main()
