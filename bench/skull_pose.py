"""Benchmark of the pose from the bone alone: degrees and mm off, and seconds, on degraded synthetic skull meshes
and on the real headsq skull.

What it measures (figures only; it asserts nothing):

1. Synthetic: three heads (rng 7, 8, 9) and, for each, skull meshes of `facegen.data.synthetic.skull_scans` under
   six conditions (1 mm clean; 1 mm, 0.3 mm noise; 3 mm, 0.3 mm noise; 2 mm, 8 holes of 15 mm, 0.3 mm noise;
   2 mm without mandible, 0.3 mm noise; 2 mm without mandible, 8 holes, 0.5 mm noise), each in a random pose (seed
   per run), written as PLY and ingested as `facegen reconstruct` does. Pose error: the rotation angle between the
   found and the true scan-to-canonical transform, and the larger displacement of mid-porion and nasion.
2. Real: the headsq CT (../shared) meshed by marching cubes at 300 HU, in its world frame (LPS) and in random
   turns and shifts of it, and the CT itself with its soft tissue removed (below 300 HU set to air): each pose
   against the full CT's (skin included), as a case ingests it.
3. Seconds of each alignment (the fit only, ingest around it excluded), and the 1-min load average (2 cores).

    .venv/bin/python bench/skull_pose.py [--seeds N] [--turns N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh
from report import print_summary
from scipy.spatial.transform import Rotation
from skimage.measure import marching_cubes

import facegen.data.scans.ingest as ingest_module
from facegen.data.pose import RigidTransform
from facegen.data.scans.ingest import IngestOptions, ingest_input
from facegen.data.scans.intensity import to_hounsfield
from facegen.data.scans.volumes import read_scan
from facegen.data.synthetic.generator import HeadGenerator
from facegen.data.synthetic.population import sample_subject
from facegen.data.synthetic.skull_scans import SkullScanSpec, pose_error, skull_scan

HEADSQ = Path(__file__).resolve().parents[2] / "shared" / "data" / "headsq-ct" / "quarter.nhdr"
CONDITIONS = {
    "1 mm clean": SkullScanSpec(resolution_mm=1.0),
    "1 mm noisy": SkullScanSpec(resolution_mm=1.0, noise_mm=0.3),
    "3 mm noisy": SkullScanSpec(resolution_mm=3.0, noise_mm=0.3),
    "2 mm holed": SkullScanSpec(resolution_mm=2.0, noise_mm=0.3, holes=8, hole_radius_mm=15.0),
    "2 mm no mandible": SkullScanSpec(resolution_mm=2.0, noise_mm=0.3, mandible=False),
    "2 mm no mandible, holed": SkullScanSpec(resolution_mm=2.0, noise_mm=0.5, holes=8, hole_radius_mm=15.0,
                                             mandible=False),
}  # fmt: skip
OPTIONS = IngestOptions(full_face=False)


def _timed_align() -> list[float]:
    """Wrap the ingest module's align_head so that every call's seconds are recorded (the fit alone)."""
    seconds: list[float] = []
    align = ingest_module.align_head

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return align(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    ingest_module.align_head = timed
    return seconds


def synthetic(seeds: int, folder: Path, seconds: list[float]) -> dict[str, list[tuple[float, float]]]:
    """Pose errors (degrees, mm) per condition over three heads and `seeds` random poses each."""
    generator = HeadGenerator()
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in CONDITIONS}
    for head_seed in (7, 8, 9):
        rng = np.random.default_rng(head_seed)
        head = generator.generate(sample_subject(rng, f"H{head_seed}"), rng)
        at = [np.zeros(3), head.skull_landmarks["nasion"]]
        for name, spec in CONDITIONS.items():
            for seed in range(seeds):
                scan = skull_scan(head, spec, seed=1000 * head_seed + seed)
                path = folder / "skull.ply"
                scan.mesh.export(path)
                found = ingest_input(path, OPTIONS).alignment.to_canonical
                out[name].append(pose_error(found, scan.scan_to_canonical, at))
                print(f"head {head_seed} {name} seed {seed}: {out[name][-1][0]:.2f} deg {out[name][-1][1]:.2f} mm "
                      f"{seconds[-1]:.1f} s", flush=True)  # fmt: skip
    return out


def headsq(turns: int, folder: Path, seconds: list[float]) -> dict[str, tuple[float, float]]:
    """The headsq skull's bone-only poses (mesh in world axes and turned; the CT without soft tissue) against the
    full CT's pose, as (degrees, mm)."""
    scan = read_scan(HEADSQ)
    volume = to_hounsfield(scan, HEADSQ).volume
    from_patient = scan.frame.from_patient()
    ct = ingest_input(HEADSQ, OPTIONS).alignment
    truth = ct.scan_to_canonical(from_patient)  # LPS -> canonical
    at = [np.zeros(3), ct.to_canonical.apply(ct.landmarks["nasion"])]
    vertices, faces, _, _ = marching_cubes(volume.array.astype(np.float32), 300.0)
    linear = from_patient @ volume.affine[:3, :3]
    world = trimesh.Trimesh(vertices @ linear.T + from_patient @ volume.origin_mm,
                            faces[:, ::-1] if np.linalg.det(linear) > 0 else faces, process=False)  # fmt: skip
    out = {}
    rng = np.random.default_rng(0)
    for turn in range(turns + 1):
        move = RigidTransform(np.eye(3), np.zeros(3))
        if turn:
            move = RigidTransform(Rotation.random(random_state=turn).as_matrix(), rng.uniform(-200, 200, 3))
        mesh = world.copy()
        mesh.vertices = move.apply(np.asarray(world.vertices))
        mesh.export(folder / "headsq.ply")
        found = ingest_input(folder / "headsq.ply", OPTIONS).alignment.to_canonical
        back = RigidTransform(found.rotation @ move.rotation, found.apply(move.translation))  # LPS -> canonical
        out[f"mesh, {'world axes' if turn == 0 else f'turn {turn}'}"] = pose_error(back, truth, at)
        print(f"headsq mesh turn {turn}: {out[list(out)[-1]]} {seconds[-1]:.1f} s", flush=True)
    raw = b"".join((HEADSQ.parent / f"quarter.{n}").read_bytes() for n in range(1, 94))
    values = np.frombuffer(raw, "<i2").copy()
    values[values < 1300] = 0  # soft tissue (below 300 HU) to air, in the file's HU + 1000
    (folder / "dry.raw").write_bytes(values.astype("<i2").tobytes())
    (folder / "dry.nhdr").write_text(HEADSQ.read_text().replace("quarter.%d 1 93 1", "dry.raw"))
    dry = ingest_input(folder / "dry.nhdr", OPTIONS).alignment.scan_to_canonical(from_patient)
    out["CT without soft tissue"] = pose_error(dry, truth, at)
    print(f"headsq dry CT: {out['CT without soft tissue']} {seconds[-1]:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2, help="random poses per head and condition")
    p.add_argument("--turns", type=int, default=4, help="random turns of the headsq mesh besides its world axes")
    args = p.parse_args(argv)
    seconds = _timed_align()
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, errors in synthetic(args.seeds, Path(tmp), seconds).items():
            worst = np.max(np.asarray(errors), axis=0)
            rows.append((f"synthetic {name}: worst deg / mm", f"{worst[0]:.2f} / {worst[1]:.2f}"))
            figures[f"synthetic {name}"] = np.round(errors, 3).tolist()
        if HEADSQ.exists():
            for name, (degrees, mm) in headsq(args.turns, Path(tmp), seconds).items():
                rows.append((f"headsq {name} vs full CT: deg / mm", f"{degrees:.2f} / {mm:.2f}"))
                figures[f"headsq {name}"] = [round(degrees, 3), round(mm, 3)]
    rows.append(("fit seconds: median / max", f"{np.median(seconds):.1f} / {np.max(seconds):.1f}"))
    rows.append(("load average (1 min)", f"{os.getloadavg()[0]:.1f}"))
    figures["fit_seconds"] = np.round(seconds, 2).tolist()
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
