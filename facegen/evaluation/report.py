"""The evaluation of several models on one test set: accuracy by region, identification and bias.

`evaluate_models` reconstructs every test subject with every model once, then derives all figures from
those faces: core depth metrics, per-region errors and heat maps, identification against a gallery of the
true faces (plus optional distractors), and every metric per group with bootstrap intervals. The floor
(noise-free faces) is scored the same way: its identification is the ceiling any model could reach.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from facegen.data.dataset.layout import DatasetLayout
from facegen.evaluation.bias import bias_table
from facegen.evaluation.calibration import calibration, calibration_of_spread
from facegen.evaluation.embedding import FaceEmbedding, embedding_distances
from facegen.evaluation.identification import face_distances, identification_scores, ranks
from facegen.evaluation.metrics import DEPTH_DATA_RANGE_MM, depth_errors, psnr, ssim, summarise
from facegen.evaluation.regions import error_heat_map, region_errors
from facegen.evaluation.surfaces import score_surfaces
from facegen.models.base import DepthData

BIAS_METRICS = ("mae_mm", "within_2_5mm", "normalised_rank")
"""The per-subject figures the bias section breaks down by group."""
FLOOR = "floor (noise-free face)"
POOL_SIZES = (5, 10)
"""Face pools (line-ups) of 5 and 10, as in the forensic literature."""


def scored_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A report record's rows: each model's figures, then the floor's (when the test set has noise-free faces)."""
    return record["models"] + ([record["floor"]] if record.get("floor") else [])


def score_depth(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-subject depth errors, SSIM and PSNR (data range DEPTH_DATA_RANGE_MM) over the mask."""
    values = depth_errors(pred, truth, mask)
    values["ssim"] = ssim(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM)
    values["psnr_db"] = psnr(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM)
    return values


@dataclass
class ModelFaces:
    """One model's mean face per test subject and the pixels it claims (both (N, H, W)); with K > 1 samples or
    a stated predictive SD, the per-pixel SD (N, H, W) and the calibration of that SD against the true error."""

    name: str
    family: str
    faces: np.ndarray
    claimed: np.ndarray
    run: str = ""
    samples: int = 1
    sd: np.ndarray | None = None
    calibration: dict[str, Any] | None = None
    meshes: list[trimesh.Trimesh | None] | None = None
    """A 3D model's face surfaces, one per subject (None for a depth-map model)."""


@dataclass
class Evaluation:
    """Every figure of a report (`record`, JSON-ready) and the arrays its pictures are drawn from."""

    record: dict[str, Any]
    data: DepthData
    faces: list[ModelFaces]
    heat_maps: dict[str, np.ndarray] = field(default_factory=dict)
    cmc: dict[str, np.ndarray] = field(default_factory=dict)
    sd_maps: dict[str, np.ndarray] = field(default_factory=dict)
    """Mean per-pixel SD over the subjects, for models that gave several samples (beside their heat maps)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage (kept out of the record, so the same inputs give the same report)."""


def reconstruct_all(runs: list[Path], data: DepthData, samples: int | None = None) -> list[ModelFaces]:
    """Each run's model asked once for every subject (seed 0): K samples for a stochastic model (its own
    default unless `samples` is given), whose mean is the face and whose spread is checked against the error."""
    from facegen.models.registry import load_trained

    out = []
    for run in runs:
        model = load_trained(run)
        k = (samples or model.default_samples) if model.stochastic else 1
        recs = model.reconstruct_many(data, seed=0, n_samples=k)
        claimed = np.stack([r.mask for r in recs])
        faces = ModelFaces(Path(run).name, model.family, np.stack([r.mean_mm for r in recs]), claimed, str(run), k)
        if any(r.face_mesh is not None for r in recs):
            faces.meshes = [r.face_mesh for r in recs]
        if k > 1:
            stacked = np.stack([r.face_depth_mm for r in recs])
            faces.sd = stacked.std(axis=1, ddof=1)
            faces.calibration = calibration(stacked, data.face_depth, claimed & data.face_region)
        elif recs[0].predictive_sd_mm is not None:
            faces.sd = np.stack([r.predictive_sd_mm for r in recs])
            faces.calibration = calibration_of_spread(faces.faces, faces.sd, data.face_depth,
                                                      claimed & data.face_region)  # fmt: skip
        out.append(faces)
    return out


@dataclass(frozen=True)
class Gallery:
    """The true faces each reconstruction is matched against (test set + distractors), and their embeddings."""

    faces: np.ndarray
    masks: np.ndarray
    embedding: FaceEmbedding | None = None
    embedded: np.ndarray | None = None


def _score(faces: np.ndarray, claimed: np.ndarray, data: DepthData, gallery: Gallery,
           seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray, np.ndarray]:  # fmt: skip
    """Figures of one set of faces: summary, per-subject values, heat map and CMC."""
    mask = claimed & data.face_region
    if not mask.any(axis=(1, 2)).all():
        raise ValueError("a model claims no pixel of the face region for some subjects")
    per_subject = score_depth(faces, data.face_depth, mask)
    distances = face_distances(faces, mask, gallery.faces, gallery.masks)
    pools = tuple(size for size in POOL_SIZES if size <= distances.shape[1])  # a pool cannot outgrow the gallery
    identification = identification_scores(distances, pools=pools, seed=seed)
    per_subject["normalised_rank"] = (ranks(distances) - 1) / max(distances.shape[1] - 1, 1)
    regions = region_errors(faces, data.face_depth, mask, data.view)
    heat, _ = error_heat_map(faces, data.face_depth, mask)
    figures = {
        "metrics": summarise(per_subject),
        "coverage": float((mask.sum(axis=(1, 2)) / data.face_region.sum(axis=(1, 2))).mean()),
        "regions": {name: {k: _nan_summary(v) for k, v in values.items()} for name, values in regions.items()},
        "identification": identification,
        "bias": bias_table({k: per_subject[k] for k in BIAS_METRICS}, data.subjects, seed=seed),
    }
    if gallery.embedding is not None:
        embedded = embedding_distances(gallery.embedding.embed(faces, mask), gallery.embedded)
        figures["identification_embedding"] = identification_scores(embedded, pools=pools, seed=seed)
    return figures, per_subject, heat, np.asarray(identification["cmc"])


def true_surfaces(data: DepthData, name: str = "face.ply") -> list[trimesh.Trimesh] | None:
    """Each subject's face mesh (canonical frame) from the dataset folder; None where any is missing."""
    if data.source is None:
        return None
    paths = [DatasetLayout(data.source.root).subject_dir(s.subject_id) / name for s in data.subjects]
    if not all(p.is_file() for p in paths):
        return None
    return [trimesh.load(p, force="mesh", process=False) for p in paths]


def _score_surfaces_3d(faces: list[ModelFaces], models: list[dict[str, Any]], floor: dict[str, Any] | None,
                       data: DepthData, seed: int) -> None:  # fmt: skip
    """Surface distances of every 3D output against the true face meshes (and of the noise-free faces, the
    floor), added to their records as "surface"; subjects whose model gave no surface are counted as missing."""
    truths = true_surfaces(data)
    pairs = [(m.meshes, record) for m, record in zip(faces, models, strict=True) if m.meshes is not None]
    if truths is None:  # e.g. scans ingested without their skin: the depth-map figures still stand
        for _, record in pairs:
            record["surface"] = {"missing": len(data), "note": "no true face mesh (subjects/ID/face.ply) for "
                                                               "every test subject"}  # fmt: skip
        return
    noise_free = true_surfaces(data, "noise_free_face.ply") if floor is not None else None
    if noise_free is not None:
        pairs.append((noise_free, floor))
    for meshes, record in pairs:
        values = score_surfaces(meshes, truths, seed=seed)
        scored = np.isfinite(values["surface_mean_mm"])
        record["surface"] = {"missing": int((~scored).sum())}
        if scored.any():
            record["surface"]["metrics"] = summarise({k: v[scored] for k, v in values.items()})
            subjects = [s for s, ok in zip(data.subjects, scored, strict=True) if ok]
            record["bias"]["surface_mean_mm"] = bias_table({"surface_mean_mm": values["surface_mean_mm"][scored]},
                                                           subjects, seed=seed)["surface_mean_mm"]  # fmt: skip


def _nan_summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if v.size else float("nan"), "n": int(v.size)}


def evaluate_models(
    runs: list[Path],
    data_root: Path,
    split: str | None = "test",
    *,
    distractors: Path | None = None,
    seed: int = 0,
    samples: int | None = None,
    embedding_data: Path | None = None,
) -> Evaluation:
    """Score every run on one split; distractors (another dataset's faces) enlarge the gallery; `samples` per
    face from stochastic models (None: each model's own default); `embedding_data`, a dataset whose train
    split fits a face embedding that identifies the faces a second way."""
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    data = DepthData.load(data_root, split)
    if data.view is None:
        raise ValueError(f"{data_root} has no depth-map view in its card")
    gallery, gallery_masks = data.face_depth, data.face_region
    n_distractors, embedding = 0, None
    if distractors is not None:
        extra = DepthData.load(distractors, None)
        if extra.face_depth.shape[1:] != gallery.shape[1:]:
            raise ValueError(f"distractor faces are {extra.face_depth.shape[1:]}, the test faces {gallery.shape[1:]}")
        gallery = np.concatenate([gallery, extra.face_depth])
        gallery_masks = np.concatenate([gallery_masks, extra.face_region])
        n_distractors = len(extra)
    if embedding_data is not None:
        embedding = _fit_embedding(embedding_data, data_root, split, gallery.shape[1:])
    embedded = embedding.embed(gallery, gallery_masks) if embedding is not None else None
    matcher = Gallery(gallery, gallery_masks, embedding, embedded)
    started = time.perf_counter()
    faces = reconstruct_all(runs, data, samples)
    evaluation = Evaluation({}, data, faces, seconds={"reconstruction": time.perf_counter() - started})
    started = time.perf_counter()
    models = []
    for model in faces:
        figures, _, heat, cmc = _score(model.faces, model.claimed, data, matcher, seed)
        figures["samples"] = model.samples
        if model.calibration is not None:
            figures["calibration"] = model.calibration
        models.append({"name": model.name, "family": model.family, "run": model.run} | figures)
        evaluation.heat_maps[model.name], evaluation.cmc[model.name] = heat, cmc
        if model.sd is not None:  # mean SD per pixel: the "error" of the SD map against zero
            evaluation.sd_maps[model.name], _ = error_heat_map(model.sd, np.zeros_like(model.sd),
                                                               model.claimed & data.face_region)  # fmt: skip
    floor = None
    if data.noise_free_face_depth is not None:
        nf = data.noise_free_face_depth
        figures, _, heat, cmc = _score(nf, np.ones_like(data.face_region), data, matcher, seed)
        floor = {"name": FLOOR} | figures
        evaluation.heat_maps[FLOOR], evaluation.cmc[FLOOR] = heat, cmc
    if any(model.meshes is not None for model in faces):
        _score_surfaces_3d(faces, models, floor, data, seed)
    evaluation.seconds["scoring"] = time.perf_counter() - started
    evaluation.record = {
        "data": str(data_root),
        "split": split or "all",
        "n_subjects": len(data),
        "gallery": {"size": len(gallery), "distractors": n_distractors},
        "seed": seed,
        "models": models,
        "floor": floor,
    }
    if embedding is not None:
        evaluation.record["embedding"] = {"data": str(embedding_data), "split": "train", "faces": embedding.n_faces,
                                          "components": len(embedding.basis), "whiten": embedding.whiten}  # fmt: skip
    return evaluation


def _fit_embedding(root: Path, test_root: Path, test_split: str | None, shape: tuple[int, ...]) -> FaceEmbedding:
    """Eigenfaces of the true faces of `root`'s train split, which must not hold the faces under test."""
    same = Path(root).resolve() == Path(test_root).resolve()
    if same and test_split in (None, "train"):
        raise ValueError(f"the embedding is fitted on {root}'s train split, which is (part of) the test set: fit "
                         "it on other faces (the models' training set)")  # fmt: skip
    train = DepthData.load(root, "train")
    if train.face_depth.shape[1:] != tuple(shape):
        raise ValueError(f"embedding faces are {train.face_depth.shape[1:]}, the test faces {tuple(shape)}")
    return FaceEmbedding.fit(train.face_depth, train.face_mask & train.face_region)
