"""pix2pix-style conditional GAN on depth maps: a FiLM U-Net generator and a PatchGAN discriminator.

Input: the skull depth map in mm (scaled by DEPTH_SCALE_MM, 0 where no bone is seen) and its mask; the
generator adds soft tissue to the skull (residual output) and reads sex, age and BMI through FiLM. Loss:
L1 on face depth over the true face mask plus the least-squares PatchGAN loss (Isola et al. 2017), on
single-channel depth in mm, not 8-bit images. Network code is shared with the 3D family (`spatial_dims`).

`relative_to_bone` (the default for new models): the generator writes the face's log tissue depth over the skull's
bone envelope (`facegen.models.bone_relative`), scaled by the training faces' per-pixel mean and spread, and the L1
loss is on that log depth; the face it gives is held in front of the bone, so no face passes into it.
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
from facegen.models.bone_relative import (
    LogTissueScale,
    TrainingEnvelope,
    envelope_of,
    face_from_log_tissue,
    log_tissue,
    require_view,
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


def relative_batches(data: DepthData, envelope_mm: np.ndarray, scale: LogTissueScale) -> TensorBatches:
    """Training tensors relative to the bone: skull inputs, normalised log tissue depth (0 off the face), face
    depth and envelope (both / DEPTH_SCALE_MM, for the error in mm), face mask, metadata."""
    target = np.where(data.face_mask, scale.normalised(log_tissue(data.face_depth, envelope_mm)), 0.0)
    return TensorBatches({
        "inputs": torch.from_numpy(network_inputs(data.skull_depth, data.skull_mask)),
        "target": torch.from_numpy(target.astype(np.float32))[:, None],
        "face": torch.from_numpy((data.face_depth / DEPTH_SCALE_MM).astype(np.float32))[:, None],
        "envelope": torch.from_numpy((envelope_mm / DEPTH_SCALE_MM).astype(np.float32))[:, None],
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
        relative_to_bone: bool = True,
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
            "relative_to_bone": bool(relative_to_bone),
        }
        self.relative_to_bone = bool(relative_to_bone)
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
        self.scale: LogTissueScale | None = None
        """Relative to the bone: how the generator's output maps to log tissue depth (fitted in `prepare`)."""
        self._envelope = TrainingEnvelope()

    # --- training -------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def training_set(self, data: DepthData) -> TensorBatches:
        if not self.relative_to_bone:
            return depth_batches(data)
        if self.scale is None:
            self.prepare(data)
        envelope = self._envelope.of(data.skull_depth, data.skull_mask, data.view)
        self._envelope.clear()
        return relative_batches(data, envelope, self.scale)

    def prepare(self, data: DepthData) -> None:
        """The claimed pixels and the view; relative to the bone, the scale of the training log tissue depths."""
        self.claimed = claimed_pixels(data.face_mask)
        self.view = data.view
        if self.relative_to_bone:
            envelope = self._envelope.of(data.skull_depth, data.skull_mask, data.view)
            self.scale = LogTissueScale.fit(log_tissue(data.face_depth, envelope), data.face_mask)

    def optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
        }

    @staticmethod
    def _face(generator: nn.Module, inputs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """The generator adds tissue to the seen skull (residual), in depth / DEPTH_SCALE_MM."""
        return inputs[:, :1] + generator(inputs, conditions)

    def _output(self, generator: nn.Module, inputs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) what the generator answers: the normalised log tissue depth relative to the bone, else the
        face (`_face`)."""
        return generator(inputs, conditions) if self.relative_to_bone else self._face(generator, inputs, conditions)

    @torch.no_grad()
    def _relative_error_mm(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> float:
        """Mean absolute face depth error (mm) over the face masks of the faces envelope + exp(u) the outputs give."""
        mean = torch.as_tensor(self.scale.mean, device=output.device)
        u = (mean + self.scale.spread * output.float()).clamp(self.scale.low, self.scale.high)
        face = batch["envelope"] * DEPTH_SCALE_MM + torch.exp(u)
        mask = batch["face_mask"].to(face.dtype)
        return masked_l1(face, batch["face"] * DEPTH_SCALE_MM, mask).item()

    def training_step(
        self,
        nets: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> dict[str, float]:
        """One discriminator step, then one generator step; returns the losses."""
        generator, discriminator = nets["generator"], nets["discriminator"]
        inputs, mask = batch["inputs"], batch["face_mask"].to(batch["face"].dtype)
        face = batch["target"] if self.relative_to_bone else batch["face"]  # what the generator answers
        conditions = drop_metadata(batch["conditions"], self.options["condition_dropout"])
        with autocast():
            fake = self._output(generator, inputs, conditions)
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
            l1 = masked_l1(fake.float(), face, mask) * (self.scale.spread if self.relative_to_bone else 1.0)
            g_loss = self.options["lambda_adversarial"] * g_adv + self.options["lambda_l1"] * l1
        g_loss.backward()
        optimizers["generator"].step()
        losses = {"loss_d": d_loss.item(), "loss_g_adversarial": g_adv.item(), "loss_g": g_loss.item()}
        if self.relative_to_bone:  # the L1 is on log tissue depth (log-mm); the face's error in mm beside it
            return losses | {"l1_log_tissue": l1.item(), "l1_mm": self._relative_error_mm(fake.detach(), batch)}
        return losses | {"l1_mm": l1.item() * DEPTH_SCALE_MM}

    # --- inference ------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def _faces_mm(self, skull_depth: np.ndarray, skull_mask: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(N, H, W) face depth in mm for stacked skull maps; relative to the bone, envelope + exp(u) held in front
        of the bone (whatever the generator answers, no face lies inside the bone)."""
        outputs = self._outputs(skull_depth, skull_mask, metadata)
        if not self.relative_to_bone:
            return outputs * np.float32(DEPTH_SCALE_MM)
        envelope, _ = envelope_of(skull_depth, skull_mask, require_view(self.view))
        return face_from_log_tissue(self.scale.log_tissue(outputs), envelope, skull_depth, skull_mask,
                                    self.view.pixel_mm)  # fmt: skip

    @torch.no_grad()
    def _outputs(self, skull_depth: np.ndarray, skull_mask: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(N, H, W) float32 the generator's answers (`_output`) for stacked skull maps, in batches."""
        if self.claimed is None or (self.relative_to_bone and self.scale is None):
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
                out.append(self._output(self.generator, x, c)[:, 0].float().cpu().numpy())
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
        state = {"generator": self.generator.state_dict(), "claimed": torch.from_numpy(self.claimed)}
        record = {"family": self.family, "options": self.options, "view": self.view.to_dict() if self.view else None}
        if self.relative_to_bone:  # the log tissue scale: its mean map with the weights, its scalars in the record
            state["log_tissue_mean"] = torch.from_numpy(self.scale.mean)
            record["log_tissue"] = self.scale.to_record()
        torch.save(state, buf)
        write_bytes_atomic(folder / "weights.pt", buf.getvalue())
        write_json_atomic(folder / "model.json", record)

    @classmethod
    def load(cls, folder: Path) -> ConditionalGAN:
        config = json.loads((Path(folder) / "model.json").read_text())
        options = {"relative_to_bone": False, **config["options"]}  # models saved before the option: absolute
        model = cls(**{**options, "channels": tuple(options["channels"])})
        state = torch.load(Path(folder) / "weights.pt", map_location="cpu", weights_only=True)
        model.generator.load_state_dict(state["generator"])
        model.claimed = state["claimed"].numpy()
        model.view = DepthView.from_dict(config["view"]) if config.get("view") else None
        if model.relative_to_bone:
            model.scale = LogTissueScale(state["log_tissue_mean"].numpy(), **config["log_tissue"])
        return model
