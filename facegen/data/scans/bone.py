"""The bone of a head CT: the bone threshold within the head, metal streaks voted out, specks dropped, pores filled.

Small pores (mastoid air cells, diploic gaps, small foramina) are filled so that the bone's surface is the
skull's outline, not its honeycomb.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from facegen.data.scans.metal_streaks import STREAK_WINDOW_MM, MetalRun, slice_axis, thresholded
from facegen.data.scans.morphology import bounding_box
from facegen.io.volume import Volume

MIN_BONE_MM3 = 30.0
MAX_PORE_MM2 = 100.0
"""Holes in bone smaller than this in an axial slice (mastoid air cells, diploic gaps, small foramina) are filled."""


def bone_mask(volume: Volume, within: np.ndarray, metal: list[MetalRun], bone_hu: float) -> np.ndarray:
    """Bone above `bone_hu` within the head, metal streaks voted out, without specks and with its pores filled."""
    bone = thresholded(volume.array, bone_hu, volume, metal, STREAK_WINDOW_MM[1], within=within)
    return _without_pores(_without_specks(bone, volume.spacing_mm), volume)


def _without_specks(bone: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Bone without connected pieces smaller than MIN_BONE_MM3."""
    box = bounding_box(bone, np.ones(3, int))
    if box is None:
        return bone
    labels, count = ndimage.label(bone[box])
    keep = np.bincount(labels.ravel(), minlength=count + 1) * float(np.prod(spacing)) >= MIN_BONE_MM3
    keep[0] = False
    if keep[1:].all():
        return bone
    out = np.zeros_like(bone)
    out[box] = keep[labels]
    return out


def _without_pores(bone: np.ndarray, volume: Volume) -> np.ndarray:
    """Bone with holes smaller than MAX_PORE_MM2 in its axial slices filled: the outline, not the honeycomb."""
    box = bounding_box(bone, np.ones(3, int))
    if box is None:
        return bone
    axis = slice_axis(volume)
    structure = np.zeros((3, 3, 3), bool)
    plane = [slice(None)] * 3
    plane[axis] = 1
    structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1)
    local = bone[box]
    labels, count = ndimage.label(~local, structure)
    pixel_mm2 = float(np.prod([h for a, h in enumerate(volume.spacing_mm) if a != axis]))
    small = np.bincount(labels.ravel(), minlength=count + 1) * pixel_mm2 < MAX_PORE_MM2
    for a in range(3):
        if a != axis:  # what reaches the edge of a slice is no pore
            small[np.take(labels, 0, axis=a)] = False
            small[np.take(labels, -1, axis=a)] = False
    small[0] = False
    out = bone.copy()
    out[box] |= small[labels]
    return out
