"""Benchmark and demo of the complete head: the ICT head fitted to faces, coloured, its files and pictures written.

What it measures (figures only; it asserts nothing):

1. Known identity: faces made from the ICT model itself (w ~ N(0, 1), seeds 100+), seen as a frontal depth map
   at the default model's 128 x 128 pixels of 2 mm and meshed by `depth_map_mesh`, as a case meshes its face.
   Over the fitted face region: mean and 95th percentile distance to the true skin surface and to the true head's
   own vertices (correspondence), and the fit's own residual to the face it was given.
2. Synthetic heads (facegen's generator: ICT identity plus tissue, dimorphism and soft features the modes do
   not span, seeds 3+), their true face seen the same way: the fit residual, the distance to the true face, the
   identity weights' RMS, the smooth residual field's size and the seconds of one fit.
3. Files: `head_files` for each synthetic head with a made-up appearance (four variants: eye blue 0.62 /
   brown 0.28, hair brown 0.60 / black 0.25, shade dark 0.85; and for the second head a known skin class), written
   under OUT/head-<seed>/head/, PNGs included, to be looked at.

    .venv/bin/python bench/complete_head.py OUT [--heads N] [--known N] [--size 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegen.data.representations.build import square_spec  # noqa: E402
from facegen.data.representations.depth_map import render_depth_map  # noqa: E402
from facegen.data.synthetic.generator import HeadGenerator  # noqa: E402
from facegen.data.synthetic.ict import load_face_model  # noqa: E402
from facegen.data.synthetic.population import sample_subject  # noqa: E402
from facegen.use.face_mesh import depth_map_mesh  # noqa: E402
from facegen.use.head import Appearance, fit_head, head_files  # noqa: E402
from facegen.use.head.model import load_head_model  # noqa: E402

LOOKS = (
    Appearance(
        eye={"blue": 0.62, "intermediate": 0.10, "brown": 0.28},
        hair_colour={"blond": 0.10, "brown": 0.60, "red": 0.05, "black": 0.25},
        hair_shade={"light": 0.15, "dark": 0.85},
        source="made up for the demo",
    ),
    Appearance(
        eye={"blue": 0.05, "intermediate": 0.15, "brown": 0.80},
        hair_colour={"blond": 0.02, "brown": 0.30, "red": 0.01, "black": 0.67},
        hair_shade={"light": 0.05, "dark": 0.95},
        skin={"very_pale": 0.02, "pale": 0.13, "intermediate": 0.70, "dark": 0.12, "dark_to_black": 0.03},
        source="made up for the demo",
    ),
)


def _seen(mesh: trimesh.Trimesh, size: int) -> trimesh.Trimesh:
    """The face a case would mesh: a frontal depth map of the mesh, meshed."""
    view = square_spec(size, (8, 8, 8)).view
    depth = render_depth_map(mesh, view)
    return depth_map_mesh(depth.depth_mm, depth.mask, view, max_edge_jump_mm=8 * view.pixel_mm)


def _stats(values: np.ndarray) -> str:
    return f"{values.mean():.3f} / {np.percentile(values, 95):.3f}"


def known_identity(n: int, size: int) -> None:
    """Fit faces of known ICT identity and print how close the head comes to the truth."""
    model, closed = load_head_model(), load_face_model()
    print("known identity (ICT faces): mean / p95 mm over the face region")
    print("seed  to true surface  to true vertices  fit residual  seconds")
    for seed in range(100, 100 + n):
        w = np.random.default_rng(seed).standard_normal(model.n_modes)
        skin = trimesh.Trimesh(model.to_canonical.apply(closed.mean + np.tensordot(w, closed.modes, axes=1)),
                               closed.triangles, process=False)  # fmt: skip
        start = time.perf_counter()
        fit = fit_head(_seen(skin, size), model=model)
        seconds = time.perf_counter() - start
        region = fit.fit_region
        fitted = np.asarray(fit.mesh.vertices)[region]
        _, surface, _ = trimesh.proximity.closest_point(skin, fitted)
        vertex = np.linalg.norm(fitted - model.shape(w)[region], axis=1)
        residual = f"{fit.residual_mean_mm:.3f} / {fit.residual_p95_mm:.3f}"
        print(f"{seed:4d}  {_stats(surface):>15}  {_stats(vertex):>16}  {residual:>12}  {seconds:7.1f}")


def synthetic_heads(n: int, size: int, out: Path) -> None:
    """Fit synthetic heads' faces, write every head's files and print the figures."""
    generator = HeadGenerator()
    print("\nsynthetic heads: mean / p95 mm over the face region")
    print("seed  fit residual  to true face  RMS w  field mean/max  fit s  files s")
    for i, seed in enumerate(range(3, 3 + n)):
        rng = np.random.default_rng(seed)
        head = generator.generate(sample_subject(rng, f"S{seed}"), rng)
        face = _seen(head.face, size)
        sd = 0.6 + np.abs(face.vertices[:, 0]) / 60.0  # a made-up spread, larger toward the sides
        start = time.perf_counter()
        fit = fit_head(face, face_sd_mm=sd)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        files = head_files(face, face_sd_mm=sd, appearance=LOOKS[i % len(LOOKS)], fit=fit)
        files_s = time.perf_counter() - start
        for name, data in files.items():
            path = out / f"head-{seed}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _, true, _ = trimesh.proximity.closest_point(head.face, np.asarray(fit.mesh.vertices)[fit.fit_region])
        record = fit.record()
        field = f"{record['residual_field_mean_mm']:.2f}/{record['residual_field_max_mm']:.2f}"
        rms = float(np.sqrt(np.mean(fit.identity**2)))
        residual = f"{fit.residual_mean_mm:.3f} / {fit.residual_p95_mm:.3f}"
        print(f"{seed:4d}  {residual:>12}  {_stats(true):>12}  {rms:5.2f}  {field:>14}  {fit_s:5.1f}  {files_s:7.1f}")
    print(f"\nfiles written under {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the heads' files and pictures")
    parser.add_argument("--heads", type=int, default=3, help="synthetic heads")
    parser.add_argument("--known", type=int, default=3, help="faces of known ICT identity")
    parser.add_argument("--size", type=int, default=128, help="depth-map pixels per side over 256 mm")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    known_identity(args.known, args.size)
    synthetic_heads(args.heads, args.size, args.out)


if __name__ == "__main__":
    main()
