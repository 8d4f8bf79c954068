"""Skull depth maps with random relief, and models whose network answers anything: for the bone-relative families."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from facegen.data.representations.depth_map import DepthView
from facegen.data.subject import Sex, Subject
from facegen.models.base import DepthData, metadata_features

RELIEF_VIEW = DepthView(shape=(32, 32), pixel_mm=4.0)
"""Tiny depth maps (4 mm pixels): the envelope's closing disc is 5 pixels wide, a network step is milliseconds."""


def relief_heads(seed: int, n: int = 4) -> DepthData:
    """n skulls (N, 32, 32) mm: a dome with bumps, pits and ridges of random height (20-80 mm), holes in the bone;
    faces 2-25 mm in front of the smoothed bone; random sex, age and BMI features."""
    rng = np.random.default_rng(seed)
    h, w = RELIEF_VIEW.shape
    rows, cols = np.mgrid[:h, :w]
    r2 = ((rows - h / 2) / (0.45 * h)) ** 2 + ((cols - w / 2) / (0.4 * w)) ** 2
    relief = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (n, h, w)), sigma=(0, 1.0, 1.0))
    relief *= rng.uniform(20.0, 80.0, (n, 1, 1)) / relief.std()
    bone = 90.0 - 40.0 * r2 + relief
    skull_mask = (r2 < 1.0) & (rng.random((n, h, w)) > 0.1)
    tissue = ndimage.gaussian_filter(rng.uniform(2.0, 25.0, (n, h, w)), sigma=(0, 2.0, 2.0))
    face_mask = np.broadcast_to(r2 < 1.2, (n, h, w)).copy()
    face = np.where(face_mask, ndimage.gaussian_filter(bone, sigma=(0, 2.0, 2.0)) + tissue, 0.0)
    subjects = [Subject(f"R{seed}-{i}", rng.choice([Sex.FEMALE, Sex.MALE]), float(rng.uniform(20, 85)),
                        float(rng.uniform(17, 44))) for i in range(n)]  # fmt: skip
    return DepthData(
        subjects=subjects,
        skull_depth=np.where(skull_mask, bone, 0.0).astype(np.float32),
        skull_mask=skull_mask,
        face_depth=face.astype(np.float32),
        face_mask=face_mask,
        face_region=face_mask.copy(),
        metadata=np.stack([metadata_features(s) for s in subjects]),
        view=RELIEF_VIEW,
    )


class AnyAnswer(nn.Module):
    """A stand-in network that answers seeded noise of any size (scale) whatever it is asked: (B, 1, H, W)."""

    def __init__(self, scale: float, seed: int) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, so the model finds its device
        self.scale, self.generator = scale, torch.Generator().manual_seed(seed)

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        noise = torch.randn((first.shape[0], 1, *first.shape[2:]), generator=self.generator)
        return noise * self.scale + self.anchor


def assert_in_front_of_bone(faces: np.ndarray, heads: DepthData) -> None:
    """Every face depth sample (N, K, H, W) mm is finite and, over bone, in front of it."""
    assert np.isfinite(faces).all()
    for sample, skull, mask in zip(faces, heads.skull_depth, heads.skull_mask, strict=True):
        assert (sample[:, mask] > skull[mask]).all(), f"{(sample[:, mask] <= skull[mask]).sum()} pixels inside bone"


def load_as_saved_before_the_option(model, folder) -> object:  # noqa: ANN001 (a GAN or a diffusion model)
    """Save an absolute model, drop `relative_to_bone` from its record (as a model saved before the option) and load
    it again: it must load as absolute."""
    import json

    model.save(folder)
    record_path = folder / "model.json"
    record = json.loads(record_path.read_text())
    assert "log_tissue" not in record
    record["options"].pop("relative_to_bone")
    record_path.write_text(json.dumps(record))
    old = type(model).load(folder)
    assert not old.relative_to_bone and old.scale is None
    return old
