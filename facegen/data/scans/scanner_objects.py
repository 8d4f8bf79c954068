"""What lies around a head in a real CT, added to a volume so that segmentation can be tested on it.

The head lies supine: posterior (-z on the patient axes) is down, toward the table. A curved carbon-fibre
table with two denser rails lies under everything, a foam/plastic headrest cradle touches the back of the head, a
pillow supports the neck and a cable with a copper core crosses just in front of the neck. Everything is
placed from the head's tissue as the volume shows it (HU above -300) and drawn in world millimetres through the
volume's geometry, so any spacing and orientation works. An object only takes the air share of a voxel: it may
touch the skin but never replaces tissue. Parts outside the field of view are cut off, as a scanner cuts them;
render with a margin of ~40 mm so that the table shows.

Dental metal (fillings) also adds the streaks metal causes in the acquisition slices: alternating bright and
dark lines through each filling and a dark band between fillings that share a slice, decaying with distance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facegen.io.volume import Volume

AIR_HU = -1000.0
SOFT_HU = 40.0
METAL_HU = 3071.0
HU_LIMITS = (-1024.0, 3071.0)
TISSUE_HU = -300.0
"""What counts as the head's tissue when objects are placed around it."""
CRANIUM_MM = 120.0
"""The occiput is looked for in the top `CRANIUM_MM` of the tissue (the neck and shoulders may lie lower)."""
_SURVEY_STEP_MM = 2.0
_BoxIndex = tuple[slice, slice, slice]
_Field = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Signed distance (mm, negative inside) of world points given as broadcastable x, y, z arrays."""


@dataclass(frozen=True)
class _HeadSurvey:
    """Where the head lies: its extent, the back of the skull, and the front of the neck (world mm)."""

    lo: np.ndarray
    hi: np.ndarray
    x_mid: float
    occiput: np.ndarray
    neck_y: float
    neck_front_z: float


def add_scanner_objects(
    volume: Volume,
    rng: np.random.Generator,
    *,
    table: bool = True,
    headrest: bool = True,
    cable: bool = True,
    pillow: bool = True,
) -> Volume:
    """The volume with a table, headrest cradle, pillow and cable around its supine head (int16 HU).

    Sizes, densities and small offsets are drawn from `rng`; the headrest touches the back of the head and the
    cable the front of the neck. Raises ValueError when the volume shows no tissue to place them around.
    """
    layout = _Layout.drawn(_survey_head(volume), rng)
    hu = np.array(volume.array, dtype=np.int16, copy=True)
    if table:
        _add_table(hu, volume, layout, rng)
    if headrest:
        _add_headrest(hu, volume, layout, rng)
    if pillow:
        _add_pillow(hu, volume, layout, rng)
    if cable:
        _add_cable(hu, volume, layout.survey, rng)
    return Volume(hu, volume.spacing_mm, volume.origin_mm, volume.direction)


@dataclass(frozen=True)
class _Layout:
    """Where the table and the headrest cradle go (world mm): a table curved across x, a cradle curved both ways."""

    survey: _HeadSurvey
    table_top: float
    table_mm: float
    table_radius: float
    cradle_mm: float
    cradle_radii: tuple[float, float]
    cradle_half_width: float
    cradle_y: tuple[float, float]

    @classmethod
    def drawn(cls, survey: _HeadSurvey, rng: np.random.Generator) -> _Layout:
        """Sizes from `rng`: the cradle's inner surface touches the occiput; the table lies under everything."""
        occiput = survey.occiput
        cradle_mm = float(rng.uniform(4.0, 6.0))
        cradle_radii = (float(rng.uniform(250.0, 400.0)), float(rng.uniform(400.0, 600.0)))
        cradle_half_width = float(rng.uniform(70.0, 90.0))
        cradle_y = (float(occiput[1] - rng.uniform(40.0, 55.0)), float(occiput[1] + rng.uniform(60.0, 90.0)))
        table_mm, table_radius = float(rng.uniform(3.0, 5.0)), float(rng.uniform(500.0, 900.0))
        below_head = survey.lo[2] - float(rng.uniform(2.0, 6.0))
        below_cradle = occiput[2] - cradle_mm - float(rng.uniform(3.0, 8.0))
        return cls(
            survey,
            min(below_head, below_cradle),
            table_mm,
            table_radius,
            cradle_mm,
            cradle_radii,
            cradle_half_width,
            cradle_y,
        )

    def table_top_z(self, x: np.ndarray) -> np.ndarray:
        """Height (z) of the table's top surface across x."""
        return self.table_top + (x - self.survey.x_mid) ** 2 / (2.0 * self.table_radius)

    def cradle_inner_z(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height (z) of the cradle's inner surface: the occiput's height at the occiput, rising around it."""
        o, (rx, ry) = self.survey.occiput, self.cradle_radii
        return o[2] + (x - o[0]) ** 2 / (2.0 * rx) + (y - o[1]) ** 2 / (2.0 * ry)


_FAR_MM = 1000.0


def _add_table(hu: np.ndarray, volume: Volume, layout: _Layout, rng: np.random.Generator) -> None:
    """A carbon-fibre table shell (200-400 HU) under the head, and two denser rails (800-1200 HU) beneath it."""
    x_mid, half, thick = layout.survey.x_mid, 230.0, layout.table_mm

    def shell(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(np.abs(z - (layout.table_top_z(x) - thick / 2)) - thick / 2, np.abs(x - x_mid) - half)

    lo = [x_mid - half, -_FAR_MM, layout.table_top - thick - 1.0]
    hi = [x_mid + half, _FAR_MM, float(layout.table_top_z(np.array(x_mid + half))) + 1.0]
    _paint(hu, volume, lo, hi, shell, float(rng.uniform(200.0, 400.0)), 30.0, rng)
    radius = float(rng.uniform(1.0, 2.0))
    for side in (-1.0, 1.0):
        x0 = x_mid + side * float(rng.uniform(70.0, 100.0))
        z0 = float(layout.table_top_z(np.array(x0))) - thick - radius

        def rail(x: np.ndarray, y: np.ndarray, z: np.ndarray, x0: float = x0, z0: float = z0) -> np.ndarray:
            return np.hypot(x - x0, z - z0) - radius

        lo = [x0 - 2 * radius - 1, -_FAR_MM, z0 - 2 * radius - 1]
        hi = [x0 + 2 * radius + 1, _FAR_MM, z0 + 2 * radius + 1]
        _paint(hu, volume, lo, hi, rail, float(rng.uniform(800.0, 1200.0)), 30.0, rng)


def _add_headrest(hu: np.ndarray, volume: Volume, layout: _Layout, rng: np.random.Generator) -> None:
    """A foam/plastic cradle shell (-200..-50 HU) under the back of the head, touching it at the occiput."""
    o, half, thick, (y_lo, y_hi) = layout.survey.occiput, layout.cradle_half_width, layout.cradle_mm, layout.cradle_y

    def cradle(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        shell = np.abs(z - (layout.cradle_inner_z(x, y) - thick / 2)) - thick / 2
        return np.maximum(np.maximum(shell, np.abs(x - o[0]) - half), np.maximum(y_lo - y, y - y_hi))

    top = float(layout.cradle_inner_z(np.array(o[0] + half), np.array(y_hi)))
    lo = [o[0] - half - 1, y_lo - 1, o[2] - thick - 1]
    hi = [o[0] + half + 1, y_hi + 1, top + 1]
    _paint(hu, volume, lo, hi, cradle, float(rng.uniform(-200.0, -50.0)), 25.0, rng)


def _add_pillow(hu: np.ndarray, volume: Volume, layout: _Layout, rng: np.random.Generator) -> None:
    """A pillow (-700..-400 HU, grainy) on the table under the neck, below the cradle."""
    x_mid, top = layout.survey.x_mid, layout.table_top + float(rng.uniform(20.0, 40.0))
    y_lo, y_hi = layout.survey.lo[1] - 50.0, layout.cradle_y[0] - float(rng.uniform(2.0, 8.0))

    def pillow(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = np.maximum(np.maximum(layout.table_top_z(x) - z, z - top), np.abs(x - x_mid) - 120.0)
        return np.maximum(d, np.maximum(y_lo - y, y - y_hi))

    lo = [x_mid - 121, y_lo - 1, layout.table_top - 1]
    hi = [x_mid + 121, y_hi + 1, top + 1]
    _paint(hu, volume, lo, hi, pillow, float(rng.uniform(-700.0, -400.0)), 60.0, rng)


def _add_cable(hu: np.ndarray, volume: Volume, survey: _HeadSurvey, rng: np.random.Generator) -> None:
    """A cable (copper core in insulation) across the front of the neck, touching the skin at the midline."""
    outer, core = float(rng.uniform(1.5, 2.2)), float(rng.uniform(0.5, 1.0))
    slope, sag = float(rng.uniform(-0.15, 0.15)), float(rng.uniform(200.0, 400.0))
    x_mid, y0, z0 = survey.x_mid, survey.neck_y, survey.neck_front_z + outer

    def axis_distance(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.hypot(y - (y0 + slope * (x - x_mid)), z - (z0 - (x - x_mid) ** 2 / (2 * sag)))

    span = 300.0
    lo = [x_mid - span, y0 - span * abs(slope) - 2 * outer - 1, z0 - span**2 / (2 * sag) - 2 * outer - 1]
    hi = [x_mid + span, y0 + span * abs(slope) + 2 * outer + 1, z0 + 2 * outer + 1]
    insulation_hu = float(rng.uniform(150.0, 400.0))
    _paint(hu, volume, lo, hi, lambda x, y, z: axis_distance(x, y, z) - outer, insulation_hu, 30.0, rng)
    _paint(hu, volume, lo, hi, lambda x, y, z: axis_distance(x, y, z) - core, METAL_HU, 0.0, rng, replace=True)


def add_dental_metal(volume: Volume, teeth_points_mm: np.ndarray, rng: np.random.Generator) -> Volume:
    """The volume with a metal filling (3071 HU, 1.5-2.5 mm radius) at each tooth point and its streaks (int16).

    Streaks lie in the acquisition slices (planes across the array axis closest to superior) that the fillings
    cross: 8-14 alternating bright and dark lines through each filling, several hundred to ~1000 HU, fading
    over 30-60 mm, and a dark band between fillings that share a slice.
    """
    points = np.atleast_2d(np.asarray(teeth_points_mm, float))
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"teeth_points_mm must be (n, 3) world points, got shape {points.shape}")
    hu = volume.array.astype(np.float32)
    radii = rng.uniform(1.5, 2.5, size=len(points))
    axis = int(np.argmax(np.abs(volume.direction[1])))
    plane = [a for a in range(3) if a != axis]
    centres = volume.world_to_index(points)
    weights = [_slice_weights(volume, axis, float(c[axis]), float(r)) for c, r in zip(centres, radii, strict=True)]
    u = (np.arange(volume.shape[plane[0]]) * volume.spacing_mm[plane[0]]).astype(np.float32)[:, None]
    v = (np.arange(volume.shape[plane[1]]) * volume.spacing_mm[plane[1]]).astype(np.float32)[None, :]
    for n, (centre, radius) in enumerate(zip(centres, radii, strict=True)):
        c = centre[plane] * volume.spacing_mm[plane]
        pattern = _radial_streaks(u - np.float32(c[0]), v - np.float32(c[1]), float(radius), rng)
        for m in range(n):
            shared = np.minimum(weights[n], weights[m])
            if shared.any():
                other = centres[m][plane] * volume.spacing_mm[plane]
                band = _dark_band(u, v, c, other, float(max(radius, radii[m])), rng)
                _add_to_slices(hu, axis, shared, band)
        _add_to_slices(hu, axis, weights[n], pattern)
    for point, radius in zip(points, radii, strict=True):
        lo, hi = point - radius - 2.0, point + radius + 2.0
        box = _index_box(volume, lo, hi)
        if box is None:
            continue
        x, y, z = _world_axes(volume, box)
        share = _share(np.sqrt((x - point[0]) ** 2 + (y - point[1]) ** 2 + (z - point[2]) ** 2) - radius, volume)
        region = hu[box]
        region += share * (np.float32(METAL_HU) - region)
    return Volume(_to_int16(hu), volume.spacing_mm, volume.origin_mm, volume.direction)


def _slice_weights(volume: Volume, axis: int, centre: float, radius: float) -> np.ndarray:
    """Per slice along `axis`, how strongly a filling of `radius` (mm) centred at index `centre` streaks it."""
    h = float(volume.spacing_mm[axis])
    distance = np.abs(np.arange(volume.shape[axis]) - centre) * h
    return np.clip((radius + h / 2 - distance) / h, 0.0, 1.0).astype(np.float32)


def _radial_streaks(du: np.ndarray, dv: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Alternating bright and dark lines through a filling at in-plane offsets (du, dv) mm, fading outward."""
    count = int(rng.integers(8, 15))
    angles = np.sort(rng.uniform(0.0, np.pi, size=count))
    signs = np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    out = np.zeros(np.broadcast_shapes(du.shape, dv.shape), np.float32)
    fade = float(rng.uniform(30.0, 60.0))
    for angle, sign in zip(angles, signs, strict=True):
        amplitude = sign * float(rng.uniform(300.0, 1000.0))
        width = float(rng.uniform(0.5, 1.2))
        along = du * np.float32(np.cos(angle)) + dv * np.float32(np.sin(angle))
        across = dv * np.float32(np.cos(angle)) - du * np.float32(np.sin(angle))
        decay = np.exp(-np.maximum(np.abs(along) - radius, 0.0) / np.float32(fade))
        out += np.float32(amplitude) * np.exp(-0.5 * (across / np.float32(width)) ** 2) * decay
    return out


def _dark_band(
    u: np.ndarray, v: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, rng: np.random.Generator
) -> np.ndarray:
    """The dark streak joining two fillings in a slice: full depth between them, fading beyond."""
    direction = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    length = float(np.linalg.norm(b - a))
    along = (u - np.float32(a[0])) * np.float32(direction[0]) + (v - np.float32(a[1])) * np.float32(direction[1])
    across = (v - np.float32(a[1])) * np.float32(direction[0]) - (u - np.float32(a[0])) * np.float32(direction[1])
    beyond = np.maximum(np.maximum(-along, along - np.float32(length)), 0.0)
    depth = float(rng.uniform(500.0, 900.0))
    return -np.float32(depth) * np.exp(-0.5 * (across / np.float32(width)) ** 2) * np.exp(-beyond / np.float32(40.0))


def _add_to_slices(hu: np.ndarray, axis: int, weights: np.ndarray, pattern: np.ndarray) -> None:
    """Add `pattern` (an in-plane image) times each slice's weight to the slices along `axis`."""
    slices = np.moveaxis(hu, axis, 0)
    for index in np.flatnonzero(weights):
        slices[index] += weights[index] * pattern


def _survey_head(volume: Volume) -> _HeadSurvey:
    """Extent, occiput and neck of the tissue in a volume, from a ~2 mm sample refined at full resolution."""
    step = np.maximum(1, np.round(_SURVEY_STEP_MM / volume.spacing_mm)).astype(int)
    sample = volume.array[:: step[0], :: step[1], :: step[2]] > TISSUE_HU
    index = np.argwhere(sample) * step
    if len(index) == 0:
        raise ValueError("no tissue above -300 HU in the volume: nothing to place scanner objects around")
    points = volume.index_to_world(index)
    lo, hi = points.min(axis=0), points.max(axis=0)
    x_mid = float(0.5 * (lo[0] + hi[0]))
    cranium = points[points[:, 1] > hi[1] - CRANIUM_MM]
    occiput = _refine(volume, cranium[np.argmin(cranium[:, 2])], lambda p: -p[:, 2])
    y = points[:, 1]
    levels = np.arange(lo[1] + 15.0, min(hi[1] - CRANIUM_MM, occiput[1] - 40.0), 5.0)
    if len(levels):
        area = np.array([np.count_nonzero(np.abs(y - level) < 2.5) for level in levels])
        neck_y = float(levels[np.argmin(area)])
    else:
        neck_y = float(lo[1] + 0.2 * (hi[1] - lo[1]))
    near = points[(np.abs(y - neck_y) < 3.0) & (np.abs(points[:, 0] - x_mid) < 15.0)]
    front = near[np.argmax(near[:, 2])] if len(near) else np.array([x_mid, neck_y, hi[2]])
    front = _refine(volume, front, lambda p: p[:, 2] - 10.0 * np.abs(p[:, 0] - x_mid))
    return _HeadSurvey(lo, hi, x_mid, occiput, neck_y, float(front[2]))


def _refine(volume: Volume, point: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The best-scoring tissue voxel centre (full resolution) within 4 mm of a surveyed point."""
    box = _index_box(volume, point - 4.0, point + 4.0)
    if box is None:
        return point
    tissue = np.argwhere(volume.array[box] > TISSUE_HU)
    if len(tissue) == 0:
        return point
    candidates = volume.index_to_world(tissue + [s.start for s in box])
    return candidates[np.argmax(score(candidates))]


def _index_box(volume: Volume, lo: np.ndarray, hi: np.ndarray) -> _BoxIndex | None:
    """Index box of the voxels whose centres may lie in the world box [lo, hi] (mm); None when outside the volume."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array(np.meshgrid(*np.stack([lo, hi]).T, indexing="ij")).reshape(3, -1).T
    index = volume.world_to_index(corners)
    start = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 2, volume.shape)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def _world_axes(volume: Volume, box: _BoxIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z (mm, float32) of the voxel centres in `box` as arrays that broadcast to the box's shape."""
    axes = [np.arange(s.start, s.stop, dtype=float) * h for s, h in zip(box, volume.spacing_mm, strict=True)]
    shaped = [a.reshape([-1 if d == n else 1 for d in range(3)]) for n, a in enumerate(axes)]
    return tuple(
        (volume.origin_mm[c] + sum(volume.direction[c, n] * shaped[n] for n in range(3))).astype(np.float32)
        for c in range(3)
    )


def _share(distance: np.ndarray, volume: Volume) -> np.ndarray:
    """Share of a voxel inside an object from the signed distance of its centre (a one-voxel ramp)."""
    h = np.float32(np.mean(volume.spacing_mm))
    return np.clip(np.float32(0.5) - distance / h, 0.0, 1.0).astype(np.float32)


def _paint(
    hu: np.ndarray,
    volume: Volume,
    lo: list[float],
    hi: list[float],
    field: _Field,
    value_hu: float,
    noise_hu: float,
    rng: np.random.Generator,
    *,
    replace: bool = False,
) -> None:
    """Draw an object of `value_hu` (+ noise) into the int16 `hu` inside world box [lo, hi].

    By default it fills only the air share of each voxel; `replace` overwrites whatever is there (metal).
    """
    box = _index_box(volume, np.asarray(lo), np.asarray(hi))
    if box is None:
        return
    share = _share(field(*_world_axes(volume, box)), volume)
    share = np.broadcast_to(share, tuple(s.stop - s.start for s in box))
    if not share.any():
        return
    region = hu[box].astype(np.float32)
    value = np.float32(value_hu)
    if noise_hu > 0:
        value = value + np.float32(noise_hu) * rng.standard_normal(region.shape, dtype=np.float32)
    if replace:
        region += share * (value - region)
    else:
        air = np.clip((np.float32(SOFT_HU) - region) / np.float32(SOFT_HU - AIR_HU), 0.0, 1.0)
        region += share * air * (value - np.float32(AIR_HU))
    hu[box] = _to_int16(region)


def _to_int16(hu: np.ndarray) -> np.ndarray:
    """HU rounded and clipped to the scanner's 12-bit range."""
    return np.clip(np.rint(hu), *HU_LIMITS).astype(np.int16)
