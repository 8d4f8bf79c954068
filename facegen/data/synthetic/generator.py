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
from facegen.data.raycast import first_hits
from facegen.data.subject import GROUPS, Sex, Subject
from facegen.data.synthetic.dimorphism import dimorphism_bumps, dimorphism_displacement, size_displacement
from facegen.data.synthetic.fields import skin_to_points_weights, smoothed_normals, smoothstep
from facegen.data.synthetic.skull_variation import WideSkullVariation, check_skull_variation
from facegen.data.synthetic.soft_features import SoftFeatureNoise, SoftFeatureRules
from facegen.data.synthetic.template import (
    BONE_MODES,
    TISSUE_DIRECTION_WIDTH_MM,
    WARP_WIDTH_MM,
    HeadTemplate,
    head_template,
)
from facegen.data.synthetic.tissue import MIN_TISSUE_MM, TissueModel, build_tissue_model

GENERATOR_VERSION = "1.0"
SOFT_MODES = 40
"""Identity modes whose fine, soft-tissue part varies independently of the bone (where tissue is thick)."""
_GROUP_SEED = 20261125
MAX_DRAWS = 20
MASCULINITY_MEAN = 1.0
MASCULINITY_SD = 0.6
"""Masculinity of the bone (brow, chin, gonial angle, forehead): +-1 on average for men/women."""
SIZE_SEX_SHIFT = 0.025
SIZE_SD = 0.01
"""Skull scale is 1 +- 2.5 % by sex, with 1 % individual spread."""
LOWER_FACE_STRETCH = 0.03
"""Vertical stretch of the face below the Frankfurt plane: +3 % men, -3 % women."""
IDENTITY_SD = 0.65
"""Spread of the ICT identity weights: the full model (SD 1) spreads skull breadth and length about twice as
widely as adult samples do (cfr-facts section 5: SD ~6-7 mm); 0.65 brings them to the measured spread."""


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


def skull_inside_face(skull: trimesh.Trimesh, face: trimesh.Trimesh, *, margin_mm: float = 0.5) -> bool:
    """Whether skin covers every skull vertex by at least `margin_mm` as seen from the front.

    The frontal view is the one the depth maps take and the one where thin lips over incisors can fail.
    """
    # only skull points facing forward can be the first bone seen along a frontal ray; the rest lie behind them
    v = skull.vertices[skull.vertex_normals[:, 2] > 0.0]
    start = face.bounds[1, 2] + 10.0
    origins = np.column_stack([v[:, 0], v[:, 1], np.full(len(v), start)])
    distance, _ = first_hits(face, origins, np.array([0.0, 0.0, -1.0]))
    return bool(np.all(start - distance >= v[:, 2] + margin_mm))


def _group_means() -> dict[str, np.ndarray]:
    """Fixed face-shape means per population group in identity space (first 10 modes, summing to zero)."""
    rng = np.random.default_rng(_GROUP_SEED)
    raw = np.zeros((len(GROUPS), BONE_MODES))
    raw[:, :10] = rng.normal(0.0, 0.7, size=(len(GROUPS), 10))
    raw -= raw.mean(axis=0)
    return dict(zip(GROUPS, raw, strict=True))


class HeadGenerator:
    """Draws synthetic heads; holds the template and everything derived from it once.

    `skull_variation`: "standard" (the default, what every dataset so far used) or "wide" (published
    craniometric variation, asymmetry, tooth loss and the bone seen through the openings: `skull_variation`).
    """

    def __init__(self, template: HeadTemplate | None = None, *, skull_variation: str = "standard") -> None:
        t = template or head_template()
        self.template = t
        self.skull_variation = check_skull_variation(skull_variation)
        self.skull_lm0 = t.skull_landmark_points(t.skull_vertices)
        self.wide = WideSkullVariation(t, self.skull_lm0) if skull_variation == "wide" else None
        self.bumps = dimorphism_bumps(self.skull_lm0)
        self.group_means = _group_means()
        self.rules = SoftFeatureRules(t.face_vertices, t.face_landmarks, self.skull_lm0, t.eye_centres)
        self.caps = self._cap_rims()
        nose = self.rules.soft_nose_mask()
        self.tissue_weight = (1.0 - nose) * (1.0 - self._inner_mouth_mask())
        # the cartilaginous nose rides on the bone around the nasal aperture as one piece
        aperture = 0.5 * (self.skull_lm0["rhinion"] + self.skull_lm0["subnasale"])
        self.face_anchors = (1.0 - nose[:, None]) * t.face_anchors + nose[:, None] * aperture
        self.warp_face = skin_to_points_weights(t.face_vertices, self.face_anchors, width_mm=WARP_WIDTH_MM)
        smooth = np.stack([self.warp_face @ t.skin_modes[k] for k in range(SOFT_MODES)])
        soft_weight = smoothstep(t.tissue_mm, 8.0, 16.0)
        self.soft_modes = (t.skin_modes[:SOFT_MODES] - smooth) * soft_weight[None, :, None]
        soft_var = (np.einsum("kvj,vj->kv", self.soft_modes, t.face_normals) ** 2).sum(0)
        self.tissue: TissueModel = build_tissue_model(t, soft_var)
        self.tissue_direction = smoothed_normals(t.face_vertices, t.face_normals, width_mm=TISSUE_DIRECTION_WIDTH_MM)

    def _inner_mouth_mask(self) -> np.ndarray:
        """1 on the lips' inner surfaces (facing the mouth, not the world), fading to 0 on the outer lips.

        Tissue-depth changes thicken the lips outward; the inner surfaces lie against the teeth and gums and
        move with the bone, so the lips never close over (or open onto) the teeth."""
        t = self.template
        stomion = t.face_vertices[t.face_landmarks["stomion"]]
        near = np.exp(-0.5 * (((t.face_vertices - stomion) / np.array([30.0, 14.0, 20.0])) ** 2).sum(axis=1))
        facing_in = 1.0 - smoothstep(t.face_normals[:, 2], 0.2, 0.6)
        return np.clip(2.0 * near, 0.0, 1.0) * facing_in

    def _cap_rims(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        tri = self.template.face_triangles
        out = []
        for cap in self.template.face_caps:
            rim = np.unique(tri[np.any(tri == cap, axis=1)])
            rim = rim[rim != cap]
            out.append((cap, rim, self.template.face_vertices[cap] - self.template.face_vertices[rim].mean(axis=0)))
        return out

    def bone_fields(self, points: np.ndarray, warp, identity: np.ndarray, masculinity: float, size: np.ndarray):
        """Displacement (N, 3) of points by the bone fields: linear in identity, masculinity and size - 1."""
        skin = np.tensordot(identity, self.template.skin_modes[: len(identity)], axes=1)
        return (
            warp @ skin
            + dimorphism_displacement(points, self.bumps, masculinity)
            + size_displacement(points, size[0], size[1])
        )

    def generate(self, subject: Subject, rng: np.random.Generator) -> SyntheticHead:
        """One head for this subject; every random draw comes from `rng`.

        A draw whose skin would cut through the skull (rare: very thin lips over prominent incisors) is not a
        possible head; it is drawn again from the same stream, so the result stays reproducible.
        """
        for _ in range(MAX_DRAWS):
            head = self._draw(subject, rng)
            if skull_inside_face(head.skull, head.face) and skull_inside_face(head.skull, head.noise_free_face):
                return head
        raise RuntimeError(f"no anatomically valid head found for {subject} in {MAX_DRAWS} draws")

    def _draw(self, subject: Subject, rng: np.random.Generator) -> SyntheticHead:
        t = self.template
        male = subject.sex is Sex.MALE
        identity = self.group_means[subject.group] + IDENTITY_SD * rng.standard_normal(BONE_MODES)
        masculinity = float(rng.normal(MASCULINITY_MEAN if male else -MASCULINITY_MEAN, MASCULINITY_SD))
        scale = 1.0 + (SIZE_SEX_SHIFT if male else -SIZE_SEX_SHIFT) + rng.normal(0.0, SIZE_SD)
        size = np.array([scale, LOWER_FACE_STRETCH if male else -LOWER_FACE_STRETCH])
        soft = rng.standard_normal(SOFT_MODES)
        residual = self.tissue.residual(rng)
        feature_noise = SoftFeatureNoise.draw(rng)
        wide = self.wide.draw(subject, rng) if self.wide is not None else None

        skull_v = t.skull_vertices + self.bone_fields(t.skull_vertices, t.warp_skull, identity, masculinity, size)
        moved = t.face_vertices + self.bone_fields(self.face_anchors, self.warp_face, identity, masculinity, size)
        if wide is not None:  # the same displacement moves the bone and, read at the bone beneath, the skin
            skull_v, bone_shift = self.wide.deform(wide, skull_v, self.face_anchors + moved - t.face_vertices)
            moved += bone_shift
        skull_lm = t.skull_landmark_points(skull_v)
        floor_depth = MIN_TISSUE_MM - t.tissue_mm
        shift = self.tissue.mean_shift(subject) * self.tissue_weight
        residual = residual * self.tissue_weight
        noise_free = moved + np.maximum(shift, floor_depth)[:, None] * self.tissue_direction
        noise_free += self.rules.displacement(noise_free, skull_lm, SoftFeatureNoise.none())
        true = moved + np.maximum(shift + residual, floor_depth)[:, None] * self.tissue_direction
        true += np.tensordot(soft, self.soft_modes, axes=1)
        true += self.rules.displacement(true, skull_lm, feature_noise)
        for face in (noise_free, true):
            for cap, rim, offset in self.caps:
                face[cap] = face[rim].mean(axis=0) + offset

        pose = frankfurt_frame(
            porion_left=skull_lm["porion_l"], porion_right=skull_lm["porion_r"], orbitale_left=skull_lm["orbitale_l"]
        )
        skull_faces, is_teeth = t.skull_triangles, t.skull_is_teeth
        if wide is not None:
            varied = self.wide.skull(wide, skull_v)
            skull_v, skull_faces, is_teeth, skull_lm = varied.vertices, varied.faces, varied.is_teeth, varied.landmarks
        skull = trimesh.Trimesh(pose.apply(skull_v), skull_faces, process=False)
        face_mesh = trimesh.Trimesh(pose.apply(true), t.face_triangles, process=False)
        nf_mesh = trimesh.Trimesh(pose.apply(noise_free), t.face_triangles, process=False)
        floor = float(np.linalg.norm(true - noise_free, axis=1)[t.face_narrow].mean())
        return SyntheticHead(
            subject=subject,
            skull=skull,
            skull_is_teeth=is_teeth,
            face=face_mesh,
            noise_free_face=nf_mesh,
            skull_landmarks={k: pose.apply(v) for k, v in skull_lm.items()},
            face_landmarks={k: face_mesh.vertices[i] for k, i in t.face_landmarks.items() if i >= 0},
            floor_mm=floor,
            pose=pose,
        )
