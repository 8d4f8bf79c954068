"""The open ICT face model (USC ICT-FaceKit, MIT licence): a mean head and identity modes from real scans.

facegen ships a compact copy (skin only, first 60 of the 100 modes) and uses the skin (face +
head-and-neck) as a closed surface in millimetres. The model's own frame is
kept here (+y up, +z out of the face, +x to the head's left); the canonical head frame comes later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import trimesh

SKIN_VERTEX_COUNT = 11248  # face 0-9408 and head-and-neck 9409-11247 (model README)


@dataclass(frozen=True)
class FaceModel:
    """Skin of the ICT model, closed into a watertight surface, in mm.

    `mean` (V, 3) and `modes` (K, V, 3): a head is `mean + sum_k w_k * modes[k]` with `w_k ~ N(0, 1)`.
    The lips' inner surfaces (which roll into the mouth) are left out, so the lips close at their front.
    `narrow_face` marks ICT's narrow face area (model vertices 0-6705), where faces are compared.
    The skin vertices come first (model order, inner lips left out); the rest are cap centres that close the eye
    openings, the lip slit and the neck, each near the mean of its rim (`cap_rims` lists the rims).
    `eye_centres` (2, 3): left (+x) and right eyeball centres of the mean head.
    """

    mean: np.ndarray
    modes: np.ndarray
    triangles: np.ndarray
    cap_rims: tuple[np.ndarray, ...]
    eye_centres: np.ndarray
    narrow_face: np.ndarray


ASSET = Path(__file__).resolve().parents[2] / "assets" / "ict_face_skin.npz"
"""facegen's compact copy of the model (skin, 60 modes; MIT licence beside it, assets/ICT-LICENSE.txt),
made by scripts/derive_ict_asset.py from the full model, so that every install generates the same heads."""


def _skin_triangles(polygons: np.ndarray) -> np.ndarray:
    """Quads and triangles of the skin range, as triangles."""
    keep = np.all((polygons < SKIN_VERTEX_COUNT) | (polygons == -1), axis=1)
    polys = polygons[keep]
    tri_a = polys[:, [0, 1, 2]]
    quads = polys[polys[:, 3] >= 0]
    tri_b = quads[:, [0, 2, 3]]
    return np.concatenate([tri_a, tri_b]).astype(np.int64)


def _boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges, each oriented as the mesh boundary runs."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    key = {tuple(e) for e in edges.tolist()}
    boundary = [e for e in edges.tolist() if (e[1], e[0]) not in key]
    nxt = {a: b for a, b in boundary}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return loops


def _close(triangles: np.ndarray, n_vertices: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Close every boundary loop with a fan around a new centre vertex; returns triangles and rims."""
    loops = _boundary_loops(triangles)
    fans = []
    for i, loop in enumerate(loops):
        centre = n_vertices + i
        # boundary edges run a->b; the cap must run b->a to keep the orientation consistent
        fans.append(np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre)], axis=1))
    return np.concatenate([triangles, *fans]), tuple(loops)


CAP_FORWARD_MM = {"eye": 3.0, "mouth": 1.0, "neck": 0.0}
NARROW_FACE_VERTICES = 6706
"""How far in front of its rim's mean each cap centre sits: closed eyelids over the eyeballs (which project
~16 mm, Stephan & Davidson 2008) and lips sealed at the stomion, in front of the teeth, not recessed holes."""


def _cap_kind(rim_mean_mm: np.ndarray) -> str:
    if rim_mean_mm[1] < -100.0:
        return "neck"
    return "eye" if abs(rim_mean_mm[0]) > 15.0 else "mouth"


def _with_caps(points: np.ndarray, rims: tuple[np.ndarray, ...], *, offsets: bool) -> np.ndarray:
    """Append one cap centre per rim to skin points of shape (..., V, 3): the rim mean, moved forward for the
    mean head (`offsets`), not for the identity modes (which are differences)."""
    centres = []
    for rim in rims:
        centre = points[..., rim, :].mean(axis=-2, keepdims=True)
        if offsets:
            centre = centre + np.array([0.0, 0.0, CAP_FORWARD_MM[_cap_kind(centre.reshape(-1)[:3])]])
        centres.append(centre)
    return np.concatenate([points, *centres], axis=-2)


@lru_cache(maxsize=2)
def load_face_model(n_modes: int = 60, path: str | None = None) -> FaceModel:
    """Load the ICT model's skin in mm, closed, with its first `n_modes` identity modes."""
    npz = Path(path) if path else ASSET
    if not npz.is_file():
        raise FileNotFoundError(
            f"ICT face model not found at {npz}; reinstall facegen or run scripts/derive_ict_asset.py"
        )
    data = np.load(npz)
    available = data["identity_deltas_cm"].shape[0]
    if n_modes > available:
        raise ValueError(f"{n_modes} identity modes asked for, {npz.name} holds {available}")
    skin = data["neutral_cm"][:SKIN_VERTEX_COUNT].astype(np.float64) * 10.0
    deltas = data["identity_deltas_cm"][:n_modes, :SKIN_VERTEX_COUNT].astype(np.float64) * 10.0
    triangles, kept = _without_inner_lips(skin, _skin_triangles(data["faces"]))
    triangles, rims = _close(triangles, len(kept))
    narrow = np.r_[kept < NARROW_FACE_VERTICES, np.zeros(len(rims), bool)]
    return FaceModel(
        mean=_with_caps(skin[kept], rims, offsets=True),
        modes=_with_caps(deltas[:, kept], rims, offsets=False),
        triangles=triangles,
        cap_rims=rims,
        eye_centres=data["eye_centres_cm"].astype(np.float64) * 10.0,
        narrow_face=narrow,
    )


def _without_inner_lips(skin: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the lips' inner surfaces (around the mouth, facing back or into the lip slit) and the vertices
    only they used; returns re-indexed triangles and the kept original vertex indices."""
    normals = trimesh.Trimesh(skin, triangles, process=False).vertex_normals
    x, y, z = skin.T
    inner = (np.abs(x) < 30) & (y > -50) & (y < -20) & (z > 85) & (normals[:, 2] < 0.3)
    triangles = triangles[~np.all(inner[triangles], axis=1)]
    kept = np.unique(triangles)
    remap = np.full(len(skin), -1)
    remap[kept] = np.arange(len(kept))
    return remap[triangles], kept
