"""Bone that a frontal view sees through the skull's openings: the orbits' walls and the column behind the nose.

The template skull is a shell under the skin: through the orbits, the nasal aperture and any gap between the
teeth a frontal view sees the inside of the back of the skull, 150 mm deep. In a real head the orbit is a
funnel whose walls meet at the optic canal (orbit depth, `ORBIT_DEPTH_MM`), and behind the nasal cavity and the
mouth stand the sphenoid, the clivus and the cervical spine, in front of basion (placed by Howells' BAR and the
nasion-basion angle at the ear axis; vertebral bodies of published width and depth, their back face on the
vertical through basion, the spine's curvature ignored). Both are built per head from its own landmarks, as thin
closed meshes that join the skull mesh. Coordinates are the generator's (before the head is posed), mm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.data.subject import Sex
from facegen.data.synthetic.craniometry_table import (
    ALVEOLAR_BREADTH_MM,
    BASION_RADIUS_MM,
    NASION_BASION_ANGLE_DEG,
    ORBIT_DEPTH_MM,
    VERTEBRAL_BODY_DEPTH_MM,
    VERTEBRAL_BODY_WIDTH_MM,
)

WALL_MM = 2.0
"""Thickness of the orbit walls as built (thin bone; a coarse scan may lose it)."""
RIM_OVERLAP = 1.15
RIM_SETBACK_MM = 3.0
"""The funnel starts this much wider than the orbit's opening and this far behind its margin, so that its edge
stays hidden in the bone around the opening."""
SECTIONS = 40
RINGS = 10
COLUMN_BELOW_MENTON_MM = 30.0
"""The column ends this far below menton: below the mandible, where a frontal view sees it, within the neck."""
COLUMN_ABOVE_ORBIT_FLOOR_MM = 10.0
BUCCAL_BELOW_PROSTHION_MM = -22.0
BUCCAL_ABOVE_PROSTHION_MM = 3.0
"""The band of the teeth: from below the lower gum line (the template's gums lie 22 mm apart, the upper at
prosthion) to just above the upper alveolar crest."""
RAMUS_HALF_WIDTH_MM = 14.0
"""The ramus' front lies this far in front of its mid point (as the template skull was cut)."""
"""...and starts this far above the orbits' lower margins: the sphenoid body behind the upper nasal cavity."""


@dataclass(frozen=True)
class InteriorDraw:
    """One head's interior sizes: orbit depth, dental arch breadth, basion radius, vertebral body width and depth
    (mm), and the angle at the ear axis from nasion to basion (degrees)."""

    orbit_depth: float
    alveolar_breadth: float
    basion_angle: float
    basion_radius: float
    column_width: float
    column_depth: float

    @staticmethod
    def draw(sex: Sex, rng: np.random.Generator) -> InteriorDraw:
        """Sizes drawn from their published means and SDs (normal, within 2.5 SD)."""

        def normal(mean_sd: tuple[float, float]) -> float:
            return float(mean_sd[0] + mean_sd[1] * np.clip(rng.standard_normal(), -2.5, 2.5))

        return InteriorDraw(
            orbit_depth=normal(ORBIT_DEPTH_MM),
            alveolar_breadth=normal(ALVEOLAR_BREADTH_MM[sex]),
            basion_angle=normal(NASION_BASION_ANGLE_DEG[sex]),
            basion_radius=normal(BASION_RADIUS_MM[sex]),
            column_width=normal(VERTEBRAL_BODY_WIDTH_MM[sex]),
            column_depth=VERTEBRAL_BODY_DEPTH_MM[sex],
        )


def funnel(rim_centre: np.ndarray, radii: np.ndarray, rim_z: np.ndarray, depth_mm: float) -> trimesh.Trimesh:
    """A closed thin-walled funnel opening to the front (+z): an elliptic rim (centre x, y and `radii`; its z
    per direction from `rim_z`, the z at +x, -x, +y, -y) narrowing to an apex `depth_mm` behind `rim_centre`;
    the inner wall faces the opening."""
    angle = np.linspace(0.0, 2 * np.pi, SECTIONS, endpoint=False)
    cos, sin = np.cos(angle), np.sin(angle)
    px, mx, py, my = rim_z
    edge_z = (
        (px + mx + py + my) / 4
        + (px - mx) / 2 * cos
        + (py - my) / 2 * sin
        + (px + mx - py - my) / 4 * np.cos(2 * angle)
    )
    apex = rim_centre + np.array([0.0, 0.0, -depth_mm])
    s = np.linspace(0.0, 1.0, RINGS, endpoint=False)[:, None]
    rings = []
    for offset in (0.0, WALL_MM):  # inner wall, then the outer one behind it
        x = rim_centre[0] + (1.0 - s) * (radii[0] + offset) * cos[None]
        y = rim_centre[1] + (1.0 - s) * (radii[1] + offset) * sin[None]
        z = (1.0 - s) * edge_z[None] + s * apex[2] - offset
        rings.append(np.stack([x, y, z], axis=-1).reshape(-1, 3))
    vertices = np.vstack([rings[0], rings[1], apex, apex - [0.0, 0.0, WALL_MM]])
    n = RINGS * SECTIONS
    j = np.arange(SECTIONS)
    k = (j + 1) % SECTIONS
    walls = []
    for base in (0, n):
        wall = []
        for i in range(RINGS - 1):
            a, b = base + i * SECTIONS, base + (i + 1) * SECTIONS
            wall += [np.stack([a + j, a + k, b + k], 1), np.stack([a + j, b + k, b + j], 1)]
        last = base + (RINGS - 1) * SECTIONS
        wall.append(np.stack([last + j, last + k, np.full(SECTIONS, 2 * n + base // n)], 1))
        walls.append(np.vstack(wall))
    rim = [np.stack([k, j, n + j], 1), np.stack([k, n + j, n + k], 1)]  # joins the walls at the opening
    mesh = trimesh.Trimesh(vertices, np.vstack([walls[0], walls[1][:, ::-1], *rim]), process=False)
    if mesh.volume < 0:  # consistently wound by construction; make it face outward
        mesh.invert()
    return mesh


def orbit_funnels(lm: dict[str, np.ndarray], depth_mm: float) -> list[trimesh.Trimesh]:
    """Both orbits' walls, from just behind their margins (tracked craniometric points) back to the optic canal."""
    out = []
    for side in ("l", "r"):
        names = ("ectoconchion", "dacryon", "orbit_top", "orbit_bottom")
        lateral, medial, top, bottom = (lm[f"{k}_{side}"] for k in names)
        plus_x, minus_x = (lateral, medial) if lateral[0] > medial[0] else (medial, lateral)
        margins = np.stack([plus_x, minus_x, top, bottom])
        centre = margins.mean(axis=0)
        radii = RIM_OVERLAP * 0.5 * np.array([plus_x[0] - minus_x[0], top[1] - bottom[1]])
        out.append(funnel(centre, radii, margins[:, 2] - RIM_SETBACK_MM, depth_mm))
    return out


def posterior_column(lm: dict[str, np.ndarray], draw: InteriorDraw) -> trimesh.Trimesh:
    """Sphenoid, clivus and cervical vertebral bodies as one elliptic column in front of basion."""
    origin = 0.5 * (lm["porion_l"] + lm["porion_r"])
    nasion = lm["nasion"] - origin
    towards = np.arctan2(nasion[1], nasion[2]) - np.radians(draw.basion_angle)  # turned down from nasion
    basion_z = draw.basion_radius * np.cos(towards)
    top = 0.5 * (lm["orbit_bottom_l"][1] + lm["orbit_bottom_r"][1]) - origin[1] + COLUMN_ABOVE_ORBIT_FLOOR_MM
    bottom = lm["menton"][1] - origin[1] - COLUMN_BELOW_MENTON_MM
    column = trimesh.creation.cylinder(radius=1.0, height=top - bottom, sections=32)
    column.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1.0, 0.0, 0.0]))  # axis along y
    column.apply_scale([draw.column_width / 2, 1.0, draw.column_depth / 2])
    centre = origin + np.array([0.0, 0.5 * (top + bottom), basion_z + draw.column_depth / 2])
    column.apply_translation(centre)
    return column


def interior_bone(lm: dict[str, np.ndarray], draw: InteriorDraw) -> trimesh.Trimesh:
    """Orbit funnels and the posterior column as one mesh."""
    return trimesh.util.concatenate([*orbit_funnels(lm, draw.orbit_depth), posterior_column(lm, draw)])


def buccal_space(lm: dict[str, np.ndarray], draw: InteriorDraw) -> Callable[[np.ndarray], np.ndarray]:
    """Where no bone is (N, 3) -> bool: lateral to the dental arches (Howells MAB), between the gums and in front
    of the ramus, where the template's shell follows the cheeks. A frontal view there sees past the teeth."""
    low, high = lm["prosthion"][1] + BUCCAL_BELOW_PROSTHION_MM, lm["prosthion"][1] + BUCCAL_ABOVE_PROSTHION_MM
    ramus_front = 0.5 * (lm["mid_ramus_l"][2] + lm["mid_ramus_r"][2]) + RAMUS_HALF_WIDTH_MM
    centre = 0.5 * (lm["mid_ramus_l"][0] + lm["mid_ramus_r"][0])

    def empty(p: np.ndarray) -> np.ndarray:
        return (
            (np.abs(p[:, 0] - centre) > draw.alveolar_breadth / 2)
            & (p[:, 1] > low)
            & (p[:, 1] < high)
            & (p[:, 2] > ramus_front)
        )

    return empty
