"""pix2pix-style conditional GAN on depth maps: a FiLM U-Net generator and a PatchGAN discriminator.

Input: the skull depth map in mm (scaled by DEPTH_SCALE_MM, 0 where no bone is seen) and its mask; the
generator adds soft tissue to the skull (residual output) and reads sex, age and BMI through FiLM. Loss:
L1 on face depth over the true face mask plus the least-squares PatchGAN loss (Isola et al. 2017), on
single-channel depth in mm, not 8-bit images. Network code is shared with the 3D family (`spatial_dims`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from torch import nn

from facegen.data.representations.depth_map import DepthView
from facegen.data.subject import Subject
from facegen.io.atomic import write_bytes_atomic, write_json_atomic
from facegen.models.base import (
    DepthData,
    Reconstruction,
    TensorBatches,
    TrainableModel,
    claimed_pixels,
    drop_metadata,
    metadata_features,
)
from facegen.models.networks.unet import ConditionalUNet
from facegen.models.registry import register

DEPTH_SCALE_MM = 100.0
"""Depths enter and leave the networks divided by this (faces lie within about +-150 mm of the porions)."""


def network_inputs(skull_depth: np.ndarray, skull_mask: np.ndarray) -> np.ndarray:
    """(N, 2, H, W) float32: seen skull depth / DEPTH_SCALE_MM (0 where no bone) and the bone mask."""
    return np.stack([skull_depth * skull_mask / DEPTH_SCALE_MM, skull_mask], axis=1).astype(np.float32)


def depth_batches(data: DepthData) -> TensorBatches:
    """Training tensors of a DepthData set: skull inputs, face depth (scaled), face mask, metadata."""
    return TensorBatches({
        "inputs": torch.from_numpy(network_inputs(data.skull_depth, data.skull_mask)),
        "face": torch.from_numpy((data.face_depth / DEPTH_SCALE_MM).astype(np.float32))[:, None],
        "face_mask": torch.from_numpy(data.face_mask)[:, None],
        "conditions": torch.from_numpy(data.metadata),
    })  # fmt: skip


def masked_l1(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over each sample's mask, then over the batch (so DDP shards average exactly)."""
    dims = tuple(range(1, pred.dim()))
    per_sample = ((pred - truth).abs() * mask).sum(dims) / mask.sum(dims).clamp(min=1)
    return per_sample.mean()


@register
class ConditionalGAN(TrainableModel):
    """Skull depth map + sex/age/BMI -> face depth map; U-Net with FiLM + PatchGAN, L1 + LSGAN loss."""

    family = "gan2d"
    description = "2.5D conditional GAN (pix2pix): FiLM U-Net generator + PatchGAN, L1 + adversarial loss"
    stochastic = False
    spatial_dims: ClassVar[int] = 2

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        discriminator_channels: int = 64,
        discriminator_layers: int = 3,
        lambda_l1: float = 100.0,
        lambda_adversarial: float = 1.0,
        condition_dropout: float = 0.1,
        activation_checkpointing: bool = False,
    ) -> None:
        if lambda_l1 < 0 or lambda_adversarial < 0 or not 0 <= condition_dropout < 1:
            raise ValueError("loss weights must be non-negative and condition_dropout in [0, 1)")
        self.options = {
            "channels": [int(c) for c in channels],
            "discriminator_channels": int(discriminator_channels),
            "discriminator_layers": int(discriminator_layers),
            "lambda_l1": float(lambda_l1),
            "lambda_adversarial": float(lambda_adversarial),
            "condition_dropout": float(condition_dropout),
            "activation_checkpointing": bool(activation_checkpointing),
        }
        self.generator = ConditionalUNet(
            self.spatial_dims, 2, 1, channels, activation_checkpointing=activation_checkpointing
        )
        self.discriminator = PatchDiscriminator(
            spatial_dims=self.spatial_dims,
            channels=discriminator_channels,
            in_channels=3,
            num_layers_d=discriminator_layers,
            norm="INSTANCE",
        )
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")
        self.claimed: np.ndarray | None = None
        self.view: DepthView | None = None

    # --- training -------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def training_set(self, data: DepthData) -> TensorBatches:
        return depth_batches(data)

    def prepare(self, data: DepthData) -> None:
        self.claimed = claimed_pixels(data.face_mask)
        self.view = data.view

    def optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
        }

    @staticmethod
    def _face(generator: nn.Module, inputs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """The generator adds tissue to the seen skull (residual), in depth / DEPTH_SCALE_MM."""
        return inputs[:, :1] + generator(inputs, conditions)

    def training_step(
        self,
        nets: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> dict[str, float]:
        """One discriminator step, then one generator step; returns the losses."""
        generator, discriminator = nets["generator"], nets["discriminator"]
        inputs, face, mask = batch["inputs"], batch["face"], batch["face_mask"].to(batch["face"].dtype)
        conditions = drop_metadata(batch["conditions"], self.options["condition_dropout"])
        with autocast():
            fake = self._face(generator, inputs, conditions)
        real_pair = torch.cat([inputs, face * mask], dim=1)
        fake_pair = torch.cat([inputs, fake * mask], dim=1)

        optimizers["discriminator"].zero_grad(set_to_none=True)
        with autocast():
            logits = discriminator(torch.cat([real_pair, fake_pair.detach()]))[-1].float()
            real_logits, fake_logits = logits.chunk(2)
            d_loss = 0.5 * (
                self.adversarial(real_logits, target_is_real=True, for_discriminator=True)
                + self.adversarial(fake_logits, target_is_real=False, for_discriminator=True)
            )
        d_loss.backward()
        optimizers["discriminator"].step()

        optimizers["generator"].zero_grad(set_to_none=True)
        with autocast():
            g_adv = self.adversarial(discriminator(fake_pair)[-1].float(), target_is_real=True, for_discriminator=False)
            l1 = masked_l1(fake.float(), face, mask)
            g_loss = self.options["lambda_adversarial"] * g_adv + self.options["lambda_l1"] * l1
        g_loss.backward()
        optimizers["generator"].step()
        return {
            "loss_d": d_loss.item(),
            "loss_g_adversarial": g_adv.item(),
            "l1_mm": l1.item() * DEPTH_SCALE_MM,
            "loss_g": g_loss.item(),
        }

    # --- inference ------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def _faces_mm(self, skull_depth: np.ndarray, skull_mask: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(N, H, W) face depth in mm for stacked skull maps, in batches."""
        if self.claimed is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        if skull_depth.shape[1:] != self.claimed.shape:
            shape, trained = skull_depth.shape[1:], self.claimed.shape
            raise ValueError(f"skull depth maps are {shape}, the model was trained on {trained}")
        was_training = self.generator.training
        self.generator.eval()
        device, out = self._device(), []
        try:
            for start in range(0, len(skull_depth), 16):
                part = slice(start, start + 16)
                x = torch.from_numpy(network_inputs(skull_depth[part], skull_mask[part])).to(device)
                c = torch.from_numpy(np.asarray(metadata[part], np.float32)).to(device)
                out.append((self._face(self.generator, x, c)[:, 0].float() * DEPTH_SCALE_MM).cpu().numpy())
        finally:
            self.generator.train(was_training)
        return np.concatenate(out).astype(np.float32)

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """The generator's face (one sample: a pix2pix GAN gives the same face whatever the seed)."""
        face = self._faces_mm(skull_depth[None], skull_mask[None], metadata_features(subject)[None])
        return Reconstruction(face, self.claimed.copy())

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        faces = self._faces_mm(data.skull_depth, data.skull_mask, data.metadata)
        return [Reconstruction(f[None], self.claimed.copy()) for f in faces]

    # --- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        if self.claimed is None:
            raise RuntimeError("nothing to save: the model is not trained")
        folder = Path(folder)
        buf = io.BytesIO()
        torch.save({"generator": self.generator.state_dict(), "claimed": torch.from_numpy(self.claimed)}, buf)
        write_bytes_atomic(folder / "weights.pt", buf.getvalue())
        view = self.view.to_dict() if self.view is not None else None
        write_json_atomic(folder / "model.json", {"family": self.family, "options": self.options, "view": view})

    @classmethod
    def load(cls, folder: Path) -> ConditionalGAN:
        config = json.loads((Path(folder) / "model.json").read_text())
        model = cls(**{**config["options"], "channels": tuple(config["options"]["channels"])})
        state = torch.load(Path(folder) / "weights.pt", map_location="cpu", weights_only=True)
        model.generator.load_state_dict(state["generator"])
        model.claimed = state["claimed"].numpy()
        model.view = DepthView.from_dict(config["view"]) if config.get("view") else None
        return model
