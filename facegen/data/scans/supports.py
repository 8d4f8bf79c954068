"""What a dry skull lies on, told from the skull's own bone by shape: large, smooth, thin sheets.

A plate, a cradle, a table's shell (or the strip of it a threshold leaves) and a rail are sheets: thin, a quadric
height field over their principal plane (flat or curved, as a cradle and a table are) and large (wide in two
directions, or long). The skull's own pieces are not: the walls and the face turn round (no height field), a
mandible is thick, an arch or a ramus is short and narrow. A support found keeps its fitted surface, so that its
part hidden in the skull's filled body (where it touches or hugs the skull) is found too (`Sheet.holds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHEET_MIN_WIDTH_MM = 20.0
SHEET_MIN_LENGTH_MM = 30.0
"""A sheet is large when its second principal SD reaches SHEET_MIN_WIDTH_MM (about 70 mm wide) or its first
SHEET_MIN_LENGTH_MM (over 100 mm long); a zygomatic arch (about 50 mm) and a ramus are neither."""
SHEET_MAX_ROUGH_MM = 4.0
SHEET_MAX_THICK_MM = 15.0
"""A quadric height field over the principal plane fits a sheet within SHEET_MAX_ROUGH_MM (RMS), and its volume over
its area is at most SHEET_MAX_THICK_MM."""
MIN_POINTS = 10


@dataclass(frozen=True)
class Sheet:
    """A support's surface: w = q(u, v) in its principal frame (`axes` columns u, v, w about `mean`), `half_mm`
    either side, over the (u, v) box `lo`-`hi`."""

    mean: np.ndarray
    axes: np.ndarray
    coefficients: np.ndarray
    half_mm: float
    lo: np.ndarray
    hi: np.ndarray

    def holds(self, points_mm: np.ndarray) -> np.ndarray:
        """Which points (n, 3; mm) lie within the sheet's thickness over its box."""
        u, v, w = ((points_mm - self.mean) @ self.axes).T
        inside = np.abs(w - _quadric_terms(u, v) @ self.coefficients) <= self.half_mm
        return inside & np.all((np.column_stack([u, v]) >= self.lo) & (np.column_stack([u, v]) <= self.hi), axis=1)


def support_sheet(points_mm: np.ndarray, spacing: np.ndarray) -> Sheet | None:
    """The sheet that block centres (n, 3; mm) on blocks of `spacing` form when they are a support (a large, smooth,
    thin sheet), else None: part of the skull."""
    if len(points_mm) < MIN_POINTS:
        return None
    mean = points_mm.mean(axis=0)
    variances, axes = np.linalg.eigh(np.cov((points_mm - mean).T))
    axes = axes[:, ::-1]
    sd = np.sqrt(np.maximum(variances[::-1], 0.0))
    if sd[1] < SHEET_MIN_WIDTH_MM and sd[0] < SHEET_MIN_LENGTH_MM:
        return None
    u, v, w = ((points_mm - mean) @ axes).T
    terms = _quadric_terms(u, v)
    coefficients = np.linalg.lstsq(terms, w, rcond=None)[0]
    cell = float(np.max(spacing))
    footprint = np.column_stack([u, v])
    area_mm2 = len(np.unique(np.floor(footprint / cell).astype(np.int64), axis=0)) * cell**2
    thick_mm = len(points_mm) * float(np.prod(spacing)) / area_mm2
    rough_mm = float(np.sqrt(np.mean((w - terms @ coefficients) ** 2)))
    if rough_mm > SHEET_MAX_ROUGH_MM or thick_mm > SHEET_MAX_THICK_MM:
        return None
    half_mm = thick_mm / 2.0 + rough_mm + cell
    return Sheet(mean, axes, coefficients, half_mm, footprint.min(axis=0) - cell, footprint.max(axis=0) + cell)


def _quadric_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Columns 1, u, v, u^2, uv, v^2: a quadric height field over the (u, v) plane."""
    return np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])
