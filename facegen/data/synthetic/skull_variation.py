"""How widely generated skulls vary: "standard" (the template moved by the ICT identity modes, dimorphism and
size) or "wide" (standard, then published craniometric variation, asymmetry, tooth loss, and the bone a
frontal view sees through the skull's openings).

"wide" in order: an asymmetry field; the craniometric fields solved so that the skull's measurements equal a
joint draw from `craniometry_table` (skull and the skin over it move together: the fields are read at the
bone beneath each skin vertex, so tissue depths stay); then the orbit funnels and the posterior column built
on the finished skull's landmarks, and the teeth the subject's age has lost removed. All draws come from the
head's own random stream, after the standard ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.data.subject import Sex, Subject
from facegen.data.synthetic.asymmetry import Asymmetry
from facegen.data.synthetic.craniometry import (
    CraniometricFields,
    MeasureSites,
    draw_targets,
    fit_coefficients,
)
from facegen.data.synthetic.dentition import lost_teeth, tooth_pieces
from facegen.data.synthetic.scanner import ScanDraw, rescan_skull
from facegen.data.synthetic.skull_interior import InteriorDraw, buccal_space, interior_bone
from facegen.data.synthetic.template import HeadTemplate

SKULL_VARIATIONS = ("standard", "wide")
"""Known skull variations; "standard" is what every dataset so far was generated with."""
ASYMMETRY_SITE_STEP = 25
"""Asymmetry bumps are centred on every this-many-th bone vertex of the skull (spread over its surface)."""


def check_skull_variation(name: str) -> str:
    """`name` if it is a known skull variation, else a ValueError that lists them."""
    if name not in SKULL_VARIATIONS:
        raise ValueError(f"unknown skull variation {name!r}; choose one of {', '.join(SKULL_VARIATIONS)}")
    return name


@dataclass(frozen=True)
class WideDraw:
    """One head's wide variation: craniometric targets (mm), asymmetry, interior sizes, lost teeth, and the scan."""

    targets: np.ndarray
    asymmetry: Asymmetry
    interior: InteriorDraw
    lost_teeth: np.ndarray
    scan: ScanDraw


@dataclass(frozen=True)
class WideSkull:
    """The varied skull: vertices and faces (interior bone appended), per-vertex teeth flags and landmarks
    (standard and craniometric)."""

    vertices: np.ndarray
    faces: np.ndarray
    is_teeth: np.ndarray
    landmarks: dict[str, np.ndarray]


class WideSkullVariation:
    """Everything the wide variation derives from the template once: measuring sites and tooth pieces."""

    def __init__(self, template: HeadTemplate, skull_landmarks: dict[str, np.ndarray]) -> None:
        self.template = template
        self.sites = MeasureSites.of(template, skull_landmarks)
        self.teeth = tooth_pieces(template)
        bone = template.skull_vertices[~template.skull_is_teeth]
        self.asymmetry_sites = bone[::ASYMMETRY_SITE_STEP]

    def draw(self, subject: Subject, rng: np.random.Generator) -> WideDraw:
        """Every random choice of one head's wide variation, from its stream."""
        sex = subject.sex if subject.sex is not None else (Sex.MALE if rng.random() < 0.5 else Sex.FEMALE)
        return WideDraw(
            targets=draw_targets(sex, rng),
            asymmetry=Asymmetry.draw(self.asymmetry_sites, rng),
            interior=InteriorDraw.draw(sex, rng),
            lost_teeth=lost_teeth(subject.age_years, len(self.teeth), rng),
            scan=ScanDraw.draw(rng),
        )

    def deform(self, draw: WideDraw, skull_v: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Skull vertices moved by asymmetry and craniometry, and the same displacement at the skin's `anchors`
        (the bone beneath each skin vertex, already moved by the standard fields)."""
        t = self.template
        anchor_shift = draw.asymmetry.displacement(anchors)
        skull_v = skull_v + draw.asymmetry.displacement(skull_v)
        fields = CraniometricFields(self.sites.landmarks(t, skull_v))
        basis = fields.basis(skull_v)
        coefficients, _ = fit_coefficients(lambda v: self.sites.measure(t, v), basis, skull_v, draw.targets)
        skull_v = skull_v + np.tensordot(coefficients, basis, axes=1)
        anchor_shift += np.tensordot(coefficients, fields.basis(anchors + anchor_shift), axes=1)
        return skull_v, anchor_shift

    def skull(self, draw: WideDraw, skull_v: np.ndarray) -> WideSkull:
        """The finished skull: lost teeth removed, orbit funnels and posterior column added, the space lateral to
        the dental arches cleared, then scanned."""
        t = self.template
        landmarks = self.sites.landmarks(t, skull_v)
        keep = np.ones(len(t.skull_triangles), bool)
        for piece, lost in zip(self.teeth, draw.lost_teeth, strict=True):
            keep[piece] = ~lost
        interior = interior_bone(landmarks, draw.interior)
        whole = trimesh.Trimesh(
            np.vstack([skull_v, interior.vertices]),
            np.vstack([t.skull_triangles[keep], np.asarray(interior.faces) + len(skull_v)]),
            process=False,
        )
        is_teeth = np.r_[t.skull_is_teeth, np.zeros(len(interior.vertices), bool)]
        scanned, is_teeth = rescan_skull(whole, is_teeth, draw.scan, empty=buccal_space(landmarks, draw.interior))
        return WideSkull(scanned.vertices, np.asarray(scanned.faces), is_teeth, landmarks)
