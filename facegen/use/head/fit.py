"""Fit the complete head to a reconstructed face: pose and identity modes first, then a smooth residual.

No landmarks: the model's face region is matched to the nearest points of the reconstructed face (ICP), and
the pose (rigid, or a similarity) and the identity weights are solved together on those matches
(`facegen.use.head.align`), with the match distance tightening round by round. What the modes cannot follow,
a smooth displacement field closes (`facegen.use.head.residual`). The eyeballs move with the modes and then
rigidly with their eye openings, the eyelashes with the lid they grow from. Everything is deterministic: the
same face gives the same head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from facegen.use.head.align import Similarity, pose_and_identity_step
from facegen.use.head.model import EYE_PARTS, HeadModel, Part, load_head_model
from facegen.use.head.regions import fit_region
from facegen.use.head.residual import fade_weights, graph_laplacian, smooth_field
from facegen.use.head.spread import NOT_ESTIMATED, SD_REACH_MM, checked_face_sd, head_spread
from facegen.use.head.target import TargetFace

MATCH_DISTANCE_MM = (20.0, 4.0)
"""Matches may reach 20 mm in the first round (the head starts as the mean, posed in the canonical frame),
tightening to 4 mm in the last."""
STIFFNESS = (30.0, 10.0, 3.0, 1.0)
"""The residual field is solved in rounds, each on fresh matches, from stiff (broad corrections) to supple."""
RESIDUAL_MATCH_MM = 6.0
"""How far the residual rounds look for the face: the modes have brought the skin close."""
NOISE_MM = 3.0
"""How far a match is trusted against the modes' prior: matches are dense and correlated, not independent, so
1 mm per match would let the face region pull the weights far past the prior (RMS ~1.7 on synthetic heads);
3 mm keeps their spread near the prior's (RMS 0.8-0.9) and leaves the rest to the smooth residual."""
MIN_MATCHES = 200
"""Fewer matched face-region vertices than this: the face is not where a head's face would be."""


@dataclass(frozen=True)
class HeadFit:
    """A complete head fitted to a reconstructed face, in the canonical frame (mm).

    `mesh`: skin, eyeballs and eyelashes in the ICT topology (parts in `model.part`). `identity` (K,): mode
    weights; `pose`: the similarity applied to the model; `residual_mm` (V, 3): the smooth displacement added
    after the modes. `fit_region` (V,): skin vertices fitted to the face; `distance_mm` (V,): their exact
    distance to the face (NaN elsewhere), `covered` (V,): whether that distance is to the inside of the face
    surface rather than to its border. `sd_mm` (V,): the face's spread carried over (NaN: not estimated).
    """

    model: HeadModel
    mesh: trimesh.Trimesh
    identity: np.ndarray
    pose: Similarity
    residual_mm: np.ndarray
    fit_region: np.ndarray
    distance_mm: np.ndarray
    covered: np.ndarray
    sd_mm: np.ndarray | None

    @property
    def residual_mean_mm(self) -> float:
        """Mean distance (mm) from the fitted face region to the reconstructed face, where the face covers it."""
        return float(np.mean(self.distance_mm[self.fit_region & self.covered]))

    @property
    def residual_p95_mm(self) -> float:
        """95th percentile of that distance (mm)."""
        return float(np.percentile(self.distance_mm[self.fit_region & self.covered], 95))

    def record(self) -> dict[str, Any]:
        """What the fit did and how close it came, as plain values for a case's JSON record."""
        covered = self.fit_region & self.covered
        moved = np.linalg.norm(self.residual_mm, axis=1)
        sd = {"statement": "the reconstruction gave no spread", "estimated_vertices": 0}
        if self.sd_mm is not None:
            known = np.isfinite(self.sd_mm)
            sd = {
                "source": f"the reconstructed face's spread at the nearest face point (within {SD_REACH_MM:g} mm)",
                "estimated_vertices": int(known.sum()),
                "median_mm": round(float(np.median(self.sd_mm[known])), 3) if known.any() else None,
                "p95_mm": round(float(np.percentile(self.sd_mm[known], 95)), 3) if known.any() else None,
                "elsewhere": NOT_ESTIMATED,
            }
        return {
            "model": "ICT Face Model Light (USC ICT, MIT licence): skin, eyeballs, eyelashes",
            "frame": "facegen canonical (mm)",
            "identity_modes": len(self.identity),
            "identity_weights": [round(float(w), 4) for w in self.identity],
            "scale": round(self.pose.scale, 5),
            "fit_region_vertices": int(self.fit_region.sum()),
            "covered_fraction": round(float(covered.sum() / max(self.fit_region.sum(), 1)), 4),
            "residual_mean_mm": round(self.residual_mean_mm, 3),
            "residual_p95_mm": round(self.residual_p95_mm, 3),
            "residual_field_mean_mm": round(float(moved[self.fit_region].mean()), 3),
            "residual_field_max_mm": round(float(moved.max()), 3),
            "uncertainty": sd,
        }


def _skin_normals(model: HeadModel, vertices: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals of the skin (zero on eyes and lashes)."""
    normals = np.zeros_like(vertices)
    skin = model.skin_mesh(vertices).vertex_normals
    normals[: len(skin)] = skin
    return normals


def shading_normals(model: HeadModel, vertices: np.ndarray) -> np.ndarray:
    """(V, 3) vertex normals for shading, with each eyelash taking its lid's normal: the model's lashes are
    cards made for see-through textures, and lit as cards they would read as flaps of skin."""
    normals = np.array(trimesh.Trimesh(vertices, model.triangles, process=False).vertex_normals)
    normals[model.mask(Part.EYELASHES)] = normals[model.lash_anchor]
    return normals


def _pose_and_identity(model: HeadModel, target: TargetFace, region: np.ndarray, *, iterations: int,
                       noise_mm: float, with_scale: bool) -> tuple[Similarity, np.ndarray]:  # fmt: skip
    """Pose and identity weights, solved together round by round on matches that tighten."""
    pose, identity = Similarity.identity(), np.zeros(model.n_modes)
    mean, modes = model.mean[region], model.modes[:, region]
    for reach in np.geomspace(*MATCH_DISTANCE_MM, iterations):
        posed = pose.apply(model.shape(identity))
        found = target.match(posed[region], _skin_normals(model, posed)[region], max_distance_mm=reach)
        if found.valid.sum() < MIN_MATCHES:
            raise ValueError(
                f"only {int(found.valid.sum())} face-region points of the head found the face within {reach:.0f} mm; "
                "is the face mesh in the canonical frame (mm, facing +z)?"
            )
        ok = found.valid
        pose, identity = pose_and_identity_step(pose, identity, mean[ok], modes[:, ok], found.point[ok],
                                                found.normal[ok], noise_mm=noise_mm, with_scale=with_scale)  # fmt: skip
    return pose, identity


def _residual(model: HeadModel, target: TargetFace, region: np.ndarray, posed: np.ndarray) -> np.ndarray:
    """(V, 3) the smooth displacement of the skin onto the face, faded away from the region, carried to the
    eyeballs (the mean over each eye's rim) and the lashes (their root's)."""
    n_skin = int(model.skin.sum())
    laplacian = graph_laplacian(model.skin_mesh(posed).faces, n_skin)
    to_region, _ = cKDTree(model.mean[region]).query(model.mean[:n_skin])
    fade = fade_weights(to_region)
    field = np.zeros((n_skin, 3))
    for stiffness in STIFFNESS:
        moved = posed.copy()
        moved[:n_skin] += field
        normals = _skin_normals(model, moved)
        found = target.match(moved[region], normals[region], max_distance_mm=RESIDUAL_MATCH_MM)
        offsets, weights = np.zeros((n_skin, 3)), np.zeros(n_skin)
        index = np.nonzero(region)[0][found.valid]
        offsets[index] = (found.point - moved[region])[found.valid]
        weights[index] = 1.0
        field += fade[:, None] * smooth_field(laplacian, offsets, weights, stiffness=stiffness)
    out = np.zeros_like(posed)
    out[:n_skin] = field
    for side, rim in enumerate(model.eye_rims):
        out[model.mask(*EYE_PARTS[2 * side : 2 * side + 2])] = field[rim].mean(axis=0)
    out[model.mask(Part.EYELASHES)] = field[model.lash_anchor]
    return out


def fit_head(
    face_mesh_canonical: trimesh.Trimesh, *, face_sd_mm: np.ndarray | None = None, n_modes: int = 60,
    iterations: int = 12, noise_mm: float = NOISE_MM, with_scale: bool = False, model: HeadModel | None = None,
) -> HeadFit:  # fmt: skip
    """Fit the complete ICT head to a reconstructed face in the canonical frame (mm): an open surface facing +z
    such as `depth_map_mesh` makes, or a 3D model's closed head surface.

    `face_sd_mm` (N,): the face's spread per face vertex, carried over to the head. `n_modes` identity modes (those
    of `model` when one is given) are fitted over `iterations` rounds of matching, with matches trusted to
    `noise_mm` against the modes' prior; `with_scale` adds one scale to the pose (the modes already carry size).
    Then the smooth residual closes the rest.
    """
    if iterations < 2:
        raise ValueError(f"iterations must be at least 2, got {iterations}")
    target = TargetFace(face_mesh_canonical)
    face_sd = checked_face_sd(face_sd_mm, len(target.mesh.vertices))
    model = model or load_head_model(n_modes)
    region = fit_region(model)
    pose, identity = _pose_and_identity(model, target, region, iterations=iterations, noise_mm=noise_mm,
                                        with_scale=with_scale)  # fmt: skip
    posed = pose.apply(model.shape(identity))
    residual = _residual(model, target, region, posed)
    vertices = posed + residual
    distance = np.full(len(vertices), np.nan)
    covered = np.zeros(len(vertices), bool)
    distance[region], covered[region] = target.surface_distance(vertices[region])
    if not covered.any():
        raise ValueError("the fitted face region lies nowhere over the inside of the face surface; is it a face?")
    return HeadFit(
        model=model,
        mesh=trimesh.Trimesh(vertices, model.triangles, vertex_normals=shading_normals(model, vertices), process=False),
        identity=identity,
        pose=pose,
        residual_mm=residual,
        fit_region=region,
        distance_mm=distance,
        covered=covered,
        sd_mm=None if face_sd is None else head_spread(model, vertices, target, face_sd),
    )
