"""The template head: the mean ICT face with a sculpted skull under it, in the canonical frame.

Built once (about a minute) and cached under $FACEGEN_CACHE (default ~/.cache/facegen). Every synthetic
subject is this template moved by smooth fields (identity, size, sexual dimorphism), so face and skull stay
in register and the ground truth is known exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import trimesh
from filelock import FileLock
from scipy import sparse

from facegen.data.pose import frankfurt_frame
from facegen.data.raycast import first_hits
from facegen.data.synthetic.fields import (
    skin_to_points_weights,
    smoothstep,
    spread_landmark_values,
)
from facegen.data.synthetic.ict import ASSET, load_face_model
from facegen.data.synthetic.landmarks import FRONTAL, place_face_landmarks
from facegen.data.synthetic.skull_sculpt import (
    EYEBALL_ABOVE_ORBIT_CENTRE_MM,
    EYEBALL_LATERAL_OF_ORBIT_CENTRE_MM,
    sculpt_skull,
)
from facegen.data.synthetic.tissue_table import FSTT_TABLE
from facegen.io.atomic import write_bytes_atomic
from facegen.io.cache import keyed_cache_file

TEMPLATE_VERSION = "1"
BONE_MODES = 60
"""ICT identity modes that shape the skull (and the face with it)."""
TISSUE_BACKGROUND_MM = 6.0  # scalp over the vault, away from the tabled landmarks
TISSUE_WIDTH_MM = 16.0
WARP_WIDTH_MM = 10.0
TISSUE_DIRECTION_WIDTH_MM = 8.0
"""Tissue depth is measured, and grows, along face normals smoothed over this width."""
MAX_AIMING_ROUNDS = 5
AIM_TOLERANCE_MM = 0.3


@dataclass(frozen=True)
class HeadTemplate:
    """Template arrays in the canonical frame (mm).

    face_*: the closed ICT skin; `face_normals` outward; `tissue_mm` the mean tissue depth under each face
    vertex; `face_anchors` where bone-driven fields are read for each face vertex (the bone point beneath).
    skull_*: bone and teeth as one mesh, `skull_is_teeth` per vertex. `face_landmarks`: vertex index per
    name; `skull_landmark_*`: points on the skull as (triangle, barycentric) so they follow its vertices.
    `skin_modes` (K, V, 3): identity modes on the face; `warp_skull`: sparse (P, V) weights;
    `eye_centres` (2, 3): eyeball centres, left then right;
    `face_narrow`: the face area compared between faces; `face_caps`: vertices that close eyes, lips, neck.
    """

    face_vertices: np.ndarray
    face_triangles: np.ndarray
    face_normals: np.ndarray
    face_anchors: np.ndarray
    tissue_mm: np.ndarray
    skin_modes: np.ndarray
    skull_vertices: np.ndarray
    skull_triangles: np.ndarray
    skull_is_teeth: np.ndarray
    face_landmark_names: np.ndarray
    face_landmark_vertices: np.ndarray
    skull_landmark_names: np.ndarray
    skull_landmark_triangles: np.ndarray
    skull_landmark_barycentric: np.ndarray
    eye_centres: np.ndarray
    face_narrow: np.ndarray
    face_caps: np.ndarray
    warp_skull: sparse.csr_matrix

    @property
    def face_landmarks(self) -> dict[str, int]:
        """Face vertex index per landmark name."""
        return dict(zip(self.face_landmark_names.tolist(), self.face_landmark_vertices.tolist(), strict=True))

    def skull_landmark_points(self, skull_vertices: np.ndarray) -> dict[str, np.ndarray]:
        """Skull landmarks of a skull with this template's topology."""
        corners = skull_vertices[self.skull_triangles[self.skull_landmark_triangles]]
        points = np.einsum("lk,lkj->lj", self.skull_landmark_barycentric, corners)
        return dict(zip(self.skull_landmark_names.tolist(), points, strict=True))


def _table_means() -> dict[str, float]:
    """The table's mean depth per landmark name (both sides for bilateral landmarks)."""
    out = {}
    for row in FSTT_TABLE:
        for name in [f"{row.name}_l", f"{row.name}_r"] if row.bilateral else [row.name]:
            out[name] = row.mean_mm
    return out


def _table_tissue(face: trimesh.Trimesh, landmarks: dict[str, int], values: dict[str, float]) -> np.ndarray:
    """Tissue depth per face vertex spread from per-landmark values."""
    pts = face.vertices[[landmarks[n] for n in values]]
    return spread_landmark_values(
        face.vertices, pts, np.array(list(values.values())), background=TISSUE_BACKGROUND_MM, width_mm=TISSUE_WIDTH_MM
    )


def _deepen_soft_regions(face: trimesh.Trimesh, tissue: np.ndarray, lm: dict[str, int]) -> np.ndarray:
    """Under the soft nose the bone is the flat midface, and over the temporal fossa the temporalis is thick."""
    v = face.vertices
    rh, sn = v[lm["rhinion"]], v[lm["subnasale"]]
    frac = np.clip((rh[1] - 4.0 - v[:, 1]) / (rh[1] - 4.0 - sn[1]), 0.0, 1.0)
    plane_z = (rh[2] - 16.0) * (1 - frac) + (sn[2] - 11.5) * frac
    w = (
        (1 - smoothstep(np.abs(v[:, 0]), 20.0, 30.0))
        * smoothstep(v[:, 1], sn[1] - 4.0, sn[1])
        * (1 - smoothstep(v[:, 1], rh[1] - 6.0, rh[1] - 2.0))
    )
    tissue = tissue + w * np.maximum(0.0, v[:, 2] - plane_z - tissue)
    for side in ("l", "r"):
        zy = v[lm[f"zygion_{side}"]]
        centre = np.array([0.0, zy[1] + 24.0, zy[2] - 2.0])
        d = (v[:, 1:] - centre[1:]) / np.array([8.0, 10.0])
        lateral = smoothstep(np.sign(zy[0]) * v[:, 0], 45.0, 60.0)
        tissue = tissue + 9.0 * lateral * np.exp(-0.5 * (d**2).sum(1))
    return tissue


def _anatomy_points(face: trimesh.Trimesh, tissue: np.ndarray, lm: dict[str, int], eyes: np.ndarray) -> dict:
    """Named bone points (ICT frame) that place the skull's openings and cuts."""
    v, n = face.vertices, face.vertex_normals
    bone = {name: v[i] - tissue[i] * n[i] for name, i in lm.items()}
    occlusal = v[lm["stomion"]][1]
    p = {
        "rhinion_bone": bone["rhinion"],
        "nasospinale": bone["subnasale"] + np.array([0.0, 1.5, 0.0]),
        "occlusal_y": occlusal,
        "upper_gum_y": occlusal + 11.0,
        "lower_gum_y": occlusal - 11.0,
        "molar_end_z": bone["supra_m2_l"][2] - 9.0,
        "arch_centre_z": bone["labrale_superius"][2] - 45.0,
        "ramus_front_z": bone["mid_ramus_l"][2] + 14.0,
        "ramus_back_z": bone["mid_ramus_l"][2] - 14.0,
        "arch_bottom_y": bone["zygion_l"][1] - 7.0,
        "notch_y": bone["zygion_l"][1] - 13.0,
        "menton_bone": bone["menton"],
        "gonion_bone": bone["gonion_l"],
        "skull_base_y": v[lm["tragion_l"]][1] - 30.0,
    }
    for side, eye in zip(("l", "r"), eyes, strict=True):
        lateral = np.sign(eye[0]) * EYEBALL_LATERAL_OF_ORBIT_CENTRE_MM
        p[f"orbit_centre_{side}"] = eye - np.array([lateral, EYEBALL_ABOVE_ORBIT_CENTRE_MM, 0.0])
    return p


STRAIGHT_BACK = FRONTAL | {"alare_l", "alare_r"}
"""Face landmarks whose bone is found straight back (-z): the midline points of lips and chin, measured in the
midsagittal plane, and the alae, which face sideways: their inward normal crosses the soft nose to the bone
of the other side."""


def _skull_landmarks(face: trimesh.Trimesh, skull: trimesh.Trimesh, lm: dict[str, int], p: dict) -> dict:
    """Skull landmarks: bone beneath each face landmark along the inward normal (straight back for
    `STRAIGHT_BACK`), plus porion and orbitale."""
    out = {}
    for name, i in lm.items():
        normal = np.array([0.0, 0.0, 1.0]) if name in STRAIGHT_BACK else face.vertex_normals[i]
        # the midline ray may pass between the central incisors: try beside it too
        origins = face.vertices[i] + 0.5 * normal + np.array([[0.0, 0, 0], [1.2, 0, 0], [-1.2, 0, 0]])
        d, tri = first_hits(skull, origins, -normal)
        if np.any(tri >= 0):
            k = int(np.nanargmin(np.where(tri >= 0, d, np.inf)))
            out[name] = (origins[k] - d[k] * normal, tri[k])
    for side, sign in (("l", 1.0), ("r", -1.0)):
        ear = face.vertices[lm[f"tragion_{side}"]] + np.array([0.0, -14.0, -8.0])
        origin = ear + np.array([sign * 60.0, 0.0, 0.0])
        d, tri = first_hits(skull, origin[None], np.array([-sign, 0.0, 0.0]))
        out[f"porion_{side}"] = (origin + d[0] * np.array([-sign, 0.0, 0.0]), tri[0])
        c = p[f"orbit_centre_{side}"]
        origin = np.array([c[0], c[1], c[2] + 40.0])
        target = c + np.array([0.0, -30.0, 6.0])
        direction = (target - origin) / np.linalg.norm(target - origin)
        d, tri = first_hits(skull, origin[None], direction)
        out[f"orbitale_{side}"] = (origin + d[0] * direction, tri[0])
    for name, (point, tri) in out.items():
        if tri < 0 or not np.all(np.isfinite(point)):
            raise RuntimeError(f"template skull landmark {name} not found")
    return out


def _barycentric(skull: trimesh.Trimesh, points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    return trimesh.triangles.points_to_barycentric(skull.triangles[tris], points)


def build_template() -> HeadTemplate:
    """Sculpt the template skull under the mean ICT face and express everything in the canonical frame."""
    model = load_face_model(n_modes=BONE_MODES)
    face = trimesh.Trimesh(model.mean, model.triangles, process=False)
    lm = place_face_landmarks(face)
    targets = _table_means()
    values = dict(targets)
    best = None
    for _ in range(MAX_AIMING_ROUNDS):  # bone cut around openings can sit off the aimed depth: aim again
        tissue = _deepen_soft_regions(face, _table_tissue(face, lm, values), lm)
        points = _anatomy_points(face, tissue, lm, model.eye_centres)
        sculpted = sculpt_skull(face, tissue, points)
        skull = trimesh.util.concatenate([sculpted.bone, sculpted.teeth])
        skull_lm = _skull_landmarks(face, skull, lm, points)
        error = {
            n: np.linalg.norm(face.vertices[lm[n]] - skull_lm[n][0]) - t for n, t in targets.items() if n in skull_lm
        }
        worst = max(abs(e) for e in error.values()) if len(error) == len(targets) else np.inf
        if best is None or worst < best[0]:
            best = (worst, tissue, sculpted, skull, skull_lm)
        if worst < AIM_TOLERANCE_MM:
            break
        values = {n: max(values[n] - 0.8 * error.get(n, 0.0), 1.0) for n in values}
    worst, tissue, sculpted, skull, skull_lm = best
    if not np.isfinite(worst):
        missing = sorted(set(targets) - set(skull_lm))
        raise RuntimeError(f"template skull has no bone under landmarks {missing}")
    is_teeth = np.r_[np.zeros(len(sculpted.bone.vertices), bool), np.ones(len(sculpted.teeth.vertices), bool)]
    frame = frankfurt_frame(
        porion_left=skull_lm["porion_l"][0],
        porion_right=skull_lm["porion_r"][0],
        orbitale_left=skull_lm["orbitale_l"][0],
    )
    names = sorted(skull_lm)
    missing = {r.name for r in FSTT_TABLE} - {n.removesuffix("_l").removesuffix("_r") for n in names}
    if missing:
        raise RuntimeError(f"template skull has no bone under landmarks {sorted(missing)}")
    anchors = face.vertices - np.minimum(tissue, 25.0)[:, None] * face.vertex_normals
    face_c = frame.apply(face.vertices)
    skull_c = frame.apply(skull.vertices)
    tri_ids = np.array([skull_lm[n][1] for n in names])
    bary = _barycentric(skull, np.stack([skull_lm[n][0] for n in names]), tri_ids)
    return HeadTemplate(
        face_vertices=face_c,
        face_triangles=model.triangles,
        face_normals=frame.apply_to_vectors(face.vertex_normals),
        face_anchors=frame.apply(anchors),
        tissue_mm=tissue,
        skin_modes=frame.apply_to_vectors(model.modes),
        skull_vertices=skull_c,
        skull_triangles=np.asarray(skull.faces),
        skull_is_teeth=is_teeth,
        face_landmark_names=np.array(sorted(lm)),
        face_landmark_vertices=np.array([lm[n] for n in sorted(lm)]),
        skull_landmark_names=np.array(names),
        skull_landmark_triangles=tri_ids,
        skull_landmark_barycentric=bary,
        eye_centres=frame.apply(model.eye_centres),
        face_narrow=model.narrow_face,
        face_caps=np.arange(len(model.mean) - len(model.cap_rims), len(model.mean)),
        warp_skull=skin_to_points_weights(face_c, skull_c, width_mm=WARP_WIDTH_MM),
    )


_TEMPLATE_SOURCES = (
    "synthetic/template.py",
    "synthetic/skull_sculpt.py",
    "synthetic/ict.py",
    "synthetic/landmarks.py",
    "synthetic/tissue_table.py",
    "synthetic/fields.py",
    "raycast.py",
    "pose.py",
    "representations/voxel_grid.py",
)
"""The modules (under facegen/data) whose code shapes the template: the cache key hashes them."""


def _cache_path() -> Path:
    """Cache file named by a hash of the code that builds the template and of the model asset."""
    data_package = Path(__file__).resolve().parents[1]
    sources = sorted(p for pattern in _TEMPLATE_SOURCES for p in data_package.glob(pattern))
    return keyed_cache_file(f"head-template-v{TEMPLATE_VERSION}", [ASSET, *sources])


def _save(template: HeadTemplate, path: Path) -> None:
    arrays = {}
    for f in fields(template):
        value = getattr(template, f.name)
        if sparse.issparse(value):
            arrays[f"{f.name}__data"], arrays[f"{f.name}__indices"] = value.data, value.indices
            arrays[f"{f.name}__indptr"], arrays[f"{f.name}__shape"] = value.indptr, np.array(value.shape)
        else:
            arrays[f.name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def _load(path: Path) -> HeadTemplate:
    data = np.load(path)
    values = {}
    for f in fields(HeadTemplate):
        if f.name in data:
            values[f.name] = data[f.name]
        else:
            values[f.name] = sparse.csr_matrix(
                (data[f"{f.name}__data"], data[f"{f.name}__indices"], data[f"{f.name}__indptr"]),
                shape=tuple(data[f"{f.name}__shape"]),
            )
    return HeadTemplate(**values)


_TEMPLATE: HeadTemplate | None = None


def head_template() -> HeadTemplate:
    """The template, from memory, the on-disk cache, or built now (and cached, atomically).

    A lock file lets parallel processes (test workers, dataset workers) wait for one build instead of racing.
    """
    global _TEMPLATE
    if _TEMPLATE is None:
        path = _cache_path()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(path.with_suffix(".lock")):  # portable: fcntl where it exists, msvcrt on Windows
                if not path.is_file():
                    _save(build_template(), path)
        _TEMPLATE = _load(path)
    return _TEMPLATE
