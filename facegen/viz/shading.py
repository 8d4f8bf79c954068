"""Shaded pictures of surfaces from depth maps: light from the front-left, as a person looks at a cast."""

from __future__ import annotations

import numpy as np

from facegen.data.representations.depth_map import DepthMap


def shade_depth_map(depth: DepthMap, *, light: tuple[float, float, float] = (-0.4, 0.5, 0.77)) -> np.ndarray:
    """Lambertian shading (H, W) in [0, 1] of a depth map; NaN where nothing is seen."""
    z = np.where(depth.mask, depth.depth_mm, np.nan)
    dz_drow, dz_dcol = np.gradient(z, depth.view.pixel_mm)
    # rows run down (-y), columns run along +x
    normal = np.stack([-dz_dcol, dz_drow, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    lam = np.asarray(light) / np.linalg.norm(light)
    shade = np.clip(normal @ lam, 0.0, 1.0) * 0.85 + 0.15
    return np.where(depth.mask, np.nan_to_num(shade, nan=0.15), np.nan)
