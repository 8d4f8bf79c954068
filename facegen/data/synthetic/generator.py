"""Synthetic heads: a skull from identity, sex and size; the face from the skull, the metadata and chance.

skull = template skull moved by bone-driven fields (ICT identity modes carried to the bone, sexual
dimorphism, size). face = f(skull, sex, age, BMI) + individual variation, where f moves the template face
with the same bone fields, sets tissue depth to its expected value for the metadata and places nose, mouth
and eyes by the published rules; the variation is zero-mean: correlated tissue-depth residuals, soft-tissue
shape the bone does not carry, and the rules' own errors. f(skull, metadata) alone is the noise-free face:
the best any predictor can do, and its distance to the true face is the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import trimesh

from facegen.data.pose import RigidTransform, frankfurt_frame
from facegen.data.subject import GROUPS, Sex, Subject
from facegen.data.synthetic.dimorphism import dimorphism_bumps, dimorphism_displacement, size_displacement
from facegen.data.synthetic.fields import smoothstep
from facegen.data.synthetic.ict import SKIN_VERTEX_COUNT
from facegen.data.synthetic.soft_features import SoftFeatureNoise, SoftFeatureRules
from facegen.data.synthetic.template import BONE_MODES, HeadTemplate, head_template
from facegen.data.synthetic.tissue import MIN_TISSUE_MM, TissueModel, build_tissue_model

GENERATOR_VERSION = "1.0"
SOFT_MODES = 40
"""Identity modes whose fine, soft-tissue part varies independently of the bone (where tissue is thick)."""
NARROW_FACE_VERTICES = 6706
"""ICT's narrow face area (vertices 0-6705): the region where faces are compared and the floor measured."""
_GROUP_SEED = 20261125


@dataclass(frozen=True)
class SyntheticHead:
    """One generated subject in the canonical frame (mm).

    `face` is the true face; `noise_free_face` what skull and metadata imply; `floor_mm` the mean distance
    between them over the narrow face. Landmarks are points by name; `tissue_depth_mm` is measured on the
    meshes (skull reached along the inward skin normal) at the tabled landmarks. `pose` took the generated
    head to the canonical frame.
    """

    subject: Subject
    skull: trimesh.Trimesh
    skull_is_teeth: np.ndarray
    face: trimesh.Trimesh
    noise_free_face: trimesh.Trimesh
    skull_landmarks: dict[str, np.ndarray]
    face_landmarks: dict[str, np.ndarray]
    floor_mm: float
    pose: RigidTransform

    @cached_property
    def tissue_depth_mm(self) -> dict[str, float]:
        """Soft-tissue depth (mm) at each landmark with a paired bone point: skin point to bone point."""
        return {
            name: float(np.linalg.norm(point - self.skull_landmarks[name]))
            for name, point in self.face_landmarks.items()
            if name in self.skull_landmarks
        }


def _group_means() -> dict[str, np.ndarray]:
    """Fixed face-shape means per population group in identity space (first 10 modes, summing to zero)."""
    rng = np.random.default_rng(_GROUP_SEED)
    raw = np.zeros((len(GROUPS), BONE_MODES))
    raw[:, :10] = rng.normal(0.0, 0.7, size=(len(GROUPS), 10))
    raw -= raw.mean(axis=0)
    return dict(zip(GROUPS, raw, strict=True))


class HeadGenerator:
    """Draws synthetic heads; holds the template and everything derived from it once."""

    def __init__(self, template: HeadTemplate | None = None) -> None:
        t = template or head_template()
        self.template = t
        self.skull_lm0 = t.skull_landmark_points(t.skull_vertices)
        self.bumps = dimorphism_bumps(self.skull_lm0)
        self.group_means = _group_means()
        smooth = np.stack([t.warp_face @ t.skin_modes[k] for k in range(SOFT_MODES)])
        soft_weight = smoothstep(t.tissue_mm, 8.0, 16.0)
        self.soft_modes = (t.skin_modes[:SOFT_MODES] - smooth) * soft_weight[None, :, None]
        soft_var = (np.einsum("kvj,vj->kv", self.soft_modes, t.face_normals) ** 2).sum(0)
        self.tissue: TissueModel = build_tissue_model(t, soft_var)
        self.rules = SoftFeatureRules(t.face_vertices, t.face_landmarks, self.skull_lm0, t.eye_centres)
        self.caps = self._cap_rims()

    def _cap_rims(self) -> list[tuple[int, np.ndarray]]:
        tri = self.template.face_triangles
        out = []
        for cap in range(SKIN_VERTEX_COUNT, len(self.template.face_vertices)):
            rim = np.unique(tri[np.any(tri == cap, axis=1)])
            out.append((cap, rim[rim != cap]))
        return out

    def _bone_fields(self, points: np.ndarray, warp, identity: np.ndarray, masculinity: float, size: np.ndarray):
        skin = np.tensordot(identity, self.template.skin_modes[: len(identity)], axes=1)
        return (
            warp @ skin
            + dimorphism_displacement(points, self.bumps, masculinity)
            + size_displacement(points, size[0], size[1])
        )

    def generate(self, subject: Subject, rng: np.random.Generator) -> SyntheticHead:
        """One head for this subject; every random draw comes from `rng`."""
        t = self.template
        male = subject.sex is Sex.MALE
        identity = self.group_means[subject.group] + rng.standard_normal(BONE_MODES)
        masculinity = float(rng.normal(1.0 if male else -1.0, 0.6))
        size = np.array([1.0 + (0.025 if male else -0.025) + rng.normal(0.0, 0.02), (0.03 if male else -0.03)])
        soft = rng.standard_normal(SOFT_MODES)
        residual = self.tissue.residual(rng)
        feature_noise = SoftFeatureNoise.draw(rng)

        skull_v = t.skull_vertices + self._bone_fields(t.skull_vertices, t.warp_skull, identity, masculinity, size)
        skull_lm = t.skull_landmark_points(skull_v)
        moved = t.face_vertices + self._bone_fields(t.face_anchors, t.warp_face, identity, masculinity, size)
        floor_depth = MIN_TISSUE_MM - t.tissue_mm
        shift = self.tissue.mean_shift(subject)
        noise_free = moved + np.maximum(shift, floor_depth)[:, None] * t.face_normals
        noise_free += self.rules.displacement(noise_free, skull_lm, SoftFeatureNoise.none())
        true = moved + np.maximum(shift + residual, floor_depth)[:, None] * t.face_normals
        true += np.tensordot(soft, self.soft_modes, axes=1)
        true += self.rules.displacement(true, skull_lm, feature_noise)
        for face in (noise_free, true):
            for cap, rim in self.caps:
                face[cap] = face[rim].mean(axis=0)

        pose = frankfurt_frame(
            porion_left=skull_lm["porion_l"], porion_right=skull_lm["porion_r"], orbitale_left=skull_lm["orbitale_l"]
        )
        skull = trimesh.Trimesh(pose.apply(skull_v), t.skull_triangles, process=False)
        face_mesh = trimesh.Trimesh(pose.apply(true), t.face_triangles, process=False)
        nf_mesh = trimesh.Trimesh(pose.apply(noise_free), t.face_triangles, process=False)
        floor = float(np.linalg.norm(true - noise_free, axis=1)[:NARROW_FACE_VERTICES].mean())
        return SyntheticHead(
            subject=subject,
            skull=skull,
            skull_is_teeth=t.skull_is_teeth,
            face=face_mesh,
            noise_free_face=nf_mesh,
            skull_landmarks={k: pose.apply(v) for k, v in skull_lm.items()},
            face_landmarks={k: face_mesh.vertices[i] for k, i in t.face_landmarks.items() if i >= 0},
            floor_mm=floor,
            pose=pose,
        )
