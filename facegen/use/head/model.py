"""The complete-head model: the ICT face model's skin, eyeballs and eyelashes as one linear model in mm.

A head is `mean + sum_k w_k * modes[k]` (w_k ~ N(0, 1)), in facegen's canonical head frame (Frankfurt: +x the
head's left, +y up, +z forward, mm). The skin is facegen's closed ICT skin (`load_face_model`: inner lips left
out, mouth and neck closed by caps) with its eye openings left open; the eyeballs sit in them. The model's own
frame (+y up, +z out, mm) goes to the canonical one by the rigid transform stored in the asset, the one that
poses the synthetic template head. Vertex order: skin, then the four eyeball pieces, then the eyelashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

import numpy as np
import trimesh

from facegen.data.pose import RigidTransform
from facegen.data.synthetic.ict import load_face_model

HEAD_ASSET = Path(__file__).resolve().parents[2] / "assets" / "ict_head.npz"
"""Eyeballs and eyelashes of the ICT model (60 modes; MIT licence beside it, assets/ICT-LICENSE.txt), made by
scripts/derive_ict_head_asset.py; the skin comes from assets/ict_face_skin.npz."""
EYE_PIECE_VERTICES = 770, 800
"""Per eye in the ICT model: the sclera-and-cornea ball, then the inner ball whose front disc is the iris."""
EYE_RIM_REACH_MM = 25.0
"""An opening of the skin is an eye opening when its rim's mean lies this close to an eyeball's centre."""


class Part(Enum):
    """What each vertex of the head belongs to."""

    SKIN = 0
    SCLERA_LEFT = 1
    IRIS_BALL_LEFT = 2
    SCLERA_RIGHT = 3
    IRIS_BALL_RIGHT = 4
    EYELASHES = 5


EYE_PARTS = (Part.SCLERA_LEFT, Part.IRIS_BALL_LEFT, Part.SCLERA_RIGHT, Part.IRIS_BALL_RIGHT)


@dataclass(frozen=True)
class HeadModel:
    """The whole head in the canonical frame (mm): `mean` (V, 3), `modes` (K, V, 3), `triangles` (F, 3).

    `part` (V,) holds each vertex's `Part` value. `eye_rims`: skin vertex indices around the left and right eye
    openings; `eye_centres` (2, 3): left (+x) and right eyeball centres of the mean; `lash_anchor` (L,): the skin
    vertex nearest each eyelash vertex on the mean, where the lash is rooted. `to_canonical` took the model's
    frame to this one.
    """

    mean: np.ndarray
    modes: np.ndarray
    triangles: np.ndarray
    part: np.ndarray
    eye_rims: tuple[np.ndarray, np.ndarray]
    eye_centres: np.ndarray
    lash_anchor: np.ndarray
    to_canonical: RigidTransform

    @property
    def n_modes(self) -> int:
        """Identity modes the model holds."""
        return int(self.modes.shape[0])

    def mask(self, *parts: Part) -> np.ndarray:
        """(V,) whether each vertex belongs to one of `parts`."""
        return np.isin(self.part, [p.value for p in parts])

    @property
    def skin(self) -> np.ndarray:
        """(V,) whether each vertex is skin."""
        return self.part == Part.SKIN.value

    def skin_mesh(self, vertices: np.ndarray) -> trimesh.Trimesh:
        """The skin alone (its vertices first in the head's order) as a mesh with these head vertices."""
        n = int(self.skin.sum())
        tri = self.triangles[np.all(self.triangles < n, axis=1)]
        return trimesh.Trimesh(np.asarray(vertices[:n], np.float64), tri, process=False)

    def shape(self, identity: np.ndarray) -> np.ndarray:
        """(V, 3) vertices of the head with these identity weights (K' <= K: the first K' modes)."""
        identity = np.asarray(identity, np.float64)
        if identity.ndim != 1 or len(identity) > self.n_modes:
            raise ValueError(f"identity must be a 1D array of at most {self.n_modes} weights, got {identity.shape}")
        return self.mean + np.tensordot(identity, self.modes[: len(identity)], axes=1)


def _triangles(polygons: np.ndarray) -> np.ndarray:
    """Quads (and triangles, -1 as 4th index) as triangles."""
    quads = polygons[polygons[:, 3] >= 0]
    return np.concatenate([polygons[:, :3], quads[:, [0, 2, 3]]]).astype(np.int64)


def _skin_without_eye_caps(n_modes: int, eye_centres_ict: np.ndarray):
    """The closed ICT skin (mm, model frame) with the caps over the eye openings taken away: mean, modes,
    triangles and the two eye rims (left, right)."""
    face = load_face_model(n_modes=n_modes)
    n_skin = len(face.mean) - len(face.cap_rims)
    rims: dict[int, np.ndarray] = {}
    drop = []
    for i, rim in enumerate(face.cap_rims):
        reach = np.linalg.norm(eye_centres_ict - face.mean[rim].mean(axis=0), axis=1)
        if reach.min() < EYE_RIM_REACH_MM:
            rims[int(np.argmin(reach))] = rim
            drop.append(n_skin + i)
    if sorted(rims) != [0, 1]:
        raise ValueError(f"{HEAD_ASSET.name}: expected one skin opening at each eyeball, found {sorted(rims)}")
    keep = np.setdiff1d(np.arange(len(face.mean)), drop)
    remap = np.full(len(face.mean), -1)
    remap[keep] = np.arange(len(keep))
    tri = face.triangles[~np.isin(face.triangles, drop).any(axis=1)]
    return face.mean[keep], face.modes[:, keep], remap[tri], (remap[rims[0]], remap[rims[1]])


@lru_cache(maxsize=2)
def load_head_model(n_modes: int = 60, path: str | None = None) -> HeadModel:
    """Load the complete head with its first `n_modes` identity modes, in the canonical frame (mm)."""
    npz = Path(path) if path else HEAD_ASSET
    if not npz.is_file():
        raise FileNotFoundError(f"ICT head asset not found at {npz}; run scripts/derive_ict_head_asset.py")
    data = np.load(npz)
    available = data["eyeball_deltas_cm"].shape[0]
    if not 1 <= n_modes <= available:
        raise ValueError(f"n_modes must be in 1-{available} ({npz.name} holds {available}), got {n_modes}")
    eyes = data["eyeball_vertices_cm"].astype(np.float64) * 10.0
    left = sum(EYE_PIECE_VERTICES)
    eye_centres = np.stack([eyes[:left].mean(axis=0), eyes[left:].mean(axis=0)])
    skin, skin_modes, skin_tri, rims = _skin_without_eye_caps(n_modes, eye_centres)
    lashes = data["eyelash_vertices_cm"].astype(np.float64) * 10.0
    pieces = [(skin, skin_modes, skin_tri)]
    for name, vertices in (("eyeball", eyes), ("eyelash", lashes)):
        deltas = data[f"{name}_deltas_cm"][:n_modes].astype(np.float64) * 10.0
        pieces.append((vertices, deltas, _triangles(data[f"{name}_faces"])))
    offsets = np.cumsum([0] + [len(p[0]) for p in pieces])
    sclera, iris = EYE_PIECE_VERTICES
    part = np.concatenate([
        np.full(len(skin), Part.SKIN.value),
        np.repeat([p.value for p in EYE_PARTS], [sclera, iris, sclera, iris]),
        np.full(len(lashes), Part.EYELASHES.value),
    ])  # fmt: skip
    if len(part) != offsets[-1]:
        raise ValueError(f"{npz.name}: eyeballs hold {len(eyes)} vertices, expected {2 * (sclera + iris)}")
    _, lash_anchor = trimesh.Trimesh(skin, skin_tri, process=False).kdtree.query(lashes)
    to_canonical = RigidTransform(data["to_canonical_rotation"], data["to_canonical_translation_mm"])
    return HeadModel(
        mean=to_canonical.apply(np.concatenate([p[0] for p in pieces])),
        modes=to_canonical.apply_to_vectors(np.concatenate([p[1] for p in pieces], axis=1)),
        triangles=np.concatenate([p[2] + o for p, o in zip(pieces, offsets[:-1], strict=True)]),
        part=part,
        eye_rims=rims,
        eye_centres=to_canonical.apply(eye_centres),
        lash_anchor=np.asarray(lash_anchor, np.int64),
        to_canonical=to_canonical,
    )
