"""2.5D representation: frontal depth maps of skull and face in the canonical frame.

A depth map holds, per pixel, the z (mm, anterior positive) of the first surface a ray coming from the front
meets: the face's elevation over the coronal plane through the porions. Pixels are square, 1 mm by default;
row 0 is the top of the head, column index grows toward the subject's left (+x), as a viewer facing the
person sees it. Soft-tissue depth along the view is face minus skull where both are seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.data.raycast import first_hits

_RAY_START_Z_MM = 400.0


@dataclass(frozen=True)
class DepthView:
    """Where a frontal depth map looks: `shape` (rows, cols), `pixel_mm`, and the (x, y) of the image centre."""

    shape: tuple[int, int] = (256, 256)
    pixel_mm: float = 1.0
    centre_mm: tuple[float, float] = (0.0, -3.0)

    def __post_init__(self) -> None:
        if min(self.shape) < 8 or self.pixel_mm <= 0:
            raise ValueError(f"depth view {self.shape} at {self.pixel_mm} mm per pixel is not a usable image")

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x (cols,) and y (rows,) of pixel centres in mm."""
        rows, cols = self.shape
        x = self.centre_mm[0] + (np.arange(cols) - (cols - 1) / 2) * self.pixel_mm
        y = self.centre_mm[1] - (np.arange(rows) - (rows - 1) / 2) * self.pixel_mm
        return x, y

    def to_dict(self) -> dict[str, object]:
        """Plain values for cards and model files."""
        return {"shape": list(self.shape), "pixel_mm": self.pixel_mm, "centre_mm": list(self.centre_mm)}

    @staticmethod
    def from_dict(d: dict) -> DepthView:
        """Inverse of `to_dict`."""
        return DepthView(tuple(d["shape"]), float(d["pixel_mm"]), tuple(d["centre_mm"]))

    def to_pixel(self, points: np.ndarray) -> np.ndarray:
        """(row, col) floating pixel coordinates of canonical points (..., 3)."""
        rows, cols = self.shape
        col = (points[..., 0] - self.centre_mm[0]) / self.pixel_mm + (cols - 1) / 2
        row = -(points[..., 1] - self.centre_mm[1]) / self.pixel_mm + (rows - 1) / 2
        return np.stack([row, col], axis=-1)


@dataclass(frozen=True)
class DepthMap:
    """Depth in mm (float32, 0 where nothing is seen) with its validity mask and its view."""

    depth_mm: np.ndarray
    mask: np.ndarray
    view: DepthView


def render_depth_map(mesh: trimesh.Trimesh, view: DepthView | None = None) -> DepthMap:
    """Cast one ray per pixel from the front (along -z) and keep the first hit."""
    view = view or DepthView()
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    origins = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, _RAY_START_Z_MM)], axis=1)
    distance, _ = first_hits(mesh, origins, np.array([0.0, 0.0, -1.0]))
    depth = (_RAY_START_Z_MM - distance).reshape(view.shape)
    mask = np.isfinite(depth)
    return DepthMap(np.where(mask, depth, 0.0).astype(np.float32), mask, view)


def tissue_depth_map(face: DepthMap, skull: DepthMap) -> DepthMap:
    """Soft-tissue depth along the view (face minus skull), where both are seen."""
    if face.view != skull.view:
        raise ValueError("face and skull depth maps were rendered with different views")
    mask = face.mask & skull.mask
    return DepthMap(np.where(mask, face.depth_mm - skull.depth_mm, 0.0).astype(np.float32), mask, face.view)
