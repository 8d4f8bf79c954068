"""Conditional diffusion model on depth maps: many plausible faces for one skull, hence an uncertainty map.

The model denoises the face's deviation from a simple prior face built from the skull (seen bone plus the
training set's mean tissue depth at that pixel; the mean face where no bone is seen), scaled to unit
spread. A FiLM U-Net (the GAN's network) reads the noisy deviation with the skull depth map and prior as
input channels, and the timestep embedding with sex, age and BMI as its condition vector. Training uses
v-prediction (Salimans & Ho 2022) on MONAI's DDPM noise schedule; faces are sampled with deterministic
DDIM (Song et al. 2021) in a few tens of steps, so the seed fixes every sample. K samples give the mean
face and a per-pixel standard deviation.

`relative_to_bone` (the default for new models): the model denoises the deviation of the face's log tissue depth
over the skull's bone envelope (`facegen.models.bone_relative`) from its training mean at that pixel, scaled by its
spread; the prior face is the envelope plus that mean tissue. Every sample is held in front of the bone, so no
sampled face passes into it, and the SD map is the spread of those faces.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch
from monai.networks.nets.diffusion_model_unet import get_timestep_embedding
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
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
from facegen.models.gan.cgan import DEPTH_SCALE_MM, network_inputs
from facegen.models.networks.unet import ConditionalUNet
from facegen.models.registry import register

TIME_FEATURES = 32
"""Width of the sinusoidal timestep embedding appended to the three metadata features."""
MIN_SPREAD_MM = 1.0
BATCH = 32
"""Images denoised at once when sampling (subjects x samples)."""


def prior_face(
    skull_depth: np.ndarray, skull_mask: np.ndarray, tissue_mm: np.ndarray, face_mm: np.ndarray
) -> np.ndarray:
    """(N, H, W) mm: seen bone plus mean tissue depth where bone is seen, else the mean face depth."""
    return np.where(skull_mask, skull_depth + tissue_mm, face_mm).astype(np.float32)


def diffusion_batches(data: DepthData, model: ConditionalDiffusion, envelope_mm: np.ndarray | None) -> TensorBatches:
    """Training tensors: network inputs (skull, mask, prior), scaled face deviation, face mask, metadata; relative to
    the bone (`envelope_mm` given), the deviation is the normalised log tissue depth over the envelope."""
    prior = model.prior(data.skull_depth, data.skull_mask, envelope_mm)
    if envelope_mm is None:
        deviation = np.where(data.face_mask, (data.face_depth - prior) / model.spread_mm, 0.0)
    else:
        deviation = np.where(data.face_mask, model.scale.normalised(log_tissue(data.face_depth, envelope_mm)), 0.0)
    return TensorBatches({
        "inputs": torch.from_numpy(model.condition_images(data.skull_depth, data.skull_mask, prior)),
        "target": torch.from_numpy(deviation.astype(np.float32))[:, None],
        "face_mask": torch.from_numpy(data.face_mask)[:, None],
        "conditions": torch.from_numpy(data.metadata),
    })  # fmt: skip


class Denoiser(nn.Module):
    """FiLM U-Net predicting v from the noisy deviation and the skull images, conditioned on (t, metadata)."""

    def __init__(self, channels: tuple[int, ...], activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.unet = ConditionalUNet(
            2, 4, 1, channels, n_conditions=3 + TIME_FEATURES, activation_checkpointing=activation_checkpointing
        )

    def forward(
        self, noisy: torch.Tensor, images: torch.Tensor, t: torch.Tensor, metadata: torch.Tensor
    ) -> torch.Tensor:
        time = get_timestep_embedding(t, TIME_FEATURES).to(noisy.dtype)
        return self.unet(torch.cat([noisy, images], dim=1), torch.cat([metadata.to(noisy.dtype), time], dim=1))


@register
class ConditionalDiffusion(TrainableModel):
    """Skull depth map + sex/age/BMI -> K face depth samples; DDPM training, DDIM sampling."""

    family = "diffusion2d"
    description = "2.5D conditional diffusion model: FiLM U-Net, v-prediction, DDIM sampling; K samples -> SD map"
    stochastic = True

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        train_timesteps: int = 1000,
        sampling_steps: int = 25,
        samples: int = 8,
        condition_dropout: float = 0.1,
        activation_checkpointing: bool = False,
        relative_to_bone: bool = True,
    ) -> None:
        if not 1 <= sampling_steps <= train_timesteps:
            raise ValueError(f"sampling_steps must be in [1, train_timesteps={train_timesteps}], got {sampling_steps}")
        if samples < 1 or not 0 <= condition_dropout < 1:
            raise ValueError("samples must be at least 1 and condition_dropout in [0, 1)")
        self.options = {
            "channels": [int(c) for c in channels],
            "train_timesteps": int(train_timesteps),
            "sampling_steps": int(sampling_steps),
            "samples": int(samples),
            "condition_dropout": float(condition_dropout),
            "activation_checkpointing": bool(activation_checkpointing),
            "relative_to_bone": bool(relative_to_bone),
        }
        self.relative_to_bone = bool(relative_to_bone)
        self.denoiser = Denoiser(tuple(channels), activation_checkpointing)
        self.noise_schedule = DDPMScheduler(train_timesteps, schedule="cosine", prediction_type="v_prediction")
        self.claimed: np.ndarray | None = None
        self.tissue_mm: np.ndarray | None = None
        self.mean_face_mm: np.ndarray | None = None
        self.spread_mm = 1.0
        self.scale: LogTissueScale | None = None
        """Relative to the bone: the training log tissue depths' per-pixel mean and spread (fitted in `prepare`)."""
        self.view: DepthView | None = None
        self._envelope = TrainingEnvelope()

    @property
    def default_samples(self) -> int:
        """Samples per face unless the caller asks otherwise: enough for a mean face and an SD map."""
        return self.options["samples"]

    # --- the prior face and the network's conditioning images ------------------------------------
    def prior(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, envelope_mm: np.ndarray | None = None
    ) -> np.ndarray:
        """The prior face (N, H, W) mm that the model refines; relative to the bone, the envelope (computed unless
        given) plus the mean tissue depth, held in front of the bone."""
        if self.relative_to_bone:
            if self.scale is None:
                raise RuntimeError("the model is not trained: train it or load() a trained one")
            if envelope_mm is None:
                envelope_mm, _ = envelope_of(skull_depth, skull_mask, require_view(self.view))
            mean = np.broadcast_to(self.scale.mean, np.shape(skull_depth))
            return face_from_log_tissue(mean, envelope_mm, skull_depth, skull_mask, require_view(self.view).pixel_mm)
        if self.tissue_mm is None or self.mean_face_mm is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        return prior_face(skull_depth, skull_mask, self.tissue_mm, self.mean_face_mm)

    @staticmethod
    def condition_images(skull_depth: np.ndarray, skull_mask: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32: the GAN's skull inputs and the prior face, in depth / DEPTH_SCALE_MM."""
        return np.concatenate([network_inputs(skull_depth, skull_mask), (prior / DEPTH_SCALE_MM)[:, None]], axis=1)

    # --- training -------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"denoiser": self.denoiser}

    def prepare(self, data: DepthData) -> None:
        """The prior (mean tissue and face per pixel; relative to the bone, the log tissue scale), the deviation
        scale and the claimed pixels."""
        self.claimed = claimed_pixels(data.face_mask)
        self.view = data.view
        if self.relative_to_bone:
            envelope = self._envelope.of(data.skull_depth, data.skull_mask, data.view)
            self.scale = LogTissueScale.fit(log_tissue(data.face_depth, envelope), data.face_mask)
            return
        both = data.skull_mask & data.face_mask
        tissue = np.where(both, data.face_depth - data.skull_depth, 0.0).sum(0) / np.maximum(both.sum(0), 1)
        face = np.where(data.face_mask, data.face_depth, 0.0).sum(0) / np.maximum(data.face_mask.sum(0), 1)
        self.tissue_mm, self.mean_face_mm = tissue.astype(np.float32), face.astype(np.float32)
        deviation = (data.face_depth - self.prior(data.skull_depth, data.skull_mask))[data.face_mask]
        self.spread_mm = max(float(np.sqrt(np.mean(deviation.astype(np.float64) ** 2))), MIN_SPREAD_MM)

    def training_set(self, data: DepthData) -> TensorBatches:
        if not self.relative_to_bone:
            return diffusion_batches(data, self, None)
        if self.scale is None:
            self.prepare(data)
        envelope = self._envelope.of(data.skull_depth, data.skull_mask, data.view)
        self._envelope.clear()
        return diffusion_batches(data, self, envelope)

    def optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        return {"denoiser": torch.optim.Adam(self.denoiser.parameters(), lr=lr, betas=betas)}

    def training_step(
        self,
        nets: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> dict[str, float]:
        """Noise each face deviation at a random timestep and regress v over the face mask."""
        target, mask = batch["target"], batch["face_mask"].to(batch["target"].dtype)
        conditions = drop_metadata(batch["conditions"], self.options["condition_dropout"])
        noise = torch.randn_like(target)
        t = torch.randint(0, self.options["train_timesteps"], (len(target),), device=target.device)
        noisy = self.noise_schedule.add_noise(target, noise, t)
        velocity = self.noise_schedule.get_velocity(target, noise, t)
        optimizers["denoiser"].zero_grad(set_to_none=True)
        with autocast():
            predicted = nets["denoiser"](noisy, batch["inputs"], t, conditions)
        per_sample = (((predicted.float() - velocity) ** 2) * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp(min=1)
        loss = per_sample.mean()
        loss.backward()
        optimizers["denoiser"].step()
        return {"loss_v": loss.item()}

    # --- sampling -------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @torch.no_grad()
    def _sample(self, images: torch.Tensor, metadata: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM from the given initial noise to face deviations (B, 1, H, W)."""
        scheduler = DDIMScheduler(
            self.options["train_timesteps"], schedule="cosine", prediction_type="v_prediction", clip_sample=False
        )
        scheduler.set_timesteps(self.options["sampling_steps"], device=noise.device)
        x = noise
        for t in scheduler.timesteps:
            v = self.denoiser(x, images, t.expand(len(x)), metadata)
            x, _ = scheduler.step(v, int(t), x)
        return x

    def sample_faces(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, metadata: np.ndarray, *, seed: int, n_samples: int
    ) -> np.ndarray:
        """(N, K, H, W) face depth samples in mm; sample k of every subject starts from the noise of (seed, k).
        Relative to the bone, each is envelope + exp(u) held in front of the bone, whatever the denoiser answers."""
        if self.claimed is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        if skull_depth.shape[1:] != self.claimed.shape:
            shape, trained = skull_depth.shape[1:], self.claimed.shape
            raise ValueError(f"skull depth maps are {shape}, the model was trained on {trained}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        n, shape = len(skull_depth), self.claimed.shape
        envelope = envelope_of(skull_depth, skull_mask, require_view(self.view))[0] if self.relative_to_bone else None
        prior = self.prior(skull_depth, skull_mask, envelope)
        images = self.condition_images(skull_depth, skull_mask, prior)
        noise = torch.stack([torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed * 1_000_003 + k))
                             for k in range(n_samples)])  # fmt: skip
        pairs = [(i, k) for i in range(n) for k in range(n_samples)]
        device, out = self._device(), np.empty((n, n_samples, *shape), np.float32)
        was_training = self.denoiser.training
        self.denoiser.eval()
        try:
            for start in range(0, len(pairs), BATCH):
                part = pairs[start : start + BATCH]
                subjects, samples = [i for i, _ in part], [k for _, k in part]
                x = self._sample(
                    torch.from_numpy(images[subjects]).to(device),
                    torch.from_numpy(np.asarray(metadata, np.float32)[subjects]).to(device),
                    noise[samples].to(device),
                )
                out[subjects, samples] = x[:, 0].float().cpu().numpy()
        finally:
            self.denoiser.train(was_training)
        if envelope is None:
            return (prior[:, None] + out * self.spread_mm).astype(np.float32)
        u = self.scale.log_tissue(out)
        return face_from_log_tissue(u, envelope[:, None], skull_depth[:, None], skull_mask[:, None],
                                    require_view(self.view).pixel_mm)  # fmt: skip

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """K sampled faces for one skull (their spread is the model's uncertainty)."""
        faces = self.sample_faces(
            skull_depth[None], skull_mask[None], metadata_features(subject)[None], seed=seed, n_samples=n_samples
        )
        return Reconstruction(faces[0], self.claimed.copy())

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        faces = self.sample_faces(data.skull_depth, data.skull_mask, data.metadata, seed=seed, n_samples=n_samples)
        return [Reconstruction(f, self.claimed.copy()) for f in faces]

    # --- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        if self.claimed is None:
            raise RuntimeError("nothing to save: the model is not trained")
        folder = Path(folder)
        buf = io.BytesIO()
        state = {"denoiser": self.denoiser.state_dict(), "claimed": torch.from_numpy(self.claimed)}
        view = self.view.to_dict() if self.view is not None else None
        record = {"family": self.family, "options": self.options, "view": view}
        if self.relative_to_bone:  # the log tissue scale: its mean map with the weights, its scalars in the record
            state["log_tissue_mean"] = torch.from_numpy(self.scale.mean)
            record["log_tissue"] = self.scale.to_record()
        else:
            state["tissue_mm"] = torch.from_numpy(self.tissue_mm)
            state["mean_face_mm"] = torch.from_numpy(self.mean_face_mm)
            record["spread_mm"] = self.spread_mm
        torch.save(state, buf)
        write_bytes_atomic(folder / "weights.pt", buf.getvalue())
        write_json_atomic(folder / "model.json", record)

    @classmethod
    def load(cls, folder: Path) -> ConditionalDiffusion:
        record = json.loads((Path(folder) / "model.json").read_text())
        options = {"relative_to_bone": False, **record["options"]}  # models saved before the option: absolute
        model = cls(**{**options, "channels": tuple(options["channels"])})
        state = torch.load(Path(folder) / "weights.pt", map_location="cpu", weights_only=True)
        model.denoiser.load_state_dict(state["denoiser"])
        model.claimed = state["claimed"].numpy()
        if model.relative_to_bone:
            model.scale = LogTissueScale(state["log_tissue_mean"].numpy(), **record["log_tissue"])
        else:
            model.tissue_mm, model.mean_face_mm = state["tissue_mm"].numpy(), state["mean_face_mm"].numpy()
            model.spread_mm = float(record["spread_mm"])
        model.view = DepthView.from_dict(record["view"]) if record.get("view") else None
        return model
