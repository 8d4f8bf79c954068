"""What is known of a person's colouring: class probabilities for eye, hair colour, hair shade and skin.

The input of the head's colouring, kept apart from how it was predicted: a DNA phenotype (HIrisPlex eye and
hair, HIrisPlex-S skin from the official web tool) converts to it, and any part may be unknown (None). The
classes are HIrisPlex's own. Which combinations are shown follows one rule: every class with probability at
least `SHOW_MIN_PROBABILITY` gets its own head; classes are never blended.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EYE_CLASSES = ("blue", "intermediate", "brown")
HAIR_COLOURS = ("blond", "brown", "red", "black")
HAIR_SHADES = ("light", "dark")
SKIN_CLASSES = ("very_pale", "pale", "intermediate", "dark", "dark_to_black")
"""HIrisPlex-S's five skin categories (very pale, pale, intermediate, dark, dark to black)."""
CLASSES: dict[str, tuple[str, ...]] = {
    "eye": EYE_CLASSES,
    "hair_colour": HAIR_COLOURS,
    "hair_shade": HAIR_SHADES,
    "skin": SKIN_CLASSES,
}
SHOW_MIN_PROBABILITY = 0.2
"""A class is shown (has its own head) when its probability is at least this; below it, it is only listed."""
SUM_TOLERANCE = 0.01
"""Probabilities of one trait must sum to 1 within this (exported tables round to 2-3 decimals)."""
_ALIASES = {"dark_black": "dark_to_black", "dark-black": "dark_to_black", "blonde": "blond"}


def _class_name(name: str) -> str:
    """A class name as facegen spells it: lower case, words joined by underscores."""
    key = "_".join(str(name).strip().lower().replace("-", " ").split())
    return _ALIASES.get(key, key)


def _checked(trait: str, probabilities: Mapping[str, float] | None) -> dict[str, float] | None:
    """One trait's probabilities with names as facegen spells them, or a ValueError naming the problem."""
    if probabilities is None:
        return None
    known = CLASSES[trait]
    out: dict[str, float] = {}
    for name, p in dict(probabilities).items():
        key = _class_name(name)
        if key not in known:
            raise ValueError(f"{trait}: unknown class {name!r}; the classes are {', '.join(known)}")
        value = float(p)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{trait}: probability of {key} must be in 0-1, got {p!r}")
        out[key] = value
    missing = [c for c in known if c not in out]
    if missing:
        raise ValueError(f"{trait}: no probability for {', '.join(missing)}; give every class (0 where none)")
    total = sum(out.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{trait}: probabilities sum to {total:.4f}, not 1")
    return {c: out[c] for c in known}


@dataclass(frozen=True)
class Appearance:
    """Class probabilities per trait (None: unknown, shown in a neutral colour). `source` says where they
    came from (e.g. "HIrisPlex from a VCF"), for the record."""

    eye: Mapping[str, float] | None = None
    hair_colour: Mapping[str, float] | None = None
    hair_shade: Mapping[str, float] | None = None
    skin: Mapping[str, float] | None = None
    source: str = "not stated"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for trait in CLASSES:
            object.__setattr__(self, trait, _checked(trait, getattr(self, trait)))

    @staticmethod
    def from_dict(data: Mapping[str, Any], *, source: str = "not stated") -> Appearance:
        """From a phenotype record's plain values (`eye`, `hair_colour`, `hair_shade`, `skin`, each a
        {class: probability} or null); other keys are ignored."""
        return Appearance(**{trait: data.get(trait) for trait in CLASSES}, source=source)

    def shown(self, trait: str) -> list[tuple[str | None, float | None]]:
        """The classes of one trait that get their own head, most probable first, as (class, probability);
        [(None, None)] when the trait is unknown."""
        if trait not in CLASSES:
            raise ValueError(f"unknown trait {trait!r}; the traits are {', '.join(CLASSES)}")
        probabilities: dict[str, float] | None = getattr(self, trait)
        if probabilities is None:
            return [(None, None)]
        ranked = sorted(probabilities.items(), key=lambda item: (-item[1], CLASSES[trait].index(item[0])))
        return [(name, p) for name, p in ranked if p >= SHOW_MIN_PROBABILITY]

    def combinations(self) -> list[dict[str, tuple[str | None, float | None]]]:
        """Every combination of shown classes, as {trait: (class, probability)}, the likeliest first (by the
        product of the shown probabilities; the traits' models are separate, so it is an ordering, not a joint
        probability)."""
        shown = [self.shown(trait) for trait in CLASSES]
        combos = [dict(zip(CLASSES, combo, strict=True)) for combo in itertools.product(*shown)]

        def weight(combo: dict[str, tuple[str | None, float | None]]) -> float:
            return math.prod(p for _, p in combo.values() if p is not None)

        return sorted(combos, key=lambda combo: -weight(combo))

    def record(self) -> dict[str, Any]:
        """Plain values for the case's JSON record."""
        return {
            "source": self.source,
            "show_min_probability": SHOW_MIN_PROBABILITY,
            **{trait: getattr(self, trait) for trait in CLASSES},
            "notes": list(self.notes),
        }
