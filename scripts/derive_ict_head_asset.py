"""Derive facegen's compact ICT eye and eyelash geometry for complete heads (run once by a maintainer).

The skin comes from facegen/assets/ict_face_skin.npz (scripts/derive_ict_asset.py); this adds what a complete
head needs beside it: the eyeballs (vertices 21451-24590: per eye the sclera-and-cornea ball, then the inner
ball whose front is the iris) and the upper eyelashes (of the eyelashes 25351-26718, the three upper-lid cards
of each eye: 25351-25692 and 26035-26376), their mean in float32 cm and their first 60
identity modes in float16 (0.01 mm precision), their polygons re-indexed from 0, and the rigid transform that
takes the model's frame to facegen's canonical head frame (the template head's Frankfurt frame, found by a
least-squares fit of the template's skin to the model's mean skin). The file is MIT-licensed through the ICT
model: facegen/assets/ICT-LICENSE.txt travels beside it.
Usage: python scripts/derive_ict_head_asset.py ../shared/data/ict-face-model
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

MODES = 60
EYEBALLS = (21451, 24591)
"""Left sclera 21451-22220, left iris ball 22221-23020, right sclera 23021-23790, right iris ball 23791-24590."""
EYELASHES = ((25351, 25693), (26035, 26377))
"""The upper-lid lash cards of the left and right eye. The lower-lid cards (25693-26034, 26377-26718) are left
out: drawn opaque (the model's cards are made for see-through textures) they read as a ledge of skin under the
eye, and lower lashes are short and sparse in life."""


def _part(data: np.lib.npyio.NpzFile, *ranges: tuple[int, int]) -> dict[str, np.ndarray]:
    """Mean, modes and polygons (re-indexed from 0 in range order, -1 kept for triangles) of vertex ranges."""
    polygons = data["faces"]
    index = np.concatenate([np.arange(first, stop) for first, stop in ranges])
    local = np.full(len(data["neutral_cm"]), -1)
    local[index] = np.arange(len(index))
    inside = (polygons >= 0) & (local[polygons] >= 0)
    keep = np.all(inside | (polygons == -1), axis=1)
    if np.any(inside.any(axis=1) & ~keep):
        raise ValueError(f"polygons cross the border of vertex ranges {ranges}")
    return {
        "vertices_cm": data["neutral_cm"][index].astype(np.float32),
        "deltas_cm": data["identity_deltas_cm"][:MODES, index].astype(np.float16),
        "faces": np.where(polygons[keep] >= 0, local[polygons[keep]], -1).astype(np.int32),
    }


def _to_canonical() -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation (mm) taking the model's frame to the canonical frame, from the template head."""
    from facegen.data.synthetic.ict import load_face_model
    from facegen.data.synthetic.template import head_template

    model, template = load_face_model(n_modes=1), head_template()
    a, b = model.mean, template.face_vertices
    u, _, vt = np.linalg.svd((a - a.mean(0)).T @ (b - b.mean(0)))
    rotation = vt.T @ np.diag([1.0, 1.0, np.linalg.det(vt.T @ u.T)]) @ u.T
    translation = b.mean(0) - rotation @ a.mean(0)
    worst = np.abs(a @ rotation.T + translation - b).max()
    if worst > 1e-6:
        raise RuntimeError(f"the template is not a rigid copy of the model's mean ({worst:.3g} mm off)")
    return rotation, translation


def main(model_dir: Path) -> None:
    data = np.load(model_dir / "ict_face_model.npz")
    eyes, lashes = _part(data, EYEBALLS), _part(data, *EYELASHES)
    rotation, translation = _to_canonical()
    out = Path(__file__).resolve().parents[1] / "facegen" / "assets" / "ict_head.npz"
    np.savez_compressed(
        out,
        **{f"eyeball_{k}": v for k, v in eyes.items()},
        **{f"eyelash_{k}": v for k, v in lashes.items()},
        eyeball_source_ranges=np.array([EYEBALLS], np.int32),
        eyelash_source_ranges=np.array(EYELASHES, np.int32),
        to_canonical_rotation=rotation.astype(np.float64),
        to_canonical_translation_mm=translation.astype(np.float64),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
