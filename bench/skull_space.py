"""Benchmark of how wide the synthetic skull space is: where the real headsq skull falls among training skulls.

What it measures (figures only; it asserts nothing):

1. For each skull variation (`standard`, `wide`): N synthetic heads drawn as `facegen synth --seed S` draws them
   (subject i from the dataset seed's child stream i), their skull depth maps in the default model's frontal view
   (128 x 128, 2 mm pixels: `represent`, the path a dataset is written by), and the skull space a trained model
   saves (`fit_skull_space`: probabilistic PCA, K-fold reference distances, median 1), fitted on all N.
2. The shared real CT (../shared/data/headsq-ct) ingested as a case ingests it (`ingest_input` with
   `full_face=False`, `head_representations`): its skull's distance and percentile in each space, beside the
   training skulls' 95th percentile and maximum. The real CT is in neither space (a fair test).
3. A diagnostic, not the case's number: the real skull's distance with the pixels where no training skull has bone
   left out (bone the generator never makes there, such as vertebrae below the column's end).
4. The generated skulls' craniometric measurements (mean and SD per sex) beside the published figures.
5. A figure (default docs/skull-space.png): histograms of the training skulls' distances, the real skull marked.

Run from the repository root (about 0.7 s per head and core):

    .venv/bin/python bench/skull_space.py [--n N] [--seed S] [--workers W] [--out PNG]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from report import print_summary

ROOT = Path(__file__).resolve().parents[1]
HEADSQ = ROOT.parent / "shared" / "data" / "headsq-ct" / "quarter.nhdr"
VARIATIONS = ("standard", "wide")
VIEW_SIZE = 128
"""The default model's depth maps: 128 x 128 over 256 mm (2 mm pixels)."""

_GENERATOR = None
_SITES = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="heads per skull variation (default 200)")
    p.add_argument("--seed", type=int, default=2026, help="dataset seed (default 2026, the default model's)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "skull-space.png", help="figure to write")
    return p.parse_args(argv)


def _init(variation: str) -> None:
    global _GENERATOR, _SITES
    from facegen.data.synthetic.craniometry import MeasureSites
    from facegen.data.synthetic.generator import HeadGenerator

    _GENERATOR = HeadGenerator(skull_variation=variation)
    _SITES = MeasureSites.of(_GENERATOR.template, _GENERATOR.skull_lm0)


def _head(job: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    """Skull depth map, mask, sex and craniometric measurements of head `index` of the dataset seed."""
    from facegen.data.dataset.writer import subject_rng
    from facegen.data.representations.build import represent, square_spec
    from facegen.data.synthetic.craniometry import CODES, measure_skull
    from facegen.data.synthetic.population import sample_subject

    seed, index = job
    rng = subject_rng(seed, index)
    subject = sample_subject(rng, f"S{index:05d}")
    head = _GENERATOR.generate(subject, rng)
    rep = represent(head.skull, head.face, spec=square_spec(VIEW_SIZE, (8, 8, 8)), grids=False,
                    skull_landmarks=head.skull_landmarks)
    if _GENERATOR.wide is not None:
        measured = measure_skull(head.skull_landmarks)
        values = np.array([measured[c] for c in CODES])
    else:  # the template's topology: its craniometric points follow the vertices
        values = _SITES.measure(_GENERATOR.template, head.skull.vertices)
    return rep.skull_depth.depth_mm, rep.skull_depth.mask, subject.sex.value, values


def generate(variation: str, n: int, seed: int, workers: int) -> dict[str, Any]:
    """Depth maps, masks, sexes and measurements of n heads of one skull variation, and the seconds taken."""
    t0 = time.perf_counter()
    jobs = [(seed, i) for i in range(n)]
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(variation,)) as pool:
            heads = list(pool.map(_head, jobs, chunksize=4))
    else:
        _init(variation)
        heads = [_head(j) for j in jobs]
    depth, mask, sex, values = zip(*heads, strict=True)
    return {"depth": np.stack(depth), "mask": np.stack(mask), "sex": np.array(sex), "values": np.stack(values),
            "seconds": time.perf_counter() - t0}  # fmt: skip


def real_skull() -> tuple[np.ndarray, np.ndarray]:
    """The shared CT's skull depth map and mask, ingested as a case ingests it."""
    from facegen.data.representations.build import RepresentationSpec, square_spec
    from facegen.data.representations.voxel_grid import GridSpec
    from facegen.data.scans.ingest import IngestOptions, head_representations, ingest_input

    spec = RepresentationSpec(square_spec(VIEW_SIZE, (8, 8, 8)).view, GridSpec(shape=(8, 8, 8)))
    head = ingest_input(HEADSQ, IngestOptions(spec=spec, full_face=False))
    skull = head_representations(head, spec).skull_depth
    return skull.depth_mm, skull.mask


def place(heads: dict[str, Any], real: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, Any]:
    """The skull space of the heads and where the real skull falls in it."""
    from facegen.training.skull_space import fit_skull_space

    space = fit_skull_space(heads["depth"], heads["mask"], seed=seed)
    distance = space.distance(*real)
    seen = real[1] & (space.bone_share > 0)
    return {
        "space": space,
        "distance": distance,
        "percentile": space.percentile(distance),
        "p95": float(np.percentile(space.reference, 95)),
        "max": float(space.reference.max()),
        "distance_where_training_has_bone": space.distance(real[0], seen),
        "real_bone_pixels_without_training_bone": int((real[1] & ~seen).sum()),
    }


def measurement_rows(heads: dict[str, Any], variation: str) -> list[tuple[str, str]]:
    """Mean and SD of each measurement per sex beside the published figures."""
    from facegen.data.synthetic.craniometry import CODES
    from facegen.data.synthetic.craniometry_table import CRANIOMETRY_BY_CODE

    rows = []
    for k, code in enumerate(CODES):
        cells = []
        for sex in ("M", "F"):
            v = heads["values"][heads["sex"] == sex, k]
            mean, sd = CRANIOMETRY_BY_CODE[code].mean_sd(sex)
            cells.append(f"{sex} {v.mean():6.1f} +- {v.std():4.1f} (published {mean:.1f} +- {sd:.1f})")
        rows.append((f"{variation} {code}", "   ".join(cells)))
    return rows


def figure(results: dict[str, dict[str, Any]], n: int, out: Path) -> None:
    """Histograms of the training skulls' distances per variation, with the real skull and the 95th percentile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(max(r["max"], r["distance"]) for r in results.values()) * 1.1
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), sharey=True)
    for ax, (variation, r) in zip(np.atleast_1d(axes), results.items(), strict=True):
        ax.hist(r["space"].reference, bins=np.linspace(0, top, 40), color="0.6", label=f"{n} training skulls")
        ax.axvline(r["p95"], color="k", ls="--", label=f"95th percentile {r['p95']:.2f}")
        ax.axvline(r["distance"], color="crimson", lw=2,
                   label=f"real headsq skull {r['distance']:.2f} ({r['percentile']:.0f}th pct)")  # fmt: skip
        ax.set_title(f'skull variation "{variation}"')
        ax.set_xlabel("distance from the training skulls (1 = a typical training skull)")
        ax.legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("training skulls")
    fig.suptitle("Skull space of synthetic training skulls (frontal depth maps, 2 mm) and the real CT's skull")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Generate, fit, place the real skull, print and draw."""
    args = parse_args(argv)
    if not HEADSQ.is_file():
        sys.exit(f"the shared real CT is missing: {HEADSQ}")
    t0 = time.perf_counter()
    real = real_skull()
    real_seconds = time.perf_counter() - t0
    results, rows, figures = {}, [], {"n": args.n, "seed": args.seed, "real_ingest_s": round(real_seconds, 1)}
    for variation in VARIATIONS:
        heads = generate(variation, args.n, args.seed, args.workers)
        r = place(heads, real, args.seed)
        results[variation] = r
        rows += [
            (f"{variation}: real skull distance", f"{r['distance']:.3f}"),
            (f"{variation}: real skull percentile", f"{r['percentile']:.1f}"),
            (f"{variation}: training 95th percentile", f"{r['p95']:.3f}"),
            (f"{variation}: training maximum", f"{r['max']:.3f}"),
            (f"{variation}: real, only where training has bone", f"{r['distance_where_training_has_bone']:.3f}"),
            (f"{variation}: real bone pixels no training skull has", str(r["real_bone_pixels_without_training_bone"])),
            (f"{variation}: seconds per head (x{args.workers} workers)", f"{heads['seconds'] / args.n:.2f}"),
        ]
        rows += measurement_rows(heads, variation)
        figures[variation] = {k: round(float(v), 4) for k, v in r.items() if k != "space"}
    figure(results, args.n, args.out)
    rows.append(("figure", str(args.out)))
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
