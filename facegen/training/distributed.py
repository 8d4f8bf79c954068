"""Where a process trains: its device and, under `torchrun`, its place in a DDP process group.

PyTorch's own engine does the work: `torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK (and the rendezvous),
we join the group (NCCL on GPUs, gloo on CPUs) and wrap networks in DistributedDataParallel.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Runtime:
    """This process: rank, world size, device and precision."""

    rank: int
    world_size: int
    device: torch.device
    precision: str

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast for the forward passes when the run uses bf16; nothing otherwise."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def wrap(self, net: nn.Module) -> nn.Module:
        """The network as DDP when several processes train, else itself."""
        if not self.distributed:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """'auto': this process's GPU when CUDA is there, else the CPU; or an explicit 'cpu' / 'cuda' / 'cuda:N'."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was asked for but CUDA is not available")
        return torch.device("cuda", local_rank) if choice == "cuda" else torch.device(choice)
    if choice != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {choice!r}")
    return torch.device("cpu")


def resolve_precision(choice: str, device: torch.device) -> str:
    """'auto' is bf16 on a GPU that has it and fp32 elsewhere (CPU bf16 is slower than fp32 here)."""
    if choice != "auto":
        return choice
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def start_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """Join the torchrun process group when there is one; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank, world_size, dev, resolve_precision(precision, dev))


def stop_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


