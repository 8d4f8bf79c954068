"""3D conditional GAN on voxel grids: the 2.5D GAN's networks with spatial_dims=3, skull occupancy in, face out.

The generator (the same FiLM U-Net as gan2d, 3D layers) reads the skull's occupancy and the population's mean
face occupancy (the template, learned in `prepare`) and corrects the template in logit space from the skull and
sex, age and BMI, as gan2d adds tissue to the skull. A 3D PatchGAN judges (skull, face) occupancy pairs. Loss:
binary cross-entropy on occupancy plus the least-squares PatchGAN loss. Memory-lean by design: the trainer's
bf16 autocast on a GPU, activation checkpointing of every U-Net block, grids streamed from the dataset one
subject at a time (never all in memory), `grid_factor` to train on block-averaged (partial-volume) grids, and
`training_patch` to train on random crops of a large grid (the seeds' 512 x 512 x 102 on 256 x 256 x 102
patches) and answer by Gaussian-blended sliding windows of the same size, so a network never sees a field of
another size than it was trained on. Sizes that are no multiple of the U-Net's are zero-padded at the far end
and cropped back (102 runs as 104). The face for the depth-map evaluation is the 0.5 surface of the predicted
occupancy (marching cubes, canonical mm), rendered in the model's frontal view.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import trimesh
from monai.inferers import sliding_window_inference
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from skimage.measure import marching_cubes
from torch import nn

from facegen.data.representations.depth_map import DepthView, render_depth_map
from facegen.data.representations.voxel_grid import GridSpec
from facegen.data.subject import Subject
from facegen.io.atomic import write_bytes_atomic, write_json_atomic
from facegen.models.base import DepthData, Reconstruction, claimed_pixels, drop_metadata, metadata_features
from facegen.models.gan.cgan import ConditionalGAN
from facegen.models.networks.unet import ConditionalUNet
from facegen.models.registry import register

SURFACE_LEVEL = 0.5
"""The face surface is where the predicted occupancy crosses this probability."""
_TEMPLATE_EPS = 1e-3
"""The template's occupancy is clipped to [eps, 1 - eps] before its logit (a certain voxel stays correctable)."""
WINDOW_OVERLAP = 0.25
"""Sliding windows of a patch-trained model overlap by this share of the patch."""


def pool_grid(grid: np.ndarray, factor: int) -> np.ndarray:
    """(X, Y, Z) occupancy averaged over factor^3 blocks: partial-volume occupancy in [0, 1], float32."""
    if factor < 1:
        raise ValueError(f"grid_factor must be a positive integer, got {factor}")
    grid = np.asarray(grid)
    if grid.ndim != 3:
        raise ValueError(f"an occupancy grid is (X, Y, Z), got shape {grid.shape}")
    if any(s % factor for s in grid.shape):
        raise ValueError(f"grid {grid.shape} is not divisible by grid_factor {factor}")
    x, y, z = (s // factor for s in grid.shape)
    blocks = grid.astype(np.float32).reshape(x, factor, y, factor, z, factor)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)


def pooled_spec(spec: GridSpec, factor: int) -> GridSpec:
    """The grid of `pool_grid(.., factor)`: the same box, factor times larger voxels."""
    if factor < 1 or any(s % factor for s in spec.shape):
        raise ValueError(f"grid {spec.shape} is not divisible by grid_factor {factor}")
    return GridSpec(tuple(s // factor for s in spec.shape), spec.extent_mm, spec.centre_mm)


def spec_to_dict(spec: GridSpec) -> dict[str, list]:
    """Plain values for model.json."""
    return {"shape": list(spec.shape), "extent_mm": list(spec.extent_mm), "centre_mm": list(spec.centre_mm)}


def spec_from_dict(d: dict) -> GridSpec:
    """Inverse of `spec_to_dict`."""
    return GridSpec(tuple(d["shape"]), tuple(d["extent_mm"]), tuple(d["centre_mm"]))


def occupancy_surface(occupancy: np.ndarray, spec: GridSpec, level: float = SURFACE_LEVEL) -> trimesh.Trimesh | None:
    """The closed `level` surface of an occupancy grid on `spec`, in canonical mm (None where nothing is inside)."""
    if not occupancy.max() > level:
        return None
    padded = np.pad(np.asarray(occupancy, np.float32), 1)  # closed at the box's faces
    vertices, faces, _, _ = marching_cubes(padded, level, spacing=tuple(spec.spacing_mm))
    vertices = vertices + spec.origin_mm - spec.spacing_mm
    return trimesh.Trimesh(vertices, faces, process=False)


class OccupancyGenerator(nn.Module):
    """Face occupancy logits from (skull, template) occupancy: the U-Net corrects the template's logits."""

    def __init__(self, unet: ConditionalUNet) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("template", torch.zeros(0))

    def set_template(self, template: torch.Tensor | np.ndarray) -> None:
        """The mean face occupancy (X, Y, Z) of the training subjects on the working grid."""
        self.template = torch.as_tensor(np.asarray(template, np.float32)).to(self.template.device)

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The grid the U-Net runs on: each side zero-padded up to a multiple of its size multiple."""
        multiple = self.unet.size_multiple
        return tuple(int(s) + (-int(s)) % multiple for s in shape)

    def inputs(self, skull: torch.Tensor) -> torch.Tensor:
        """(B, 2, X, Y, Z): skull occupancy (B, 1, X, Y, Z) with the template beside it."""
        if self.template.shape != skull.shape[2:]:
            raise ValueError(f"skull grid {tuple(skull.shape[2:])} is not the model's {tuple(self.template.shape)}")
        template = self.template.expand(skull.shape[0], 1, *self.template.shape)
        return torch.cat([skull, template.to(skull.dtype)], dim=1)

    def forward(self, inputs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """inputs: (B, 2, X, Y, Z) skull and template, or a window of them; conditions: (B, 3) -> (B, 1, ...) logits."""
        shape = inputs.shape[2:]
        pad = [p - s for p, s in zip(self.padded_shape(shape), shape, strict=True)]
        x = nn.functional.pad(inputs, [p for size in reversed(pad) for p in (0, size)]) if any(pad) else inputs
        correction = self.unet(x, conditions)[..., : shape[0], : shape[1], : shape[2]]
        return torch.logit(inputs[:, 1:2].clamp(_TEMPLATE_EPS, 1 - _TEMPLATE_EPS)) + correction


class GridBatches:
    """Training grids streamed from the dataset subject by subject, block-averaged and (optionally) cropped.

    A patch's corner is drawn from torch's global generator, which the trainer seeds per step: the same
    (seed, step) gives the same crops.
    """

    def __init__(self, data: DepthData, factor: int, template: np.ndarray, patch: tuple[int, ...] | None) -> None:
        self.data, self.factor, self.template = data, factor, template
        self.patch = tuple(patch) if patch is not None else tuple(template.shape)
        self.conditions = torch.from_numpy(data.metadata)

    def __len__(self) -> int:
        return len(self.data)

    def _sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(2, *patch) skull and template, (1, *patch) face occupancy of subject i in a random window."""
        skull, face = (pool_grid(self.data.grid(kind, i), self.factor) for kind in ("skull", "face"))
        corner = [int(torch.randint(0, s - p + 1, ())) for s, p in zip(skull.shape, self.patch, strict=True)]
        window = tuple(slice(c, c + p) for c, p in zip(corner, self.patch, strict=True))
        return np.stack([skull[window], self.template[window]]), face[window][None]

    def batch(self, index: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        inputs, faces = zip(*(self._sample(int(i)) for i in index), strict=True)
        i = torch.from_numpy(np.asarray(index, np.int64))
        return {
            "inputs": torch.from_numpy(np.stack(inputs)).to(device),
            "face": torch.from_numpy(np.stack(faces)).to(device),
            "conditions": self.conditions[i].to(device),
        }


@dataclass(frozen=True)
class GridReconstruction:
    """A 3D model's answer for one skull: the face depth map, the face occupancy grid and its surface mesh."""

    reconstruction: Reconstruction
    face_occupancy: np.ndarray
    """(X, Y, Z) float32 probabilities on `grid` (the model's working grid)."""
    grid: GridSpec

    @property
    def face_mesh(self) -> trimesh.Trimesh | None:
        """The 0.5 surface in canonical mm (None when the model puts no voxel inside the face)."""
        return self.reconstruction.face_mesh


@register
class ConditionalGAN3D(ConditionalGAN):
    """Skull occupancy + sex/age/BMI -> face occupancy; 3D FiLM U-Net + 3D PatchGAN, BCE + LSGAN loss."""

    family = "gan3d"
    description = "3D conditional GAN: FiLM U-Net on skull/face voxel grids + 3D PatchGAN, occupancy + adversarial"
    stochastic = False
    spatial_dims: ClassVar[int] = 3

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        discriminator_channels: int = 32,
        discriminator_layers: int = 3,
        lambda_occupancy: float = 100.0,
        lambda_adversarial: float = 1.0,
        condition_dropout: float = 0.1,
        activation_checkpointing: bool = True,
        grid_factor: int = 1,
        training_patch: tuple[int, int, int] | None = None,
    ) -> None:
        if lambda_occupancy < 0 or lambda_adversarial < 0 or not 0 <= condition_dropout < 1:
            raise ValueError("loss weights must be non-negative and condition_dropout in [0, 1)")
        if int(grid_factor) != grid_factor or grid_factor < 1:
            raise ValueError(f"grid_factor must be a positive integer, got {grid_factor}")
        if discriminator_layers < 1:
            raise ValueError(f"discriminator_layers must be at least 1, got {discriminator_layers}")
        if training_patch is not None and (len(training_patch) != 3 or min(training_patch) < 1):
            raise ValueError(f"training_patch must be three positive sizes (x, y, z), got {training_patch}")
        self.options = {
            "channels": [int(c) for c in channels],
            "discriminator_channels": int(discriminator_channels),
            "discriminator_layers": int(discriminator_layers),
            "lambda_occupancy": float(lambda_occupancy),
            "lambda_adversarial": float(lambda_adversarial),
            "condition_dropout": float(condition_dropout),
            "activation_checkpointing": bool(activation_checkpointing),
            "grid_factor": int(grid_factor),
            "training_patch": None if training_patch is None else [int(s) for s in training_patch],
        }
        unet = ConditionalUNet(3, 2, 1, channels, activation_checkpointing=activation_checkpointing)
        self.generator = OccupancyGenerator(unet)
        self.discriminator = PatchDiscriminator(
            spatial_dims=3, channels=discriminator_channels, in_channels=2, num_layers_d=discriminator_layers,
            norm="INSTANCE",
        )  # fmt: skip
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")
        self.claimed: np.ndarray | None = None
        self.view: DepthView | None = None
        self.grid: GridSpec | None = None

    @property
    def working_grid(self) -> GridSpec:
        """The grid the networks see: the dataset's grid block-averaged by grid_factor."""
        if self.grid is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        return pooled_spec(self.grid, self.options["grid_factor"])

    # --- training -------------------------------------------------------------------------------
    @property
    def patch(self) -> tuple[int, ...]:
        """The field the networks are trained on: the training patch, or the whole working grid."""
        patch = self.options["training_patch"]
        return tuple(patch) if patch is not None else self.working_grid.shape

    def training_set(self, data: DepthData) -> GridBatches:
        template = self.generator.template.detach().cpu().numpy()
        return GridBatches(data, self.options["grid_factor"], template, self.options["training_patch"])

    def prepare(self, data: DepthData) -> None:
        """Record the grid, view and claimed pixels; the template is the training faces' mean occupancy."""
        spec = pooled_spec(data.grid_spec, self.options["grid_factor"])
        patch = self.options["training_patch"] or list(spec.shape)
        if any(p > s for p, s in zip(patch, spec.shape, strict=True)):
            raise ValueError(f"training_patch {tuple(patch)} is larger than the working grid {spec.shape}")
        smallest = 3 * 2 ** self.options["discriminator_layers"]
        if min(patch) < smallest:
            raise ValueError(f"training field {tuple(patch)} is too small for a PatchGAN of "
                             f"{self.options['discriminator_layers']} layers (each side >= {smallest}); use fewer "
                             "discriminator_layers, a smaller grid_factor or a larger training_patch")  # fmt: skip
        template = np.zeros(spec.shape, np.float64)
        for i in range(len(data)):
            template += pool_grid(data.grid("face", i), self.options["grid_factor"])
        self.grid, self.view = data.grid_spec, data.view
        self.claimed = claimed_pixels(data.face_mask)
        self.generator.set_template(template / len(data))

    def training_step(
        self,
        nets: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> dict[str, float]:
        """One discriminator step, then one generator step on occupancy; returns the losses."""
        generator, discriminator = nets["generator"], nets["discriminator"]
        inputs, face, conditions = batch["inputs"], batch["face"], batch["conditions"]
        skull = inputs[:, :1]
        conditions = drop_metadata(conditions, self.options["condition_dropout"])
        with autocast():
            logits = generator(inputs, conditions).float()
        fake = torch.sigmoid(logits)
        real_pair, fake_pair = torch.cat([skull, face], dim=1), torch.cat([skull, fake], dim=1)

        optimizers["discriminator"].zero_grad(set_to_none=True)
        with autocast():
            scores = discriminator(torch.cat([real_pair, fake_pair.detach()]))[-1].float()
            real_scores, fake_scores = scores.chunk(2)
            d_loss = 0.5 * (
                self.adversarial(real_scores, target_is_real=True, for_discriminator=True)
                + self.adversarial(fake_scores, target_is_real=False, for_discriminator=True)
            )
        d_loss.backward()
        optimizers["discriminator"].step()

        optimizers["generator"].zero_grad(set_to_none=True)
        with autocast():
            g_adv = self.adversarial(discriminator(fake_pair)[-1].float(), target_is_real=True, for_discriminator=False)
        occupancy = nn.functional.binary_cross_entropy_with_logits(logits, face)
        g_loss = self.options["lambda_adversarial"] * g_adv + self.options["lambda_occupancy"] * occupancy
        g_loss.backward()
        optimizers["generator"].step()
        with torch.no_grad():
            inside, truth = fake >= SURFACE_LEVEL, face >= SURFACE_LEVEL
            iou = (inside & truth).sum() / (inside | truth).sum().clamp(min=1)
        return {
            "loss_d": d_loss.item(),
            "loss_g_adversarial": g_adv.item(),
            "bce_occupancy": occupancy.item(),
            "iou_face": iou.item(),
            "loss_g": g_loss.item(),
        }

    # --- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def _occupancy(self, skull: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """(X, Y, Z) face occupancy probabilities for one working-grid skull occupancy."""
        was_training = self.generator.training
        self.generator.eval()
        device = self._device()
        try:
            x = self.generator.inputs(torch.from_numpy(np.asarray(skull, np.float32)[None, None]).to(device))
            c = torch.from_numpy(np.asarray(metadata, np.float32)[None]).to(device)
            if self.patch == tuple(x.shape[2:]):
                logits = self.generator(x, c)
            else:  # windows of the trained patch size, blended with Gaussian weights
                logits = sliding_window_inference(x, self.patch, 1, self.generator, WINDOW_OVERLAP, "gaussian",
                                                  conditions=c)  # fmt: skip
            return torch.sigmoid(logits.float())[0, 0].cpu().numpy()
        finally:
            self.generator.train(was_training)

    def reconstruct_grid(
        self, skull_grid: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> GridReconstruction:
        """The face for a skull occupancy grid on the model's `grid` (one sample whatever the seed)."""
        if self.claimed is None or self.grid is None or self.view is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        skull_grid = np.asarray(skull_grid)
        if skull_grid.shape != self.grid.shape:
            raise ValueError(f"skull grid is {skull_grid.shape}, the model reads grids of {self.grid.shape}")
        spec = self.working_grid
        occupancy = self._occupancy(pool_grid(skull_grid, self.options["grid_factor"]), metadata_features(subject))
        mesh = occupancy_surface(occupancy, spec)
        if mesh is None:
            depth, seen = np.zeros(self.view.shape, np.float32), np.zeros(self.view.shape, bool)
        else:
            rendered = render_depth_map(mesh, self.view)
            depth, seen = rendered.depth_mm, rendered.mask
        rec = Reconstruction(depth[None].astype(np.float32), self.claimed & seen, mesh)
        return GridReconstruction(rec, occupancy, spec)

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """Not possible: a depth map shows only the front of the bone, and this model reads the whole skull."""
        raise ValueError(
            "gan3d reads the skull as a voxel grid, not a depth map (a depth map holds only the bone seen from the "
            "front); call reconstruct_grid(skull_grid, subject) or reconstruct_many(data) on data loaded from a "
            "dataset folder; `facegen reconstruct` voxelizes the skull itself"
        )

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        """Faces for every subject, from the skull grids of the dataset the data came from."""
        if self.grid is None:
            raise RuntimeError("the model is not trained: train it or load() a trained one")
        if data.grid_spec != self.grid:
            raise ValueError(f"the data's grid {data.grid_spec} is not the model's {self.grid}")
        return [
            self.reconstruct_grid(data.grid("skull", i), s, seed=seed, n_samples=n_samples).reconstruction
            for i, s in enumerate(data.subjects)
        ]

    # --- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        if self.claimed is None or self.grid is None:
            raise RuntimeError("nothing to save: the model is not trained")
        folder = Path(folder)
        buf = io.BytesIO()
        torch.save({"generator": self.generator.state_dict(), "claimed": torch.from_numpy(self.claimed)}, buf)
        write_bytes_atomic(folder / "weights.pt", buf.getvalue())
        view = self.view.to_dict() if self.view is not None else None
        record = {"family": self.family, "options": self.options, "view": view, "grid": spec_to_dict(self.grid)}
        write_json_atomic(folder / "model.json", record)

    @classmethod
    def load(cls, folder: Path) -> ConditionalGAN3D:
        config = json.loads((Path(folder) / "model.json").read_text())
        model = cls(**{**config["options"], "channels": tuple(config["options"]["channels"])})
        state = torch.load(Path(folder) / "weights.pt", map_location="cpu", weights_only=True)
        model.generator.set_template(state["generator"]["template"])
        model.generator.load_state_dict(state["generator"])
        model.claimed = state["claimed"].numpy()
        model.view = DepthView.from_dict(config["view"]) if config.get("view") else None
        model.grid = spec_from_dict(config["grid"])
        return model
