"""Head and bone masks from a synthetic CT with a table, headrest, pillow, cable and dental metal around it."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from facegen.data.scans.blocks import block_share
from facegen.data.scans.cavities import fill_cavities
from facegen.data.scans.head_mask import MIN_HEAD_ML
from facegen.data.scans.segment import HeadMasks, segment_head, segment_skull
from facegen.data.synthetic.generator import SyntheticHead
from facegen.io.volume import Volume

SPACING = (1.0, 1.0, 1.25)
NECK_CUT_Y = -140.0
"""The field of view ends here, as a head CT's does: the neck leaves through the bottom of the volume."""


def neck_cut(volume: Volume, y_mm: float) -> Volume:
    """The axial slices (array axis k, superior) at or above world height `y_mm`."""
    k = np.arange(volume.shape[2])
    heights = volume.index_to_world(np.column_stack([np.zeros_like(k), np.zeros_like(k), k]))[:, 1]
    keep = np.flatnonzero(heights >= y_mm)
    origin = volume.index_to_world(np.array([0, 0, keep[0]]))
    return Volume(volume.array[:, :, keep[0] : keep[-1] + 1], volume.spacing_mm, origin, volume.direction)


def teeth_centres(head: SyntheticHead) -> np.ndarray:
    """Centre of each tooth of the skull mesh (teeth are separate components)."""
    labels = trimesh.graph.connected_component_labels(head.skull.face_adjacency, node_count=len(head.skull.faces))
    vertex_label = np.zeros(len(head.skull.vertices), int)
    vertex_label[head.skull.faces.ravel()] = np.repeat(labels, 3)
    centres = []
    for label in np.unique(labels):
        members = vertex_label == label
        if head.skull_is_teeth[members].mean() > 0.5:
            centres.append(head.skull.vertices[members].mean(axis=0))
    return np.array(centres)


def filling_points(head: SyntheticHead) -> np.ndarray:
    """Three fillings: the outermost molar on each side and a front incisor."""
    teeth = teeth_centres(head)
    return teeth[[np.argmax(teeth[:, 0]), np.argmin(teeth[:, 0]), np.argmax(teeth[:, 2])]]


@pytest.fixture(scope="module")
def masks(cluttered: Volume) -> HeadMasks:
    return segment_head(cluttered)


@pytest.fixture(scope="module")
def metal_masks(with_metal: Volume) -> HeadMasks:
    return segment_head(with_metal)


def objects_in(clean: Volume, cluttered: Volume) -> np.ndarray:
    """Voxels where scanner objects were drawn into the air around the head."""
    added = cluttered.array.astype(np.int32) - clean.array
    return (added > 150) & (clean.array < -500)


def test_scanner_objects_surround_the_head(clean: Volume, cluttered: Volume) -> None:
    objects = objects_in(clean, cluttered)
    tissue = clean.array > -300
    assert (ndimage.binary_dilation(tissue, iterations=2) & objects).sum() > 20  # headrest and cable touch the skin
    back_of_head = clean.index_to_world(np.argwhere(tissue))[:, 2].min()
    hu = cluttered.array[objects]
    depth = clean.index_to_world(np.argwhere(objects))[:, 2]  # world z: anterior
    table = (hu > 150) & (hu < 450) & (depth < back_of_head - 3.0)
    assert table.sum() > 10_000  # a table shell behind (below) the supine head
    assert ((hu > -250) & (hu < 0)).sum() > 5_000  # the headrest
    assert ((hu > -800) & (hu < -350)).sum() > 50_000  # the pillow
    assert (hu > 2000).sum() > 50  # the cable's copper core


def test_head_mask_drops_scanner_objects(clean: Volume, cluttered: Volume, masks: HeadMasks) -> None:
    objects = objects_in(clean, cluttered)
    near_skin = ndimage.binary_dilation(clean.array > -300, iterations=1)
    assert not (masks.head & objects & ~near_skin).any()
    assert masks.head.sum() > 0.98 * (ndimage.binary_fill_holes(clean.array > -300)).sum()


def test_head_mask_fills_air_cavities(clean: Volume, masks: HeadMasks) -> None:
    # the airway leaves through the bottom of the volume: enclosed in axial slices (k), not in 3D
    air = clean.array <= -300
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    labels, _ = ndimage.label(air, in_plane)
    edges = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel()]))
    enclosed_air = ~np.isin(labels, edges) & (clean.array < -500)
    assert enclosed_air.sum() > 10_000  # the airway and nasal cavity
    assert masks.head[enclosed_air].all()
    assert np.array_equal(masks.head, ndimage.binary_fill_holes(masks.head))


def test_bone_mask_follows_the_bone(clean: Volume, masks: HeadMasks) -> None:
    bone = clean.array > 300
    agree = (masks.bone & bone).sum() / (masks.bone | bone).sum()
    assert agree > 0.97
    assert not (masks.bone & ~masks.head).any()
    labels, count = ndimage.label(masks.bone)
    assert np.bincount(labels.ravel())[1:].min() >= 30  # no specks (1 mm x 1 mm x 1.25 mm voxels)


def test_metal_streaks_neither_spike_nor_notch_the_head(
    clean: Volume, with_metal: Volume, masks: HeadMasks, metal_masks: HeadMasks
) -> None:
    streaked = np.flatnonzero((with_metal.array > 2800).any(axis=(0, 1)))
    assert len(streaked) >= 4
    objects = objects_in(clean, with_metal)[:, :, streaked]
    truth = masks.head[:, :, streaked]  # the same scan without metal
    spacing = clean.spacing_mm[:2]

    def worst_miss(mask: np.ndarray) -> float:
        """Farthest voxel (mm, in-plane) where `mask` and the truth disagree, from the truth's outline."""
        worst = 0.0
        for n in range(mask.shape[2]):
            outline = truth[:, :, n] ^ ndimage.binary_erosion(truth[:, :, n])
            distance = ndimage.distance_transform_edt(~outline, sampling=spacing)
            wrong = (mask[:, :, n] ^ truth[:, :, n]) & ~objects[:, :, n]
            worst = max(worst, float(distance[wrong].max(initial=0.0)))
        return worst

    naive = np.stack([ndimage.binary_fill_holes(with_metal.array[:, :, k] > -300) for k in streaked], axis=2)
    assert worst_miss(naive) > 6.0  # streaks make spikes and notches of a plain threshold
    assert worst_miss(metal_masks.head[:, :, streaked]) < 2.5
    assert (truth ^ metal_masks.head[:, :, streaked]).sum() < 0.01 * truth.sum()


def test_no_head_raises() -> None:
    empty = Volume(np.full((60, 60, 60), -1000, np.int16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    with pytest.raises(ValueError, match="no head found: the largest body of tissue above -300 HU is only 0 ml"):
        segment_head(empty)
    blob = empty.array.copy()
    grid = np.indices(blob.shape)
    blob[((grid - 30) ** 2).sum(axis=0) <= 10**2] = 40  # a ball of 20 mm radius: ~34 ml
    with pytest.raises(ValueError, match=r"no head found: the largest body of tissue .* is only [1-3]\d ml"):
        segment_head(Volume(blob, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)))


def test_cavities_open_through_the_surface_are_closed_there() -> None:
    # a 'head' ellipsoid with a nostril tube opening downward, a mouth slot opening forward and a dimple
    spacing = np.array([1.5, 1.5, 1.5])
    x, y, z = (np.indices((100, 110, 100)) - np.array([50, 55, 50])[:, None, None, None]) * 1.5
    head = (x / 60) ** 2 + (y / 75) ** 2 + (z / 65) ** 2 <= 1
    nostril = (np.hypot(x - 8, z - 20) < 4) & (y < -10)
    mouth = (np.abs(y + 35) < 3) & (np.abs(x) < 10) & (z > 20)
    dimple = ((x + 30) ** 2 + (y - 20) ** 2 + (z - 62) ** 2) < 12**2
    body = head & ~nostril & ~mouth & ~dimple
    direction = np.eye(3)  # i left, j superior, k anterior
    filled = fill_cavities(body, direction)
    assert filled[head & nostril].mean() > 0.9 and filled[head & mouth].mean() > 0.9
    assert not filled[dimple].any()
    assert not filled[~head].any()
    hu = np.where(body, 40, -1000).astype(np.int16)
    masks = segment_head(Volume(hu, spacing, (0.0, 0.0, 0.0), direction))
    assert masks.head.sum() > 0.99 * (head & ~dimple).sum()
    assert not masks.head[dimple].any()


def test_orientation_and_spacing_do_not_matter(cluttered: Volume, masks: HeadMasks) -> None:
    # the same scan stored with axes permuted and one flipped: k (superior) first, then i reversed, then j
    array = np.ascontiguousarray(cluttered.array.transpose(2, 0, 1)[:, ::-1, :])
    direction = cluttered.direction[:, [2, 0, 1]] * np.array([1.0, -1.0, 1.0])
    origin = cluttered.index_to_world(np.array([cluttered.shape[0] - 1, 0, 0]))
    moved = Volume(array, cluttered.spacing_mm[[2, 0, 1]], origin, direction)
    assert np.allclose(moved.index_to_world([3, 4, 5]), cluttered.index_to_world([cluttered.shape[0] - 1 - 4, 5, 3]))
    back = segment_head(moved).head[:, ::-1, :].transpose(1, 2, 0)
    assert (back ^ masks.head).sum() < 0.01 * masks.head.sum()


def test_segmentation_is_deterministic(cluttered: Volume, masks: HeadMasks) -> None:
    again = segment_head(cluttered)
    assert np.array_equal(again.head, masks.head) and np.array_equal(again.bone, masks.bone)
    assert MIN_HEAD_ML == 500.0


def test_skull_segmentation_finds_the_same_bone(cluttered: Volume, masks: HeadMasks) -> None:
    # on the scan's own grid the bone is the full segmentation's (only the head around it is coarser) ...
    skull = segment_skull(cluttered)
    box = tuple(
        slice(int(a), int(a) + n)
        for a, n in zip(np.round(cluttered.world_to_index(skull.grid.origin_mm)), skull.grid.shape, strict=True)
    )
    assert np.array_equal(skull.grid.array, cluttered.array[box].astype(np.float32))
    assert (masks.bone[box] ^ skull.bone).sum() <= 0.005 * masks.bone.sum()
    assert masks.bone[box].sum() == masks.bone.sum()  # the grid holds all of the head's bone
    # ... and on a grid averaged 2 x 2 x 1, as a 0.5 mm scan gets for its 1 mm skull mesh: the average of the scan's
    # voxels there, the bone the full one's mostly (measured: Dice 0.98)
    averaged = segment_skull(cluttered, grid_mm=2.0)
    grid = averaged.grid
    assert np.allclose(grid.spacing_mm, cluttered.spacing_mm * [2, 2, 1])
    lower = np.round(cluttered.world_to_index(grid.origin_mm) - [0.5, 0.5, 0.0]).astype(int)
    for index in ([0, 0, 0], [40, 50, 60], np.array(grid.shape) - 1):
        start = lower + np.array(index) * [2, 2, 1]
        voxels = cluttered.array[start[0] : start[0] + 2, start[1] : start[1] + 2, start[2]]
        assert grid.array[tuple(index)] == pytest.approx(voxels.mean(), abs=1e-3)
    full = masks.bone[lower[0] :, lower[1] :, lower[2] :][: 2 * grid.shape[0], : 2 * grid.shape[1], : grid.shape[2]]
    full = full.reshape(grid.shape[0], 2, grid.shape[1], 2, grid.shape[2]).mean(axis=(1, 3)) >= 0.5
    assert 2 * (full & averaged.bone).sum() / (full.sum() + averaged.bone.sum()) > 0.96


def test_skull_segmentation_head_is_the_head_on_blocks(clean: Volume, cluttered: Volume, masks: HeadMasks) -> None:
    skull = segment_skull(cluttered)
    factors = np.round(skull.skin.spacing_mm / cluttered.spacing_mm).astype(int)
    lower = np.round(cluttered.world_to_index(skull.skin.origin_mm) - (factors - 1) / 2).astype(int)
    box = tuple(slice(int(a), int(a) + n * f) for a, n, f in zip(lower, skull.skin.shape, factors, strict=True))
    shares = block_share(masks.head[box], factors)
    full = shares[0] * 2 >= shares[1]
    assert (full ^ skull.head).sum() < 0.03 * full.sum()  # the same head, on ~1.5 mm blocks
    objects = block_share(objects_in(clean, cluttered)[box], factors)
    assert not (skull.head & (objects[0] == objects[1])).any()  # no block wholly of a scanner object
    tissue = block_share(cluttered.array[box] > -300, factors)[0] / shares[1]
    assert np.allclose(skull.skin.array, -1000.0 + tissue * 1400.0, atol=0.01)  # the share of tissue, as HU
