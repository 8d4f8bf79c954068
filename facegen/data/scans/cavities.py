"""Air cavities of a head mask (sinuses, airway, nasal cavity, mouth) filled slice by slice.

Filling in coronal and axial planes covers cavities enclosed in 3D and closes those open to the outside
through the nostrils or parted lips at the body surface, without filling the concavities in front of the face.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fill_cavities(mask: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The mask with enclosed air filled, slice by slice in coronal, then axial planes.

    A slice-wise fill closes a cavity where it opens to the outside through a ring of tissue in that plane
    (parted lips in coronal slices, nostrils in axial ones); concavities open in the plane stay open. Every
    cavity enclosed in 3D is enclosed in each of its axial slices too, so the last pass fills those as well.
    `direction` is the volume's direction matrix (columns: world directions of the array axes).
    """
    axial = int(np.argmax(np.abs(direction[1])))
    order = np.argsort(-np.abs(direction[2]))
    coronal = int(order[0] if order[0] != axial else order[1])
    return fill_holes_in_slices(fill_holes_in_slices(mask, coronal), axial)


def fill_holes_in_slices(mask: np.ndarray, axis: int) -> np.ndarray:
    """2D hole filling of every slice across `axis` at once (background 4-connected within a slice)."""
    structure = np.zeros((3, 3, 3), bool)
    plane = [slice(None)] * 3
    plane[axis] = 1
    structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(~mask, structure)
    if count == 0:
        return mask
    outside = np.zeros(count + 1, bool)
    for a in range(3):
        if a != axis:
            outside[np.take(labels, 0, axis=a)] = True
            outside[np.take(labels, -1, axis=a)] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[labels]
