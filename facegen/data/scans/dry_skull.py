"""A dry skull in a CT: telling it from a head with skin, and cutting it from what it lies on.

A head's bone is wrapped in soft tissue (scalp outside, brain inside); a dry skull's bone borders air. So the
voxels a few millimetres from dense bone tell the two apart (`skin_around_bone`): in heads with skin most of them
that are not bone hold tissue (measured 0.89-0.99 on the real headsq CT and on synthetic CTs with a table), around
a dry skull almost none do (0.00-0.04).

Without skin the skull is found from its bone (`skull_region`), on blocks of about BLOCK_MM that hold any bone
voxel: cavities enclosed in slices along any axis are filled (cranial cavity, orbits, sinuses), an opening with a
ball of CORE_MM keeps the solid skull and drops everything thin, and its largest body is the skull's core. Bone
beyond the core (mandible, arches, teeth, thin walls) is kept when it comes within NEAR_MM of it and is not a
support (`supports`: a wide thin sheet such as a plate, a cradle or a table's shell, or a long thin rod such as a
rail). Next to a support and within its fitted sheet, where it touches or hugs the skull, voxels less dense than
bone (the support's) stay out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from facegen.data.scans.blocks import block_factors, block_share
from facegen.data.scans.cavities import fill_holes_in_slices
from facegen.data.scans.morphology import ball_dilated, ball_eroded, bounding_box, cube_dilated, dilated_once
from facegen.data.scans.supports import Sheet, support_sheet
from facegen.io.volume import Volume

DENSE_OVER_BONE_HU = 400.0
"""Dense bone lies this far above the bone threshold: a table's shell (200-400 HU) is not dense bone."""
SKIN_AROUND_BONE_MIN = 0.4
"""A scan whose voxels near dense bone hold tissue less often than this is a dry skull."""
SAMPLE_MM = 3.0
"""The scan is sampled every so many voxels that samples lie at most this far apart."""
BLOCK_MM = 3.0
CORE_MM = 6.0
"""Radius of the ball whose opening keeps the (cavity-filled) skull and drops sheets and rods up to 12 mm thick."""
MIN_SKULL_ML = 250.0
"""A whole skull with its cavities filled holds over 1.5 l; the scanned part of one must hold this much (the real
headsq CT, cut at the orbits, 415 ml)."""
NEAR_MM = 20.0
"""Bone beyond the core is the skull's when it comes this near (a mandible's condyles sit in their fossae)."""


@dataclass(frozen=True)
class SkullRegion:
    """Where a dry skull's bone may lie, on blocks of `factors` voxels from voxel `start`.

    `region` holds the skull's blocks (core, the bone beside it and the pieces kept); `near_support` the blocks
    next to a support that touches the skull, where only dense bone counts; `core_ml` the core's volume.
    """

    region: np.ndarray
    near_support: np.ndarray
    start: np.ndarray
    factors: np.ndarray
    core_ml: float
    dense_hu: float


def skin_around_bone(volume: Volume, skin_hu: float, bone_hu: float) -> float | None:
    """Share of tissue (between `skin_hu` and `bone_hu`) against air in the voxels one to two samples of at most
    SAMPLE_MM (face neighbours) from dense bone; None without dense bone or without either around it."""
    step = np.maximum(1, np.floor(SAMPLE_MM / volume.spacing_mm + 1e-6)).astype(int)
    sample = volume.array[:: step[0], :: step[1], :: step[2]]
    dense = sample > bone_hu + DENSE_OVER_BONE_HU
    if not dense.any():
        return None
    once = dilated_once(dense)
    around = sample[dilated_once(once) & ~once]
    tissue = np.count_nonzero((around > skin_hu) & (around <= bone_hu))
    air = np.count_nonzero(around <= skin_hu)
    return tissue / (tissue + air) if tissue + air else None


def is_dry_skull(skin_share: float | None) -> bool:
    """True when the scan shows dense bone with hardly any tissue around it."""
    return skin_share is not None and skin_share < SKIN_AROUND_BONE_MIN


def skull_region(volume: Volume, bone_hu: float) -> SkullRegion:
    """The blocks a dry skull's bone lies in, supports cut away. Raises ValueError when no skull-sized body of
    bone (cavities filled) is found."""
    factors = block_factors(volume.spacing_mm, BLOCK_MM)
    spacing = volume.spacing_mm * factors
    bone = volume.array > bone_hu
    margin = factors * (int(np.ceil(CORE_MM / spacing.min())) + 2)
    box = bounding_box(bone, margin)
    if box is None:
        raise ValueError(no_skull_message(0.0, bone_hu))
    blocks = block_share(bone[box], factors)[0] > 0
    filled = blocks
    for axis in range(3):
        filled = fill_holes_in_slices(filled, axis)
    opened = ball_dilated(ball_eroded(filled, CORE_MM, spacing), CORE_MM, spacing) & filled
    labels, count = ndimage.label(opened)
    sizes = np.bincount(labels.ravel())[1:]
    block_ml = float(np.prod(spacing)) / 1000.0
    core_ml = float(sizes.max()) * block_ml if count else 0.0
    if core_ml < MIN_SKULL_ML:
        raise ValueError(no_skull_message(core_ml, bone_hu))
    core = labels == int(np.argmax(sizes)) + 1
    grown = cube_dilated(core)
    kept, supports, sheets = _pieces_beyond(blocks & ~grown, ball_dilated(core, NEAR_MM, spacing), spacing)
    near_support = cube_dilated(supports) if supports.any() else supports
    if sheets:  # a support's part inside the skull's filled body (where it touches or hugs the skull)
        index = np.argwhere(blocks & ~near_support)
        points = index * spacing
        held = np.any([sheet.holds(points) for sheet in sheets], axis=0)
        near_support[tuple(index[held].T)] = True
    return SkullRegion(
        region=grown | kept,
        near_support=near_support,
        start=np.array([b.start for b in box]),
        factors=factors,
        core_ml=core_ml,
        dense_hu=bone_hu + DENSE_OVER_BONE_HU,
    )


def _pieces_beyond(
    residual: np.ndarray, near: np.ndarray, spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[Sheet]]:
    """Pieces of bone beyond the core that reach `near`: the skull's, the supports', and the supports' sheets."""
    labels, count = ndimage.label(residual, np.ones((3, 3, 3), bool))
    reaching = np.zeros(count + 1, bool)
    reaching[labels[near & residual]] = True
    reaching[0] = False
    support = np.zeros(count + 1, bool)
    sheets = []
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if reaching[index]:
            points = (np.argwhere(labels[found] == index) + [s.start for s in found]) * spacing
            sheet = support_sheet(points, spacing)
            if sheet is not None:
                support[index] = True
                sheets.append(sheet)
    return (reaching & ~support)[labels], support[labels], sheets


def no_skull_message(found_ml: float, bone_hu: float) -> str:
    """The error text when a scan without skin holds no skull."""
    return (
        f"no skull found: no skin, and the largest body of bone above {bone_hu:g} HU (cavities filled) is only "
        f"{found_ml:.0f} ml (a skull holds at least {MIN_SKULL_ML:.0f} ml); is this a CT of a head or a skull?"
    )
