"""A linear statistical skull (and face) model: the template skull plus weighted modes with prior spreads.

The modes are the synthetic generator's own bone fields (ICT identity carried to the bone, sexual
dimorphism, scale and lower-face stretch), which are linear in their weights. Fitted to a scan, the model
says where the skull's landmarks lie even where the bone itself shows no feature (porion on a coarse CT),
because it moves them together with the whole shape.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import trimesh

from facegen.data.synthetic.generator import (
    IDENTITY_SD,
    LOWER_FACE_STRETCH,
    MASCULINITY_MEAN,
    MASCULINITY_SD,
    SIZE_SD,
    SIZE_SEX_SHIFT,
    HeadGenerator,
)
from facegen.data.synthetic.ict import ASSET
from facegen.io.atomic import write_bytes_atomic
from facegen.io.cache import keyed_cache_file

MODEL_VERTICES = 4000
"""Template skull vertices the model keeps (plus the landmarks' corners): enough to fit, cheap to solve."""
FACE_VERTICES = 1500
FRANKFURT_LANDMARKS = ("porion_l", "porion_r", "orbitale_l", "orbitale_r")


@dataclass(frozen=True)
class SkullShapeModel:
    """vertices(c) = mean + sum_k c_k * sd_k * modes[k], in the canonical frame (mm); c ~ N(0, 1) a priori.

    `normals` (N, 3) are the mean shape's outward unit normals; `is_face` marks skin points (the rest is bone).
    `landmark_vertices` (L, 3) index `mean`'s rows and `landmark_weights` (L, 3) are barycentric weights:
    the landmark `landmark_names[l]` of a fitted shape is weights[l] @ vertices[landmark_vertices[l]].
    """

    mean: np.ndarray
    normals: np.ndarray
    modes: np.ndarray
    sd: np.ndarray
    is_face: np.ndarray
    landmark_names: tuple[str, ...]
    landmark_vertices: np.ndarray
    landmark_weights: np.ndarray

    def vertices(self, coefficients: np.ndarray) -> np.ndarray:
        """Model points (N, 3) for standardised coefficients."""
        return self.mean + np.tensordot(np.asarray(coefficients) * self.sd, self.modes, axes=1)

    def landmarks(self, vertices: np.ndarray) -> dict[str, np.ndarray]:
        """Landmark points of model vertices (any frame the vertices are in)."""
        points = np.einsum("lk,lkj->lj", self.landmark_weights, vertices[self.landmark_vertices])
        return dict(zip(self.landmark_names, points, strict=True))


def _mode_fields(generator: HeadGenerator, anchors: np.ndarray, warp) -> np.ndarray:
    """(M, N, 3) displacement of points per unit weight of each bone field: identity modes, masculinity,
    scale, lower-face stretch (the generator's fields are linear in these)."""
    n_identity = len(next(iter(generator.group_means.values())))
    unit, zero, no_size = np.eye(n_identity), np.zeros(n_identity), np.array([1.0, 0.0])
    modes = [generator.bone_fields(anchors, warp, unit[k], 0.0, no_size) for k in range(n_identity)]
    modes.append(generator.bone_fields(anchors, warp, zero, 1.0, no_size))
    modes.append(generator.bone_fields(anchors, warp, zero, 0.0, np.array([2.0, 0.0])))
    modes.append(generator.bone_fields(anchors, warp, zero, 0.0, np.array([1.0, 1.0])))
    return np.stack(modes)


def build_skull_model(
    generator: HeadGenerator | None = None, *, n_vertices: int = MODEL_VERTICES, n_face: int = FACE_VERTICES
) -> SkullShapeModel:
    """The model from the generator's bone fields, on fixed random subsets of template skull and face vertices.

    The face points (frontal face, forehead to chin) move with the same fields as the bone they lie on;
    soft tissue varies beyond that, so the fit trusts them less. They pin the head's pitch when a scan
    shows little of the skull (a CT cut above the orbits)."""
    g = generator or HeadGenerator()
    t = g.template
    names = [str(n) for n in t.skull_landmark_names]
    corners = t.skull_triangles[t.skull_landmark_triangles]
    rng = np.random.default_rng(0)
    keep = np.unique(np.concatenate([rng.choice(len(t.skull_vertices), n_vertices, replace=False), corners.ravel()]))
    frontal = np.flatnonzero(t.face_narrow & ~np.isin(np.arange(len(t.face_vertices)), t.face_caps))
    keep_face = np.sort(rng.choice(frontal, min(n_face, len(frontal)), replace=False))
    skull_modes = _mode_fields(g, t.skull_vertices[keep], t.warp_skull[keep])
    face_modes = _mode_fields(g, g.face_anchors[keep_face], g.warp_face[keep_face])
    n_identity = len(skull_modes) - 3
    # the population: identity around the group means, masculinity +-1 by sex, scale and stretch by sex
    group_means = np.stack(list(g.group_means.values()))
    identity_mean = group_means.mean(axis=0)
    sd = np.concatenate(
        [
            np.sqrt(IDENTITY_SD**2 + group_means.var(axis=0)),
            [np.hypot(MASCULINITY_MEAN, MASCULINITY_SD), np.hypot(SIZE_SEX_SHIFT, SIZE_SD), LOWER_FACE_STRETCH],
        ]
    )
    modes = np.concatenate([skull_modes, face_modes], axis=1)
    points = np.concatenate([t.skull_vertices[keep], t.face_vertices[keep_face]])
    mean = points + np.tensordot(identity_mean, modes[:n_identity], axes=1)
    template_mesh = trimesh.Trimesh(t.skull_vertices, t.skull_triangles, process=False)
    normals = np.concatenate([np.asarray(template_mesh.vertex_normals)[keep], t.face_normals[keep_face]])
    return SkullShapeModel(
        mean=mean,
        normals=normals,
        modes=modes,
        sd=sd,
        is_face=np.arange(len(points)) >= len(keep),
        landmark_names=tuple(names),
        landmark_vertices=np.searchsorted(keep, corners),
        landmark_weights=np.asarray(t.skull_landmark_barycentric, float),
    )


def _cache_path() -> Path:
    """Cache file named by a hash of the code that builds the model (the synthetic generator's and this
    module's) and of the face model asset, beside the template's cache."""
    data_package = Path(__file__).resolve().parents[1]
    sources = sorted([*data_package.glob("synthetic/*.py"), *data_package.glob("*.py"), Path(__file__)])
    return keyed_cache_file("skull-model", [ASSET, *sources])


def _save(model: SkullShapeModel, path: Path) -> None:
    """Write the model's arrays atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f.name: np.asarray(getattr(model, f.name)) for f in fields(SkullShapeModel)})
    write_bytes_atomic(path, buffer.getvalue())


def _load(path: Path) -> SkullShapeModel:
    with np.load(path) as data:
        values = {f.name: data[f.name] for f in fields(SkullShapeModel)}
    values["landmark_names"] = tuple(str(n) for n in values["landmark_names"])
    return SkullShapeModel(**values)


@lru_cache(maxsize=1)
def skull_model() -> SkullShapeModel:
    """The default model: built once (a few seconds from the cached template, with the head generator), then
    read from $FACEGEN_CACHE by every later process."""
    path = _cache_path()
    if path.is_file():
        return _load(path)
    model = build_skull_model()
    _save(model, path)
    return model
