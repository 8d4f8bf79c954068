"""Benchmark of GAN training throughput: samples per second and peak memory at 256^2, batch 1 and 8.

Each configuration runs in its own child process (so its peak memory is its own): the trainer's GAN step
(`ConditionalGAN.training_step`: one discriminator and one generator update) on depth-map-sized tensors,
after warm-up steps. CPU always; CUDA too when a GPU is present (bf16 autocast, as the trainer does there).
Peak memory: the child's max RSS on CPU, `torch.cuda.max_memory_allocated` on a GPU.

    .venv/bin/python bench/train.py [--size 256] [--batches 1 8] [--steps 5] [--config default|cpu]

`default` is the GAN's default architecture; `cpu` the smaller one of configs/gan2d-cpu-128.toml.
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

ARCHITECTURES = {
    "default": {},
    "cpu": {"channels": (16, 32, 64, 128, 256), "discriminator_channels": 32},
}


def measure(device: str, size: int, batch: int, steps: int, architecture: str) -> dict[str, float]:
    """Run in a child: time `steps` GAN steps after 2 warm-up steps; peak memory in MiB."""
    import torch

    from facegen.models.gan.cgan import ConditionalGAN

    torch.manual_seed(0)
    model = ConditionalGAN(**ARCHITECTURES[architecture], relative_to_bone=False)  # hand-built batches in mm
    dev = torch.device(device)
    nets = {k: v.to(dev) for k, v in model.networks().items()}
    optimizers = model.optimizers(2e-4, (0.5, 0.999))
    batch_tensors = {
        "inputs": torch.rand(batch, 2, size, size, device=dev),
        "face": torch.rand(batch, 1, size, size, device=dev),
        "face_mask": torch.ones(batch, 1, size, size, dtype=torch.bool, device=dev),
        "conditions": torch.randn(batch, 3, device=dev),
    }

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        model.training_step(nets, optimizers, batch_tensors, autocast)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        model.training_step(nets, optimizers, batch_tensors, autocast)
    sync()
    seconds = (time.perf_counter() - start) / steps
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"seconds_per_step": seconds, "samples_per_second": batch / seconds, "peak_mib": peak,
            "threads": torch.get_num_threads()}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--config", choices=sorted(ARCHITECTURES), default="default")
    p.add_argument("--child", nargs=2, metavar=("DEVICE", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        figures = measure(args.child[0], args.size, int(args.child[1]), args.steps, args.config)
        print("CHILD_JSON " + json.dumps(figures))
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if not torch.cuda.is_available():
        print("no GPU here: CPU figures only (run this on a GPU machine for the CUDA rows)")
    rows, figures = [], {"size": args.size, "config": args.config}
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        for batch in args.batches:
            command = [sys.executable, str(Path(__file__)), "--size", str(args.size), "--steps", str(args.steps),
                       "--config", args.config, "--child", device, str(batch)]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.split("CHILD_JSON ", 1)[1])
            key = f"{device} {args.size}^2 batch {batch}"
            figures[key] = result | {"device": name}
            print(f"{key}: {result['samples_per_second']:.2f} samples/s, {result['seconds_per_step']:.3f} s/step, "
                  f"peak {result['peak_mib']:.0f} MiB ({name}, {result['threads']} threads)")  # fmt: skip
            rows.append((f"{key}: samples/s", f"{result['samples_per_second']:.2f}"))
            rows.append((f"{key}: peak memory", f"{result['peak_mib']:.0f} MiB"))
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
