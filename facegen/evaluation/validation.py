"""The figures a training run reports on validation subjects: the trainer is handed this scorer by its caller
(the CLI, the default model's build), so training never imports evaluation."""

from __future__ import annotations

import numpy as np

from facegen.evaluation.metrics import depth_errors
from facegen.models.base import DepthData, FaceModel

VALIDATION_METRICS = ("mae_mm", "rmse_mm", "within_2_5mm")
"""The depth errors a run reports, each as `val_NAME`: the mean over the validation subjects."""


def validation_figures(model: FaceModel, data: DepthData) -> dict[str, float]:
    """Mean depth errors (mm; share for within_2_5mm) over the face region the model claims, on `data`."""
    recs = model.reconstruct_many(data, seed=0)
    pred = np.stack([r.mean_mm for r in recs])
    mask = data.face_region & np.stack([r.mask for r in recs])
    errors = depth_errors(pred, data.face_depth, mask)
    return {f"val_{k}": float(np.mean(v)) for k, v in errors.items() if k in VALIDATION_METRICS}
