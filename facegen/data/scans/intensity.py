"""Hounsfield units or not: check a scan's modality and intensity scale before anything is thresholded.

Thresholds for skin and bone only mean something in HU. A CT stored as HU + 1000 (air at 0, as the classic
VTK headsq scan) would be silently mis-segmented, so the scale is read off the histogram: air, the largest
peak below soft tissue, sits at -1000 in HU. The scale is confirmed by what lies above air: soft tissue (a head
with its skin) or bone (a dry skull holds only bone and air, no soft-tissue peak). A volume with neither is no
head and no skull. A declared offset always wins; an MR needs an explicit choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegen.data.scans.scan import Scan, ScanError
from facegen.io.volume import Volume

AIR_HU = -1000.0
AIR_TOLERANCE_HU = 150.0
"""How far the air peak may sit from -1000 (or from -1000 minus a known offset) and still count."""
KNOWN_OFFSETS = (0.0, -1000.0, -1024.0, -32768.0)
"""Offsets (added to stored values) that scanners and converters use: none, +1000, +1024, unsigned 16 bit."""
MIN_AIR_SHARE = 0.02
MIN_BODY_SHARE = 0.01
MIN_BONE_SHARE = 0.002
"""Share of voxels in bone (BONE_RANGE_HU) that confirms the scale without soft tissue: a dry skull in a wide field
of view (0.6 l of bone in 50 l) holds over 1%."""
SOFT_RANGE_HU = (-200.0, 200.0)
BONE_RANGE_HU = (300.0, 3100.0)
_HISTOGRAM_STEP = 20


@dataclass(frozen=True)
class Calibration:
    """The HU volume and how it was obtained (a note safe for the case record)."""

    volume: Volume
    offset_hu: float
    note: str


def _air_peak(values: np.ndarray) -> float:
    """Centre of the most populated low-intensity bin: air around (and in) the head."""
    lo, hi = np.percentile(values, [0.1, 50.0])
    edges = np.arange(lo - _HISTOGRAM_STEP, hi + 2 * _HISTOGRAM_STEP, _HISTOGRAM_STEP)
    counts, edges = np.histogram(values, edges)
    return float(edges[np.argmax(counts)] + _HISTOGRAM_STEP / 2)


def _with_offset(volume: Volume, offset: float) -> Volume:
    """The volume with `offset` added: int16 stays int16 when the offset is whole and the values fit (in place of
    a float copy: a tenth of the time on a large scan), float32 otherwise."""
    if volume.array.dtype == np.int16 and float(offset).is_integer() and abs(offset) < 32768:
        lo, hi = int(volume.array.min()) + int(offset), int(volume.array.max()) + int(offset)
        if lo >= -32768 and hi <= 32767:
            shifted = volume.array + np.int16(offset)
            return Volume(shifted, volume.spacing_mm, volume.origin_mm, volume.direction)
    array = volume.array.astype(np.float32) + np.float32(offset)
    if np.all(np.mod(array, 1) == 0) and array.min() >= -32768 and array.max() <= 32767:
        array = array.astype(np.int16)
    return Volume(array, volume.spacing_mm, volume.origin_mm, volume.direction)


def to_hounsfield(
    scan: Scan, path: Path | str, *, hu_offset: float | None = None, force_intensity: bool = False
) -> Calibration:
    """The scan in HU, or a ScanError that names the problem and the flag that resolves it.

    `hu_offset` is added to stored values (e.g. -1000 for a scan stored as HU + 1000). `force_intensity`
    accepts a non-CT scan as if it were in HU: the user takes responsibility for the thresholds."""
    if scan.modality not in (None, "CT") and not force_intensity:
        raise ScanError(
            path,
            f"the scan is {scan.modality}, not CT: bone and skin thresholds in Hounsfield units do not apply",
            "give a CT scan, or pass --force-intensity with --skin-hu/--bone-hu chosen for this scan",
        )
    values = scan.volume.array[:: max(1, scan.volume.shape[0] // 128), ::2, ::2].ravel().astype(np.float32)
    if values.size == 0 or float(values.max()) == float(values.min()):
        raise ScanError(path, "the volume is empty (every voxel has the same value)", "check the export")
    if hu_offset is not None:
        return Calibration(_with_offset(scan.volume, hu_offset), hu_offset, f"declared HU offset {hu_offset:+g}")
    if force_intensity:
        return Calibration(scan.volume, 0.0, f"intensities used as given ({scan.modality or 'unknown'} scan, forced)")
    air = _air_peak(values)
    for offset in KNOWN_OFFSETS:
        if abs(air + offset - AIR_HU) <= AIR_TOLERANCE_HU:
            hu = values + offset
            if float(np.mean(np.abs(hu - AIR_HU) < 200)) < MIN_AIR_SHARE:
                break
            soft_share = float(np.mean((hu > SOFT_RANGE_HU[0]) & (hu < SOFT_RANGE_HU[1])))
            bone_share = float(np.mean((hu > BONE_RANGE_HU[0]) & (hu < BONE_RANGE_HU[1])))
            if soft_share < MIN_BODY_SHARE and bone_share < MIN_BONE_SHARE:
                raise ScanError(path, _nothing_found(offset, soft_share, bone_share), _NOTHING_FOUND_FIX)
            volume = scan.volume if offset == 0.0 else _with_offset(scan.volume, offset)
            note = "values are in HU" if offset == 0.0 else f"values are HU {-offset:+g}: detected and corrected"
            if soft_share < MIN_BODY_SHARE:
                note += " (from air and bone: no soft tissue, as in a dry skull)"
            return Calibration(volume, offset, note)
    raise ScanError(
        path,
        f"intensities do not look like CT Hounsfield units (the air peak is at {air:.0f}, expected about -1000)",
        "if the scan stores HU plus an offset, pass it with --hu-offset (e.g. --hu-offset -1000); "
        "if it is not a CT, pass --force-intensity with thresholds that suit it",
    )


_NOTHING_FOUND_FIX = "give a CT of a head or of a skull (a phantom or an empty scan holds no skull to reconstruct on)"


def _nothing_found(offset: float, soft_share: float, bone_share: float) -> str:
    """The problem when air is found but neither soft tissue nor bone: no head and no skull."""
    scale = "HU" if offset == 0.0 else f"HU {-offset:+g}"
    return (
        f"no bone and no skin found: the values look like {scale} (air at -1000 HU), but only {soft_share:.2%} of "
        f"the voxels are soft tissue ({SOFT_RANGE_HU[0]:g} to {SOFT_RANGE_HU[1]:g} HU) and {bone_share:.2%} bone "
        f"({BONE_RANGE_HU[0]:g} to {BONE_RANGE_HU[1]:g} HU)"
    )
