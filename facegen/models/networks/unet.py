"""A U-Net whose every block is modulated by the subject's metadata (FiLM), for 2D maps and 3D grids alike.

The spatial code is written once: `spatial_dims` picks 2D or 3D layers from MONAI's layer factories, so
the 3D GAN is a configuration of the same network. Metadata (sex, age, BMI) enters through feature-wise
affine modulation (Perez et al. 2018) after each normalisation, the way a covariate should shift tissue
everywhere rather than at one input pixel. GroupNorm keeps batches of one (3D) and DDP exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn
from torch.utils.checkpoint import checkpoint

CONDITION_WIDTH = 64


class FiLM(nn.Module):
    """x * (1 + gamma(c)) + beta(c), starting as the identity (zero-initialised projection)."""

    def __init__(self, condition_width: int, channels: int) -> None:
        super().__init__()
        self.project = nn.Linear(condition_width, 2 * channels)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.project(condition).chunk(2, dim=1)
        shape = (*gamma.shape, *([1] * (x.dim() - 2)))
        return x * (1 + gamma.view(shape)) + beta.view(shape)


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ConditionedBlock(nn.Module):
    """Two (conv 3, GroupNorm, FiLM, SiLU) layers."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, condition_width: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.convs = nn.ModuleList(
            [conv(in_channels, out_channels, 3, padding=1), conv(out_channels, out_channels, 3, padding=1)]
        )
        self.norms = nn.ModuleList([nn.GroupNorm(_groups(out_channels), out_channels) for _ in range(2)])
        self.films = nn.ModuleList([FiLM(condition_width, out_channels) for _ in range(2)])

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        for conv, norm, film in zip(self.convs, self.norms, self.films, strict=True):
            x = nn.functional.silu(film(norm(conv(x)), condition))
        return x


class ConditionalUNet(nn.Module):
    """U-Net (strided-conv down, transposed-conv up, skip concatenation) with FiLM conditioning."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (32, 64, 128, 256),
        n_conditions: int = 3,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(channels) < 2:
            raise ValueError("a U-Net needs at least two levels of channels")
        self.spatial_dims, self.levels = spatial_dims, len(channels)
        self.activation_checkpointing = activation_checkpointing
        conv, up = Conv[Conv.CONV, spatial_dims], Conv[Conv.CONVTRANS, spatial_dims]
        self.condition = nn.Sequential(
            nn.Linear(n_conditions, CONDITION_WIDTH), nn.SiLU(), nn.Linear(CONDITION_WIDTH, CONDITION_WIDTH)
        )
        self.stem = ConditionedBlock(spatial_dims, in_channels, channels[0], CONDITION_WIDTH)
        self.down = nn.ModuleList(conv(c, c, 2, stride=2) for c in channels[:-1])
        self.encoder = nn.ModuleList(
            ConditionedBlock(spatial_dims, a, b, CONDITION_WIDTH) for a, b in itertools.pairwise(channels)
        )
        self.up = nn.ModuleList(up(b, a, 2, stride=2) for a, b in itertools.pairwise(channels))
        self.decoder = nn.ModuleList(ConditionedBlock(spatial_dims, 2 * c, c, CONDITION_WIDTH) for c in channels[:-1])
        self.head = conv(channels[0], out_channels, 1)

    @property
    def size_multiple(self) -> int:
        """Every spatial size must be a multiple of this."""
        return 2 ** (self.levels - 1)

    def _block(self, block: ConditionedBlock, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if self.activation_checkpointing and self.training:
            return checkpoint(block, x, condition, use_reentrant=False)
        return block(x, condition)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """x: (B, C, *spatial); conditions: (B, n_conditions)."""
        bad = [s for s in x.shape[2:] if s % self.size_multiple]
        if bad:
            raise ValueError(f"input size {tuple(x.shape[2:])} is not a multiple of {self.size_multiple}")
        condition = self.condition(conditions.to(x.dtype))
        skips = [self._block(self.stem, x, condition)]
        for down, block in zip(self.down, self.encoder, strict=True):
            skips.append(self._block(block, down(skips[-1]), condition))
        y = skips.pop()
        for level in reversed(range(self.levels - 1)):
            y = self._block(self.decoder[level], torch.cat([self.up[level](y), skips[level]], dim=1), condition)
        return self.head(y)
