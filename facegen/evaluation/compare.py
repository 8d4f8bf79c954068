"""Score trained models on a dataset split, side by side with the dataset's floor.

Every model is scored on the same subjects and pixels: the face region of each true face, intersected
with the pixels the model claims. The floor scores the noise-free face (what the skull and metadata could
at best predict) against the true face over the face region, so a table row reads against what is possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegen.evaluation.metrics import DEPTH_DATA_RANGE_MM, depth_errors, psnr, ssim, summarise
from facegen.models.base import DepthData, FaceModel

FLOOR = "floor (noise-free face)"
TABLE_METRICS = ("mae_mm", "rmse_mm", "signed_mm", "within_2_5mm", "within_5mm", "p95_mm", "ssim", "psnr_db")


@dataclass(frozen=True)
class Scores:
    """Per-subject metric values of one model on one split, and their summary."""

    name: str
    per_subject: dict[str, np.ndarray]
    coverage: float
    """Mean share of the face region the model claims (a model is only scored where it answers)."""

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        return summarise(self.per_subject)


def score_depth(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-subject depth errors, SSIM and PSNR (data range DEPTH_DATA_RANGE_MM) over the mask."""
    values = depth_errors(pred, truth, mask)
    values["ssim"] = ssim(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM)
    values["psnr_db"] = psnr(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM)
    return values


def score_model(name: str, model: FaceModel, data: DepthData, *, seed: int = 0) -> Scores:
    """Reconstruct every subject (the mean of the model's samples) and score it."""
    recs = model.reconstruct_many(data, seed=seed)
    pred = np.stack([r.mean_mm for r in recs])
    claimed = np.stack([r.mask for r in recs]) & data.face_region
    if not claimed.any(axis=(1, 2)).all():
        raise ValueError(f"model {name!r} claims no pixel of the face region for some subjects")
    coverage = float((claimed.sum(axis=(1, 2)) / data.face_region.sum(axis=(1, 2))).mean())
    return Scores(name, score_depth(pred, data.face_depth, claimed), coverage)


def score_floor(data: DepthData) -> Scores | None:
    """The dataset's floor (noise-free vs true face) over the face region; None for real scans."""
    if data.noise_free_face_depth is None:
        return None
    return Scores(FLOOR, score_depth(data.noise_free_face_depth, data.face_depth, data.face_region), 1.0)


def comparison_record(runs: list[Path], data_root: Path, split: str = "test") -> dict[str, Any]:
    """Score every run's model on one split of a dataset; plain values for tables and JSON."""
    from facegen.training.loop import load_run_model

    data = DepthData.load(data_root, split)
    models = []
    for run in runs:
        model = load_run_model(run)
        scores = score_model(Path(run).name, model, data)
        models.append({"name": scores.name, "family": model.family, "run": str(run), "coverage": scores.coverage,
                       "summary": scores.summary})  # fmt: skip
    floor = score_floor(data)
    return {
        "data": str(data_root),
        "split": split,
        "n_subjects": len(data),
        "models": models,
        "floor": None if floor is None else {"name": floor.name, "summary": floor.summary},
    }
