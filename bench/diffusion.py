"""Benchmark of the diffusion model: seconds per face on CPU, and the calibration of its uncertainty.

1. Sampling speed: one face (one sample, and K samples at once) at the model's depth-map size with its
   DDIM step count, on the process's CPU threads, against the 2 s per face target at 128^2.
2. With --data: K samples for every subject of the test split; Spearman correlation of the per-pixel SD
   with the absolute error of the mean, and the share of true depths inside the 95% band (target 85-98%).

    .venv/bin/python bench/diffusion.py [--run RUN] [--data DIR] [--samples 8] [--threads 2]

Without --run, an untrained model of the default architecture at 128^2 is timed (the cost of sampling does
not depend on the weights).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from report import print_summary

from facegen.data.subject import Subject
from facegen.evaluation.calibration import calibration
from facegen.models.base import DepthData
from facegen.models.diffusion.conditional import ConditionalDiffusion
from facegen.models.registry import load_trained

TARGET_SECONDS = 2.0


def untrained(size: int) -> ConditionalDiffusion:
    """The default architecture with a flat prior at size x size (sampling cost only)."""
    model = ConditionalDiffusion(relative_to_bone=False)  # a hand-set prior: depths in mm, no envelope
    model.claimed = np.ones((size, size), bool)
    model.tissue_mm = np.full((size, size), 6.0, np.float32)
    model.mean_face_mm = np.zeros((size, size), np.float32)
    return model


def time_faces(model: ConditionalDiffusion, n_samples: int, repeats: int = 3) -> float:
    """Median seconds for one skull's n_samples faces."""
    shape = model.claimed.shape
    rng = np.random.default_rng(0)
    skull = rng.uniform(40, 90, shape).astype(np.float32)
    mask = np.ones(shape, bool)
    subject = Subject("bench", None, None, None)
    model.reconstruct(skull, mask, subject, n_samples=n_samples)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.reconstruct(skull, mask, subject, n_samples=n_samples)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="a trained diffusion2d run (default: untrained, default architecture)")
    p.add_argument("--data", type=Path, help="dataset whose test split is used for the calibration check")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_trained(args.run) if args.run else untrained(128)
    if not isinstance(model, ConditionalDiffusion):
        raise SystemExit(f"{args.run} is a {model.family} run, not diffusion2d")
    size, steps = model.claimed.shape, model.options["sampling_steps"]
    one, many = time_faces(model, 1), time_faces(model, args.samples)
    rows = [
        ("model", f"{'trained ' + str(args.run) if args.run else 'untrained default'}, {steps} DDIM steps"),
        (f"one face (1 sample), {size[0]}x{size[1]}, {args.threads} threads",
         f"{one:.2f} s ({one / TARGET_SECONDS:.2f}x the {TARGET_SECONDS:.0f} s target)"),
        (f"one face from {args.samples} samples (mean + SD map)",
         f"{many:.2f} s ({many / args.samples:.2f} s per sample)"),
    ]  # fmt: skip
    figures = {"seconds_one_sample": one, f"seconds_{args.samples}_samples": many, "sampling_steps": steps}
    if args.data is not None:
        data = DepthData.load(args.data, "test")
        start = time.perf_counter()
        recs = model.reconstruct_many(data, n_samples=args.samples)
        seconds = time.perf_counter() - start
        samples = np.stack([r.face_depth_mm for r in recs])
        mask = np.stack([r.mask for r in recs]) & data.face_region
        c = calibration(samples, data.face_depth, mask)
        rows += [
            (f"test split: {len(data)} subjects x {args.samples} samples", f"{seconds:.0f} s"),
            ("MAE of the mean face", f"{c['mae_mm']:.2f} mm"),
            ("Spearman(SD, |error|) over face pixels", f"{c['spearman_sd_error']:.2f} (target > 0.3)"),
            ("true depths inside the 95% band", f"{c['coverage']:.1%} (target 85-98%)"),
            ("mean SD", f"{c['mean_sd_mm']:.2f} mm (MAE it implies: {c['expected_mae_mm']:.2f} mm)"),
        ]
        figures["calibration"] = c
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
