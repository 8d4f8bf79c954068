"""Derive facegen's compact copy of the ICT face model from the full model (run once by a maintainer).

Keeps what the synthetic generator uses: the skin range (face + head-and-neck, vertices 0-11247) of the mean
head in float32, its first 60 identity modes in float16 (0.01 mm precision), the skin polygons and the two
eyeball centres. Usage: python scripts/derive_ict_asset.py ../shared/data/ict-face-model
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SKIN = 11248
MODES = 60
EYES = ((21451, 23021), (23021, 24591))


def main(model_dir: Path) -> None:
    data = np.load(model_dir / "ict_face_model.npz")
    faces = data["faces"]
    keep = np.all((faces < SKIN) | (faces == -1), axis=1)
    mean = data["neutral_cm"]
    out = Path(__file__).resolve().parents[1] / "facegen" / "assets" / "ict_face_skin.npz"
    np.savez_compressed(
        out,
        neutral_cm=mean[:SKIN].astype(np.float32),
        identity_deltas_cm=data["identity_deltas_cm"][:MODES, :SKIN].astype(np.float16),
        faces=faces[keep].astype(np.int32),
        eye_centres_cm=np.stack([mean[a:b].mean(0) for a, b in EYES]).astype(np.float32),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
