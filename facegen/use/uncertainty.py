"""The face's uncertainty as a case shows it: a spread in mm at every face point, on one colour scale per case.

A model states a per-pixel SD of the face depth (its own predictive SD, or the spread of its samples). The
case carries it to every vertex of the face mesh (the vertices sit on pixel centres), colours the mesh on a
scale shared by all the variants of the case, so that colours compare across them, and writes the mesh with
its colours and the value itself (PLY property `sd_mm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh
from matplotlib import colormaps
from trimesh.exchange.ply import export_ply

from facegen.data.representations.depth_map import DepthView
from facegen.use.face_mesh import ply_with_comment

SPREAD_COLOURMAP = "magma"
"""Perceptually uniform, dark for a sure point and bright for an unsure one (as in the SD render)."""
SCALE_STEP_MM = 0.5
"""The top of a case's colour scale is rounded up to this step, so legends read in round numbers."""
SCALE_PERCENTILE = 99.0
"""The scale's top covers this percentile of all the case's spreads (a few extreme pixels do not wash it out)."""
LEGEND_STOPS = 9
"""Colours a legend carries, evenly spaced from 0 to the top of the scale."""
SPREAD_TITLE = "spread of the face (SD, mm)"


@dataclass(frozen=True)
class SpreadScale:
    """One colour scale from 0 to `max_mm` for every variant of a case."""

    max_mm: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_mm) and self.max_mm > 0):
            raise ValueError(f"the spread scale needs a positive top in mm, got {self.max_mm}")

    @staticmethod
    def covering(spreads_mm: list[np.ndarray]) -> SpreadScale:
        """The scale whose top covers SCALE_PERCENTILE of all the given spreads, rounded up to SCALE_STEP_MM."""
        values = np.concatenate([np.asarray(s, np.float64).ravel() for s in spreads_mm]) if spreads_mm else np.zeros(0)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError("no finite spread to put on a colour scale")
        top = float(np.percentile(values, SCALE_PERCENTILE))
        return SpreadScale(max(SCALE_STEP_MM, math.ceil(top / SCALE_STEP_MM - 1e-9) * SCALE_STEP_MM))

    def colours(self, values_mm: np.ndarray) -> np.ndarray:
        """(N, 3) uint8 RGB of each value on this scale (values past the top take the top's colour)."""
        shown = np.clip(np.nan_to_num(np.asarray(values_mm, np.float64), nan=0.0) / self.max_mm, 0.0, 1.0)
        return np.round(colormaps[SPREAD_COLOURMAP](shown)[:, :3] * 255).astype(np.uint8)

    def stops(self) -> list[tuple[float, float, float]]:
        """LEGEND_STOPS colours (RGB in 0-1) from 0 to the top, for a colour bar."""
        rgba = colormaps[SPREAD_COLOURMAP](np.linspace(0.0, 1.0, LEGEND_STOPS))
        return [tuple(round(float(c), 4) for c in row[:3]) for row in rgba]

    def to_dict(self) -> dict[str, object]:
        return {"title": SPREAD_TITLE, "units": "mm", "min": 0.0, "max": self.max_mm, "colourmap": SPREAD_COLOURMAP}


def vertex_values(mesh: trimesh.Trimesh, image: np.ndarray, view: DepthView) -> np.ndarray:
    """(N,) the image's value at each vertex of a depth-map mesh in the canonical frame (nearest pixel)."""
    image = np.asarray(image)
    if image.shape != tuple(view.shape):
        raise ValueError(f"image {image.shape} does not match the view's shape {tuple(view.shape)}")
    pixel = np.rint(view.to_pixel(np.asarray(mesh.vertices, np.float64))).astype(np.int64)
    rows, cols = pixel[:, 0], pixel[:, 1]
    inside = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    if not inside.all():
        raise ValueError(f"{int((~inside).sum())} vertices lie outside the depth-map view; is this the view's mesh?")
    return image[rows, cols].astype(np.float64)


def spread_ply_bytes(
    mesh: trimesh.Trimesh, spread_mm: np.ndarray, scale: SpreadScale, *, header: str,
    no_bone: np.ndarray | None = None,
) -> bytes:  # fmt: skip
    """Binary PLY of `mesh` with each vertex coloured on `scale`, its spread as the float property `sd_mm` and,
    when given, whether the face there has no bone beneath it (uchar property `no_bone`)."""
    spread_mm = np.asarray(spread_mm, np.float64)
    if spread_mm.shape != (len(mesh.vertices),):
        raise ValueError(f"{spread_mm.shape} spreads for a mesh of {len(mesh.vertices)} vertices")
    rgba = np.concatenate([scale.colours(spread_mm), np.full((len(spread_mm), 1), 255, np.uint8)], axis=1)
    coloured = trimesh.Trimesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64),
                               vertex_colors=rgba, process=False)  # fmt: skip
    coloured.vertex_attributes["sd_mm"] = spread_mm.astype(np.float32)
    if no_bone is not None:
        coloured.vertex_attributes["no_bone"] = np.asarray(no_bone, np.uint8)
    data = export_ply(coloured, encoding="binary", vertex_normal=False, include_attributes=True)
    return ply_with_comment(data, f"{header}; colours: {SPREAD_TITLE}, 0 to {scale.max_mm:g} mm ({SPREAD_COLOURMAP})")


def case_spreads(
    faces: dict[str, tuple[trimesh.Trimesh, np.ndarray | None]], view: DepthView
) -> tuple[dict[str, np.ndarray], SpreadScale | None]:
    """Per-vertex spread (mm) of every face that has one, and the case's one scale (None when none has)."""
    spreads = {name: vertex_values(face, sd, view) for name, (face, sd) in faces.items() if sd is not None}
    spreads = {name: values for name, values in spreads.items() if np.isfinite(values).any()}
    return spreads, (SpreadScale.covering(list(spreads.values())) if spreads else None)
