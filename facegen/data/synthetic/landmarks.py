"""Where the soft-tissue landmarks sit on the mean ICT face, found by rays from inside the head.

Each landmark is given by a target point (ICT frame, mm, left side for bilateral ones) on the mean face:
a ray from the head's centre toward it meets the skin at the landmark. Targets follow the landmark
definitions (e.g. pogonion: most anterior chin point; zygion: most lateral point of the zygomatic arch)
read against the model's Multi-PIE points (eyes at y ~ 36, nose tip y ~ 4, lip line y ~ -34, chin y ~ -76).
"""

from __future__ import annotations

import numpy as np
import trimesh

from facegen.data.raycast import first_hits

HEAD_CENTRE_ICT_MM = np.array([0.0, 10.0, 20.0])

FACE_LANDMARK_TARGETS_ICT_MM: dict[str, tuple[float, float, float]] = {
    "supraglabella": (0.0, 72.0, 100.0),
    "glabella": (0.0, 55.0, 105.0),
    "nasion": (0.0, 40.0, 105.0),
    "rhinion": (0.0, 20.0, 120.0),
    "pronasale": (0.0, 4.0, 130.0),
    "subnasale": (0.0, -13.0, 113.0),
    "labrale_superius": (0.0, -25.0, 118.0),
    "stomion": (0.0, -33.0, 113.0),
    "labrale_inferius": (0.0, -41.0, 115.0),
    "supramentale": (0.0, -55.0, 108.0),
    "pogonion": (0.0, -66.0, 108.0),
    "gnathion": (0.0, -76.0, 100.0),
    "menton": (0.0, -82.0, 85.0),
    "frontal_eminence": (25.0, 75.0, 95.0),
    "supraorbital": (28.0, 52.0, 98.0),
    "infraorbital": (28.0, 18.0, 95.0),
    "inferior_malar": (45.0, 5.0, 85.0),
    "lateral_orbit": (48.0, 35.0, 80.0),
    "zygion": (68.0, 20.0, 50.0),
    "supraglenoid": (72.0, 40.0, 20.0),
    "gonion": (58.0, -50.0, 40.0),
    "mid_ramus": (65.0, -20.0, 45.0),
    "supra_m2": (40.0, -20.0, 90.0),
    "infra_m2": (40.0, -45.0, 85.0),
    "mid_mandibular_border": (35.0, -68.0, 75.0),
    "cheilion": (25.0, -34.0, 102.0),
    "exocanthion": (44.0, 34.0, 86.0),
    "endocanthion": (18.0, 32.0, 92.0),
    "alare": (16.0, -5.0, 108.0),
    "tragion": (74.0, 30.0, 30.0),
}
"""Targets of the face landmarks; bilateral names get `_l` (these, +x) and `_r` (mirrored) suffixes."""

BILATERAL = {
    "frontal_eminence",
    "supraorbital",
    "infraorbital",
    "inferior_malar",
    "lateral_orbit",
    "zygion",
    "supraglenoid",
    "gonion",
    "mid_ramus",
    "supra_m2",
    "infra_m2",
    "mid_mandibular_border",
    "cheilion",
    "exocanthion",
    "endocanthion",
    "alare",
    "tragion",
}


FRONTAL = {"subnasale", "labrale_superius", "stomion", "labrale_inferius", "supramentale", "pogonion"}
"""Landmarks found by a ray from the front (along -z) through the target's (x, y), not from the centre."""


def landmark_targets() -> dict[str, np.ndarray]:
    """All landmark targets with bilateral ones expanded into `_l` and `_r`."""
    out: dict[str, np.ndarray] = {}
    for name, target in FACE_LANDMARK_TARGETS_ICT_MM.items():
        t = np.asarray(target, float)
        if name in BILATERAL:
            out[f"{name}_l"] = t
            out[f"{name}_r"] = t * np.array([-1.0, 1.0, 1.0])
        else:
            out[name] = t
    return out


def place_face_landmarks(face: trimesh.Trimesh) -> dict[str, int]:
    """Vertex index of each landmark on a face mesh in the ICT frame: the vertex nearest the ray's hit."""
    targets = landmark_targets()
    names = list(targets)
    origins = np.stack(
        [np.array([targets[n][0], targets[n][1], 300.0]) if n in FRONTAL else HEAD_CENTRE_ICT_MM for n in names]
    )
    directions = np.stack([targets[n] - o for n, o in zip(names, origins, strict=True)])
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    hits = {}
    for name, origin, direction in zip(names, origins, directions, strict=True):
        distance, _ = first_hits(face, origin[None], direction)
        if not np.isfinite(distance[0]):
            raise RuntimeError(f"landmark ray for {name} missed the face")
        point = origin + distance[0] * direction
        hits[name] = int(np.argmin(np.linalg.norm(face.vertices - point, axis=1)))  # every vertex is on the surface
    return hits
