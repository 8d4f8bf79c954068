"""Benchmark of the 3D GAN's training step: seconds per step and peak memory from 64^3 to the seeds' 512 x 512 x 102.

Each grid size runs in its own child process (so its peak memory is its own): full GAN steps of the default
`gan3d` architecture (`ConditionalGAN3D.training_step`: one discriminator and one generator update, batch 1)
on random skull and face occupancy, after one warm-up step. The generator zero-pads each side to a multiple
of the U-Net's size multiple and crops back, as in training: 51 runs as 56 and 102 as 104 (4 levels, multiple 8).
The seeds' size is measured twice: on the whole grid, and with the patch scheme users train it with
(`training_patch = [256, 256, 102]`: random crops in training, sliding windows at inference).
On CUDA: bf16 autocast (as the trainer does there), activation checkpointing, `torch.cuda.max_memory_allocated`.
On CPU: fp32 (as the trainer does there), activation checkpointing, the child's peak RSS (includes PyTorch
itself; the rise during the steps is shown too). 512 x 512 x 102 runs only on a GPU (on CPU one step would take
many minutes; the CPU rows give an fp32 extrapolation instead); 256 x 256 x 51 is skipped on CPU when the last
measured size says one step would take over MAX_CPU_STEP_S.

    .venv/bin/python bench/memory3d.py [--steps N] [--threads N] [--sizes 64x64x64 128x128x128 256x256x51 512x512x102]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from report import print_summary

SIZES = ("64x64x64", "128x128x128", "256x256x51", "512x512x102")
GPU_ONLY = "512x512x102"
SEED_PATCH = (256, 256, 102)
"""The training patch of the seeds' size: a quarter of the grid per step."""
TARGET_BYTES = 20e9
"""Issue 8: batch 1 at 512 x 512 x 102 in at most half the seeds' 40 GB."""
MAX_CPU_STEP_S = 180.0
"""A size whose CPU step would take longer than this (scaled from the last measured size) is skipped on CPU."""


def parse_shape(text: str) -> tuple[int, int, int]:
    """'256x256x51' -> (256, 256, 51)."""
    shape = tuple(int(v) for v in text.lower().split("x"))
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"grid size {text!r} must be NXxNYxNZ")
    return shape  # type: ignore[return-value]


def measure(device: str, shape: tuple[int, int, int], steps: int, patch: tuple[int, int, int] | None) -> dict:
    """Run in a child: `steps` GAN steps after 1 warm-up step; peak memory in MiB."""
    import torch

    from facegen.models.gan.gan3d import ConditionalGAN3D

    torch.manual_seed(0)
    dev = torch.device(device)
    model = ConditionalGAN3D(training_patch=patch)  # the default architecture (activation checkpointing on)
    field = patch or shape  # what one step sees: the whole grid, or one training patch of it
    nets = {k: v.to(dev) for k, v in model.networks().items()}
    optimizers = model.optimizers(2e-4, (0.5, 0.999))
    skull, template = (torch.rand(1, 1, *field) < 0.02).float(), torch.full((1, 1, *field), 0.2)
    batch = {
        "inputs": torch.cat([skull, template], dim=1).to(dev),
        "face": (torch.rand(1, 1, *field) < 0.2).float().to(dev),
        "conditions": torch.randn(1, 3).to(dev),
    }

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def rss_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    before = rss_mib()
    padded = list(model.generator.padded_shape(field))
    try:
        start = time.perf_counter()
        model.training_step(nets, optimizers, batch, autocast)
        sync()
        warmup = time.perf_counter() - start
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(steps):
            model.training_step(nets, optimizers, batch, autocast)
        sync()
    except torch.OutOfMemoryError as exc:
        return {"error": f"out of memory: {str(exc).splitlines()[0]}", "padded": padded}
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else rss_mib()
    return {"seconds_per_step": seconds, "warmup_seconds": warmup, "peak_mib": peak,
            "rise_mib": peak - before if dev.type == "cpu" else peak, "threads": torch.get_num_threads(),
            "padded": padded}  # fmt: skip


def _voxels(shape: tuple[int, ...]) -> int:
    return shape[0] * shape[1] * shape[2]


def _extrapolate(measured: list[tuple[int, dict]], voxels: int) -> tuple[float, float]:
    """(seconds per step, MiB of memory rise) at `voxels`, scaled from the CPU sizes measured so far.

    Time grows in proportion to the voxels; memory along the line through the last two sizes (the first size's
    rise holds fixed costs), in proportion when only one size was measured.
    """
    (v1, r1) = measured[-1]
    seconds = r1["seconds_per_step"] * voxels / v1
    if len(measured) < 2:
        return seconds, r1["rise_mib"] * voxels / v1
    (v0, r0) = measured[-2]
    slope = (r1["rise_mib"] - r0["rise_mib"]) / (v1 - v0)
    return seconds, r1["rise_mib"] + slope * (voxels - v1)


def _run_child(device: str, size: str, patch: tuple[int, int, int] | None, steps: int, threads: int) -> dict:
    command = [sys.executable, str(Path(__file__)), "--steps", str(steps), "--threads", str(threads),
               "--child", device, size]  # fmt: skip
    if patch is not None:
        command += ["--patch", "x".join(map(str, patch))]
    out = subprocess.run(command, capture_output=True, text=True)
    if "CHILD_JSON " not in out.stdout:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(out.stdout.split("CHILD_JSON ", 1)[1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="timed steps per size after one warm-up (CPU 1, GPU 3)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per child (0: PyTorch's default)")
    p.add_argument("--sizes", nargs="+", default=list(SIZES))
    p.add_argument("--child", nargs=2, metavar=("DEVICE", "SIZE"), help=argparse.SUPPRESS)
    p.add_argument("--patch", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        patch = parse_shape(args.patch) if args.patch else None
        figures = measure(args.child[0], parse_shape(args.child[1]), args.steps or 1, patch)
        print("CHILD_JSON " + json.dumps(figures))
        return

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = args.steps or (3 if device == "cuda" else 1)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    precision = "bf16 autocast" if device == "cuda" else "fp32"
    print(f"gan3d default architecture, batch 1, activation checkpointing, {precision} on {name}, "
          f"{steps} timed step(s) after 1 warm-up")  # fmt: skip
    rows, figures = [], {"device": name, "precision": precision, "target_bytes": TARGET_BYTES}
    measured: list[tuple[int, dict]] = []
    for size in args.sizes:
        shape = parse_shape(size)
        runs = [(size, None)] + ([(f"{size} patch {'x'.join(map(str, SEED_PATCH))}", SEED_PATCH)]
                                 if size == GPU_ONLY else [])  # fmt: skip
        for label, patch in runs:
            field = patch or shape
            if device == "cpu" and (size == GPU_ONLY or measured):
                seconds, rise = _extrapolate(measured, _voxels(field)) if measured else (float("nan"), float("nan"))
                if size == GPU_ONLY or seconds > MAX_CPU_STEP_S:
                    why = "skipped on CPU: " + ("the seeds' size is measured on a GPU (bf16)" if size == GPU_ONLY
                                                else f"one step would take over {MAX_CPU_STEP_S:.0f} s")  # fmt: skip
                    if measured:
                        why += (
                            f"; scaled from the sizes measured here: about {seconds:.0f} s per step and "
                            f"{rise / 1024:.1f} GiB of fp32 memory rise (a CPU extrapolation, not a GPU figure)"
                        )
                    print(f"{label}: {why}")
                    figures[label] = {"skipped": why}
                    continue
            result = _run_child(device, size, patch, steps, args.threads)
            figures[label] = result
            if "error" in result:
                print(f"{label}: {result['error']}")
                rows.append((f"{device} {label}", "failed"))
                continue
            measured.append((_voxels(field), result))
            ratio = result["peak_mib"] * 2**20 / TARGET_BYTES
            padded = "x".join(str(s) for s in result["padded"])
            line = (
                f"{label} (one step sees {padded}): {result['seconds_per_step']:.2f} s/step (warm-up "
                f"{result['warmup_seconds']:.1f} s), peak {result['peak_mib']:.0f} MiB ({ratio:.3f} of the 20 GB "
                "target)"
            )
            if device == "cpu":
                line += f", rise during the steps {result['rise_mib']:.0f} MiB, {result['threads']} threads"
            print(line)
            rows.append((f"{device} {label}: s/step", f"{result['seconds_per_step']:.2f}"))
            rows.append((f"{device} {label}: peak memory", f"{result['peak_mib']:.0f} MiB"))
            rows.append((f"{device} {label}: share of 20 GB", f"{ratio:.3f}"))
    if device == "cpu":
        print("no GPU here: CPU figures only (fp32, peak RSS); run it on a GPU for the bf16 figures and 512x512x102")
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
