"""Synthetic dry-skull CTs: a generated head's skull alone (bone and air), lying on a support, as a scanner sees it.

Remains are scanned as a bare skull resting on its occiput (posterior, -z, down, as a supine head): on a flat
plastic plate or a cradle curved both ways (plastic of 100-300 HU: above air, below bone, touching the skull),
and optionally on the scanner's table under it (`add_scanner_objects`, table only: a carbon-fibre shell of
200-400 HU and denser rails). `stored` gives the values a file holds for a stated offset: HU + 1024 as DICOM
stores it (the rescale intercept says so) or a plain HU + 1000 that only the histogram tells.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np

from facegen.data.scans.scanner_objects import add_scanner_objects
from facegen.data.synthetic.ct import AIR_HU, HU_LIMITS, SOFT_HU, render_ct
from facegen.io.volume import Volume

if TYPE_CHECKING:
    from facegen.data.synthetic.generator import SyntheticHead

Support = Literal["none", "plate", "cradle"]
SUPPORTS: tuple[str, ...] = ("none", "plate", "cradle")
SUPPORT_HU = (120.0, 280.0)
"""Plastic supports: acrylic and polycarbonate lie around 100-300 HU."""
SUPPORT_NOISE_HU = 20.0
_Sheet = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Signed distance (mm, negative inside) at world points given as broadcastable x, y, z arrays."""


def render_dry_skull_ct(
    head: SyntheticHead,
    *,
    seed: int,
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0),
    support: Support = "plate",
    support_hu: float | None = None,
    table: bool = False,
    noise_hu: float = 20.0,
    margin_mm: float = 40.0,
) -> Volume:
    """The dry skull's CT in HU (int16): bone and teeth in air, on `support` (and the scanner's `table` under it).

    `seed` drives the noise and the support's size, density (unless `support_hu` gives it: PVC or PTFE lie above
    the bone threshold) and place; the margin leaves room for the support.
    """
    if support not in SUPPORTS:
        raise ValueError(f"support {support!r} is not one of {', '.join(SUPPORTS)}")
    volume = render_ct(head, spacing_mm=spacing_mm, seed=seed, noise_hu=noise_hu, margin_mm=margin_mm,
                       soft_tissue=False)  # fmt: skip
    rng = np.random.default_rng([seed, 17])
    if support != "none":
        volume = add_support(volume, np.asarray(head.skull.vertices, float), rng, support, value_hu=support_hu)
    if table:
        volume = add_scanner_objects(volume, rng, table=True, headrest=False, cable=False, pillow=False)
    return volume


def add_support(
    volume: Volume, skull_points: np.ndarray, rng: np.random.Generator, kind: Support, *, value_hu: float | None = None
) -> Volume:
    """The volume with a plastic plate or cradle under the skull (world points `skull_points`), touching its back.

    A plate is 5-10 mm thick and flat; a cradle 4-8 mm thick, curved both ways (radii 150-300 mm) about the
    lowest point of the skull. Both are 160-220 mm wide and 140-200 mm long (along y) and only take the air share
    of each voxel, as a real support cannot enter bone. Their HU is `value_hu`, or drawn from SUPPORT_HU.
    """
    lowest = skull_points[np.argmin(skull_points[:, 2])]
    half_x, half_y = float(rng.uniform(80.0, 110.0)), float(rng.uniform(70.0, 100.0))
    thick = float(rng.uniform(5.0, 10.0) if kind == "plate" else rng.uniform(4.0, 8.0))
    radii = (np.inf, np.inf) if kind == "plate" else tuple(float(r) for r in rng.uniform(150.0, 300.0, size=2))
    centre = lowest + np.array([rng.uniform(-10.0, 10.0), rng.uniform(-15.0, 15.0), 0.0])

    def top(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height (z) of the support's upper surface: the skull's lowest point there, rising away (a cradle)."""
        return lowest[2] + (x - lowest[0]) ** 2 / (2.0 * radii[0]) + (y - lowest[1]) ** 2 / (2.0 * radii[1])

    def sheet(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        across = np.abs(z - (top(x, y) - thick / 2.0)) - thick / 2.0
        return np.maximum(across, np.maximum(np.abs(x - centre[0]) - half_x, np.abs(y - centre[1]) - half_y))

    rise = float(np.max(top(centre[0] + np.array([-half_x, half_x])[:, None], centre[1] + np.array([-half_y, half_y]))))
    lo = np.array([centre[0] - half_x, centre[1] - half_y, lowest[2] - thick]) - 2.0
    hi = np.array([centre[0] + half_x, centre[1] + half_y, rise]) + 2.0
    value = float(rng.uniform(*SUPPORT_HU)) if value_hu is None else float(value_hu)
    return _painted(volume, lo, hi, sheet, value, rng)


def _painted(
    volume: Volume, lo: np.ndarray, hi: np.ndarray, field: _Sheet, value_hu: float, rng: np.random.Generator
) -> Volume:
    """The volume with an object of `value_hu` (+ noise) drawn into the air share of voxels in world box [lo, hi]."""
    corners = np.array(np.meshgrid(*np.stack([lo, hi]).T, indexing="ij")).reshape(3, -1).T
    index = volume.world_to_index(corners)
    start = np.maximum(np.floor(index.min(axis=0)).astype(int), 0)
    stop = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 1, volume.shape)
    hu = np.array(volume.array, dtype=np.int16, copy=True)
    if np.any(stop <= start):
        return Volume(hu, volume.spacing_mm, volume.origin_mm, volume.direction)
    box = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    axes = [np.arange(s.start, s.stop, dtype=float) * h for s, h in zip(box, volume.spacing_mm, strict=True)]
    shaped = [a.reshape([-1 if d == n else 1 for d in range(3)]) for n, a in enumerate(axes)]
    x, y, z = (volume.origin_mm[c] + sum(volume.direction[c, n] * shaped[n] for n in range(3)) for c in range(3))
    share = np.clip(0.5 - field(x, y, z) / float(np.mean(volume.spacing_mm)), 0.0, 1.0).astype(np.float32)
    share = np.broadcast_to(share, tuple(s.stop - s.start for s in box))
    region = hu[box].astype(np.float32)
    air = np.clip((np.float32(SOFT_HU) - region) / np.float32(SOFT_HU - AIR_HU), 0.0, 1.0)
    noisy = np.float32(value_hu) + np.float32(SUPPORT_NOISE_HU) * rng.standard_normal(region.shape, dtype=np.float32)
    region += share * air * (noisy - np.float32(AIR_HU))
    hu[box] = np.clip(np.rint(region), *HU_LIMITS).astype(np.int16)
    return Volume(hu, volume.spacing_mm, volume.origin_mm, volume.direction)


def stored(volume: Volume, offset_hu: float) -> Volume:
    """The values a file holds for HU + `offset_hu` (int16): 1024 as DICOM stores CT, 1000 as some converters do."""
    values = np.rint(volume.array.astype(np.float32) + np.float32(offset_hu))
    if values.min() < -32768 or values.max() > 32767:
        raise ValueError(f"HU + {offset_hu:g} does not fit 16 bits")
    return Volume(values.astype(np.int16), volume.spacing_mm, volume.origin_mm, volume.direction)
