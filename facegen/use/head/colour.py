"""Colour a fitted head by what is known: irises by eye class, brows and lashes by hair, skin by skin class.

Each shown combination of classes (`Appearance.combinations`: every class with p >= 0.2) becomes one head
variant with per-vertex colours from a fixed palette, one colour per class: a head is never a blend of two
classes (no blue-brown eyes). Unknown traits take a neutral colour and say so. The palette is illustrative
(typical sRGB tones of each category), not measured from the person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.use.head.appearance import Appearance
from facegen.use.head.fit import HeadFit
from facegen.use.head.model import Part
from facegen.use.head.regions import EyeZone, eye_zones, eyebrow_weight, lash_length_fraction

RGB = tuple[int, int, int]
IRIS: dict[str | None, RGB] = {
    "blue": (86, 130, 178),
    "intermediate": (118, 128, 78),  # green-hazel, between blue and brown
    "brown": (92, 58, 34),
    None: (128, 128, 128),  # unknown: mid grey
}
PUPIL: RGB = (14, 12, 12)
SCLERA: RGB = (236, 232, 224)
LIMBUS_DARKENING = 0.55
"""The limbal ring at the iris's edge: the iris colour darkened to 55 %."""
HAIR: dict[tuple[str | None, str | None], RGB] = {
    ("blond", "light"): (222, 196, 140),
    ("blond", "dark"): (176, 140, 88),
    ("blond", None): (199, 168, 114),
    ("brown", "light"): (140, 100, 66),
    ("brown", "dark"): (82, 56, 38),
    ("brown", None): (111, 78, 52),
    ("red", "light"): (186, 98, 52),
    ("red", "dark"): (130, 56, 30),
    ("red", None): (158, 77, 41),
    ("black", "light"): (52, 44, 40),
    ("black", "dark"): (24, 20, 18),
    ("black", None): (38, 32, 29),
    (None, "light"): (120, 112, 104),
    (None, "dark"): (70, 66, 62),
    (None, None): (92, 88, 84),  # unknown: a neutral grey-brown that claims no colour
}
"""Eyebrow colour by hair colour and shade; with the shade unknown, the midpoint of the colour's two shades."""
LASH_DARKENING = 0.7
"""Eyelashes are drawn at 70 % of the brow colour: lashes are usually darker than the hair."""
SKIN: dict[str | None, RGB] = {
    "very_pale": (240, 214, 196),
    "pale": (226, 186, 158),
    "intermediate": (196, 146, 108),
    "dark": (140, 94, 64),
    "dark_to_black": (84, 56, 40),
    None: (200, 188, 178),  # unknown: a neutral warm grey
}
BROW_DENSITY = 0.85
"""How much of the skin the brow covers at its core (skin shows between the hairs)."""
LASH_DENSITY = (0.9, 0.55)
"""Lash colour cover at the lid and at the tip (the model's upper lashes; the lower ones are left out)."""


@dataclass(frozen=True)
class HeadVariant:
    """One coloured head: `name` (for files), `label` (for people), the `classes` and `probabilities` shown
    per trait (None: unknown), the fitted `mesh` and its `colours` ((V, 3) uint8 RGB)."""

    name: str
    label: str
    classes: dict[str, str | None]
    probabilities: dict[str, float | None]
    mesh: trimesh.Trimesh
    colours: np.ndarray

    def record(self) -> dict[str, object]:
        """Plain values for the case's JSON record."""
        return {"name": self.name, "label": self.label, "classes": self.classes, "probabilities": self.probabilities}


def _mix(base: np.ndarray, colour: RGB, amount: np.ndarray) -> np.ndarray:
    """Per-vertex mix of base colours (N, 3) toward one colour by amount (N,) in 0-1."""
    return base * (1.0 - amount[:, None]) + np.asarray(colour, np.float64) * amount[:, None]


def vertex_colours(fit: HeadFit, classes: dict[str, str | None]) -> np.ndarray:
    """(V, 3) uint8 colours of the fitted head for one class per trait (None: unknown)."""
    model = fit.model
    colours = np.tile(np.asarray(SKIN[classes["skin"]], np.float64), (len(model.mean), 1))
    skin = colours[0].copy()
    brow = HAIR[(classes["hair_colour"], classes["hair_shade"])]
    colours = _mix(colours, brow, BROW_DENSITY * eyebrow_weight(model))
    lashes = model.mask(Part.EYELASHES)
    cover = np.interp(lash_length_fraction(model), [0.0, 1.0], LASH_DENSITY)
    lash = tuple(int(round(LASH_DARKENING * c)) for c in brow)
    colours[lashes] = _mix(np.tile(skin, (int(lashes.sum()), 1)), lash, cover)
    zones = eye_zones(model)
    iris = np.asarray(IRIS[classes["eye"]], np.float64)
    colours[zones == EyeZone.SCLERA.value] = SCLERA
    colours[zones == EyeZone.IRIS.value] = iris
    colours[zones == EyeZone.LIMBUS.value] = LIMBUS_DARKENING * iris
    colours[zones == EyeZone.PUPIL.value] = PUPIL
    return np.clip(np.rint(colours), 0, 255).astype(np.uint8)


def _name(classes: dict[str, str | None]) -> str:
    """A file-name stem for one combination, e.g. eye-blue_hair-brown-dark (skin only when known)."""
    hair = "-".join(c for c in (classes["hair_colour"], classes["hair_shade"]) if c) or "unknown"
    parts = [f"eye-{classes['eye'] or 'unknown'}", f"hair-{hair}"]
    if classes["skin"]:
        parts.append(f"skin-{classes['skin'].replace('_', '-')}")
    return "_".join(parts)


def _label(classes: dict[str, str | None], probabilities: dict[str, float | None]) -> str:
    """A plain label, e.g. "eyes blue (p = 0.62); hair brown (p = 0.55), dark (p = 0.71); skin unknown"."""

    def said(trait: str, what: str) -> str:
        c, p = classes[trait], probabilities[trait]
        return f"{what} unknown" if c is None else f"{c.replace('_', ' ')} (p = {p:.2f})"

    hair = said("hair_colour", "colour")
    if classes["hair_shade"] is not None:
        hair += f", {said('hair_shade', 'shade')}"
    skin = said("skin", "") if classes["skin"] else "unknown (neutral tone)"
    return f"eyes {said('eye', 'colour')}; hair {hair}; skin {skin}"


def colour_head(fit: HeadFit, appearance: Appearance | None = None, *, max_variants: int = 16) -> list[HeadVariant]:
    """One coloured head per shown combination of classes (each class with p >= 0.2), likeliest first, at most
    `max_variants`; with no appearance, one head in neutral colours."""
    if max_variants < 1:
        raise ValueError(f"max_variants must be at least 1, got {max_variants}")
    combos = (appearance or Appearance()).combinations()[:max_variants]
    variants = []
    for combo in combos:
        classes = {trait: c for trait, (c, _) in combo.items()}
        probabilities = {trait: (None if p is None else round(p, 4)) for trait, (_, p) in combo.items()}
        variants.append(HeadVariant(_name(classes), _label(classes, probabilities), classes, probabilities,
                                    fit.mesh, vertex_colours(fit, classes)))  # fmt: skip
    return variants
