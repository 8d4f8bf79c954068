"""The head cut from what touches it in a CT (table, headrest, pillow, cables), on blocks and then per voxel.

A morphological opening with a ball of OPENING_MM cuts bridges and contacts thinner than twice its radius, and
the largest body is the head. Thin parts of the head that the opening also takes (ears, nostril rims) come
back when they hang on that body and are small and short; large or long pieces (a headrest's shell, a cable
over the neck) stay off, and so do the thin bumps a headrest leaves where it presses on the skull. This heavy
work runs on blocks of about COARSE_MM of the tissue eroded by about a block (so that a one-voxel gap between
skin and headrest survives the averaging); the full-resolution threshold then decides the surface within one
block of the coarse head, so the skin is not eroded, except next to other objects, where only tissue touching
the head's voxels counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from facegen.data.scans.blocks import tissue_shares, upsample
from facegen.data.scans.cavities import fill_cavities, fill_holes_in_slices
from facegen.data.scans.morphology import (
    ball_dilated,
    ball_eroded,
    bounding_box,
    cube_dilated,
    cube_eroded,
    dilated_once,
)

MIN_HEAD_ML = 500.0
OPENING_MM = 4.0
"""Radius of the ball that cuts the head from what touches it."""
ATTACHED_MAX_ML = 40.0
ATTACHED_MAX_MM = 100.0
"""Thin parts hanging on the head that come back after the opening: an ear is ~10 ml and ~65 mm long."""
ATTACHED_ROUNDS = 4
"""Rounds of dropping pieces next to dropped ones (bits of one broken shell)."""
SMOOTH_MM = 20.0
"""Radius of the ball whose opening gives the head's smooth outline, beyond which contact bumps stand out."""
CONTACT_MAX_ML = 15.0
"""A bump larger than this that touches a cut-off object is kept: it is more likely the head's own."""


@dataclass(frozen=True)
class CoarseHead:
    """The head on blocks (cavities filled), the ring of blocks around it, other tissue, and tissue voxels per block."""

    filled: np.ndarray
    ring: np.ndarray
    others: np.ndarray
    share: np.ndarray
    counts: np.ndarray


def coarse_head(
    tissue: np.ndarray, factors: np.ndarray, spacing: np.ndarray, direction: np.ndarray, skin_hu: float
) -> CoarseHead:
    """The head on blocks of `factors` voxels (cavities filled), the ring of blocks around it, and other tissue.

    Raises ValueError when no body reaches MIN_HEAD_ML.
    """
    # erode first: a one-voxel gap between skin and a headrest must hold a whole block to survive averaging
    raw_share, share, counts = tissue_shares(tissue, factors)
    coarse = share.astype(np.int32) * 2 >= counts
    # axial cavities first (found before the erosion, which may break their walls), so that a thin wall (neck skin
    # over the airway) is not cut off as a thin part; not coronal ones: a coronal plane cuts a cradle as a ring
    raw = raw_share.astype(np.int32) * 2 >= counts
    solid = fill_holes_in_slices(raw, int(np.argmax(np.abs(direction[1]))))
    coarse |= solid & cube_dilated(solid & ~raw)  # with the walls' eroded inner layer
    body, body_ml = _largest_opened_body(coarse, spacing)
    if body_ml < MIN_HEAD_ML:
        raise ValueError(no_head_message(body_ml, skin_hu))
    residual = coarse & ~body
    attached = _attached_parts(residual, body, spacing)
    head = (body & ~_contact_bumps(body, residual & ~attached, spacing)) | attached
    filled = fill_cavities(head, direction)
    grown = cube_dilated(filled)
    others = ((raw_share > 0) & ~grown) | (coarse & ~filled)
    return CoarseHead(filled, grown & ~filled & ~coarse, others, raw_share, counts)


def _near_and_interior(coarse: CoarseHead) -> tuple[np.ndarray, np.ndarray]:
    """Ring blocks next to other tissue (a headrest, a cable), and the blocks deep in the head."""
    near = coarse.ring & cube_dilated(coarse.others)
    return near, cube_eroded(coarse.filled)


def rough_head(coarse: CoarseHead, direction: np.ndarray) -> np.ndarray:
    """The head on blocks with its skin where the blocks' tissue puts it (what `refined_head` does voxel by voxel).

    Blocks of the head and of the ring count when mostly tissue, except ring blocks next to other tissue; deep
    blocks count whole; cavities are filled again.
    """
    near, interior = _near_and_interior(coarse)
    tissue = coarse.share.astype(np.int32) * 2 >= coarse.counts
    return fill_cavities((tissue & (coarse.filled | (coarse.ring & ~near))) | interior, direction)


def refined_head(
    tissue: np.ndarray, coarse: CoarseHead, factors: np.ndarray
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The full-resolution head in the box around the coarse head: tissue decides within one block of it.

    Blocks of the coarse head (`filled`) count whole where deep and take their tissue at the surface; blocks
    of the `ring` around it take their tissue, but next to blocks of `others` (a headrest, a cable) only the
    tissue touching the head's own voxels, so that a headrest's shell across a thin gap stays out. Returns the
    box (in `tissue`'s indices) and the mask in it.
    """
    filled, ring = coarse.filled, coarse.ring
    near, interior = _near_and_interior(coarse)
    coarse_box = bounding_box(filled | ring, np.ones(3, int))
    box = tuple(
        slice(c.start * f, min(c.stop * f, n)) for c, f, n in zip(coarse_box, factors, tissue.shape, strict=True)
    )
    shape = tuple(b.stop - b.start for b in box)

    def up(mask: np.ndarray) -> np.ndarray:
        return upsample(mask[coarse_box], factors, shape)

    local = tissue[box]
    head = local & up(filled | (ring & ~near))
    head |= local & up(near) & dilated_once(head | up(filled))
    head |= up(interior)
    return box, head


def _largest_opened_body(coarse: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """The largest connected body of the mask opened with a ball of OPENING_MM, and its volume (ml).

    Erosion treats the outside of the array as tissue, so a head cut by the field of view keeps its cut face.
    """
    opened = ball_dilated(ball_eroded(coarse, OPENING_MM, spacing), OPENING_MM, spacing) & coarse
    labels, count = ndimage.label(opened)
    if count == 0:
        labels, count = ndimage.label(coarse)  # nothing survives the opening: report the raw tissue instead
        if count == 0:
            return np.zeros_like(coarse), 0.0
        sizes = np.bincount(labels.ravel())[1:]
        return np.zeros_like(coarse), float(sizes.max() * np.prod(spacing) / 1000.0)
    sizes = np.bincount(labels.ravel())[1:]
    largest = int(np.argmax(sizes)) + 1
    return labels == largest, float(sizes[largest - 1] * np.prod(spacing) / 1000.0)


def _attached_parts(residual: np.ndarray, body: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Pieces of `residual` that touch `body` and are small and short enough to be the head's (ears).

    A small piece within two voxels of a large or long one goes too, and so on for ATTACHED_ROUNDS: a
    headrest's shell that the erosion broke into bits is judged as a whole, not bit by bit.
    """
    labels, count = ndimage.label(residual)
    if count == 0:
        return residual
    touching = np.zeros(count + 1, bool)
    touching[labels[dilated_once(body) & residual]] = True
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = np.zeros(count + 1, bool)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        extent = max((s.stop - s.start) * h for s, h in zip(found, spacing, strict=True))
        small[index] = sizes[index] * voxel_ml <= ATTACHED_MAX_ML and extent <= ATTACHED_MAX_MM
    small[0] = True
    large = ~small
    for _ in range(ATTACHED_ROUNDS):
        near_large = cube_dilated(large[labels], 2)
        joining = np.unique(labels[near_large & small[labels]])
        joining = joining[joining > 0]
        if len(joining) == 0:
            break
        large[joining], small[joining] = True, False
    keep = small & touching
    keep[0] = False
    return keep[labels]


def _contact_bumps(body: np.ndarray, dropped: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Thin bumps on `body` where a `dropped` object touches it: what the opening could not cut of that object.

    Where a headrest touches the skull over a patch, balls of the opening still fit through the contact and keep
    the headrest's shell on the patch. Around each contact, the opening of the body with a ball of SMOOTH_MM
    gives the head's smooth outline (such a ball cannot enter a thin plate on a convex head); voxels farther
    than that from the ball centres, in small pieces that touch the object, are the object's.
    """
    contact = cube_dilated(dropped) & body
    if not contact.any():
        return np.zeros_like(body)
    out = np.zeros_like(body)
    margin = np.ceil(2.5 * SMOOTH_MM / spacing).astype(int)
    tolerance = 0.5 * float(np.mean(spacing))
    labels, _ = ndimage.label(cube_dilated(contact, 2))
    for found in ndimage.find_objects(labels):
        box = tuple(
            slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(found, margin, body.shape, strict=True)
        )
        local = body[box]
        core = ndimage.distance_transform_edt(local, sampling=spacing) > SMOOTH_MM
        if not core.any():
            continue
        bumps = local & (ndimage.distance_transform_edt(~core, sampling=spacing) > SMOOTH_MM + tolerance)
        pieces, count = ndimage.label(bumps)
        touching = np.unique(pieces[contact[box] & bumps])
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        remove = np.zeros(count + 1, bool)
        remove[touching] = sizes[touching] * float(np.prod(spacing)) / 1000.0 <= CONTACT_MAX_ML
        remove[0] = False
        out[box] |= remove[pieces]
    return out


def no_head_message(found_ml: float, skin_hu: float) -> str:
    """The error text when the volume holds no head."""
    return (
        f"no head found: the largest body of tissue above {skin_hu:g} HU is only {found_ml:.0f} ml "
        f"(a head has at least {MIN_HEAD_ML:.0f} ml); is this a head CT in Hounsfield units?"
    )
