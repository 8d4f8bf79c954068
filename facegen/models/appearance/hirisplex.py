"""Eye colour, hair colour and hair shade from HIrisPlex dosages: the published multinomial logistic models.

For class k, score_k = intercept_k + sum over markers of beta_k * dosage (the reference class scores 0), and
P(k) = exp(score_k) / sum_j exp(score_j). A missing marker is left out of the point prediction's score (as for 0
copies of its counted allele) and the range of every probability over all genotypes of the missing markers
(0, 1, 2 copies each) is given beside it. That range is exact, enumerated over all 3^k completions, for up to
EXACT_MISSING_LIMIT missing markers of a model: over a box a softmax probability's minimum lies at a corner but its
maximum can lie inside (at 1 copy), so corners alone would not do. Beyond that the range is a safe bound: every
score difference taken at its own extreme, and the trait gets no point prediction (too little is known). The eye
model is refused without rs12913832, which carries most of it.
Skin colour has no published coefficients: only probabilities exported from the official web tool are shown.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facegen.io.genotypes import HIRISPLEX_MARKERS, SKIN_COLUMNS, Genotypes, read_genotypes, read_webtool_skin
from facegen.models.appearance.hirisplex_coefficients import (
    ACCURACY,
    EYE,
    HAIR_COLOUR,
    HAIR_SHADE,
    PATENTS,
    SOURCES,
)

EXACT_MISSING_LIMIT = 10
"""Up to this many missing markers of one model, ranges are exact (3^10 = 59,049 completions); beyond, bounds."""
EYE_REQUIRED = ("rs12913832",)
SKIN_CLASSES = tuple(SKIN_COLUMNS)
"""very_pale, pale, intermediate, dark, dark_black (HIrisPlex-S's five categories)."""
MISSING_RULE = (
    "A missing marker is left out of the point prediction's score (as for 0 copies of its counted allele); the "
    "range beside each probability is what it can be for every genotype (0, 1 or 2 copies) of the missing markers."
)
SKIN_UNAVAILABLE = (
    "Skin colour: unavailable. The HIrisPlex-S skin model's coefficients are not published in usable form; give "
    "the probabilities the official web tool (https://hirisplex.erasmusmc.nl/) exports to show skin colour."
)
CAVEATS = (
    "The models were fitted and tested on people of European ancestry; accuracy is lower in admixed populations "
    "and is not established in others.",
    "These are probabilities, not a description: intermediate eye colours are predicted least well.",
    "Hair colour is the natural adult colour: greying, dyeing and the darkening of childhood-blond hair are not "
    "predicted.",
    "Skin colour: the five-category HIrisPlex-S model's coefficients are not published in usable form, so facegen "
    "has no skin model; skin is shown only from the official web tool's exported probabilities, else as unavailable.",
    f"Patents exist on the iris-colour prediction method ({', '.join(PATENTS)}); their status was not checked.",
    "A genetic prediction of appearance aids an investigation; it identifies no one.",
)
PRIVACY = ("Only the HIrisPlex dosages and the predictions are kept; the genotype file itself, its other markers and "
           "its sample names are not.")  # fmt: skip


@dataclass(frozen=True)
class MultinomialLogit:
    """One published model: its classes (display order), reference class, intercepts and per-marker betas."""

    name: str
    classes: tuple[str, ...]
    reference: str
    intercept: dict[str, float]
    betas: dict[str, dict[str, float]]
    source: str

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> MultinomialLogit:
        """The model from a table of hirisplex_coefficients."""
        return cls(name, tuple(table["classes"]), table["reference"], dict(table["intercept"]),
                   {k: dict(v) for k, v in table["betas"].items()}, table["source"])  # fmt: skip

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(self.betas)

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Intercepts (K,) and betas (markers, K), the reference class's column all zero."""
        c = np.array([self.intercept.get(k, 0.0) for k in self.classes])
        w = np.array([[self.betas[m].get(k, 0.0) for k in self.classes] for m in self.markers])
        return c, w

    def probabilities(self, dosages: Mapping[str, int | None]) -> dict[str, float]:
        """P(class) with each missing (None or absent) marker left out of the score."""
        c, w = self._weights()
        x = np.array([float(dosages.get(m) or 0) for m in self.markers])
        return dict(zip(self.classes, _softmax(c + x @ w).tolist(), strict=True))

    def ranges(self, dosages: Mapping[str, int | None]) -> tuple[dict[str, tuple[float, float]] | None, bool]:
        """(min, max) of each P(class) over every genotype of the missing markers, and whether exact (None: none
        missing)."""
        missing = [i for i, m in enumerate(self.markers) if dosages.get(m) is None]
        if not missing:
            return None, True
        c, w = self._weights()
        x = np.array([float(dosages.get(m) or 0) for m in self.markers])
        base, w_missing = c + x @ w, w[missing]
        if len(missing) <= EXACT_MISSING_LIMIT:
            grid = np.array(list(itertools.product((0.0, 1.0, 2.0), repeat=len(missing))))
            p = _softmax(base + grid @ w_missing)
            low, high, exact = p.min(axis=0), p.max(axis=0), True
        else:
            low, high, exact = *_bounds(base, w_missing), False
        return {k: (float(lo), float(hi)) for k, lo, hi in zip(self.classes, low, high, strict=True)}, exact


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the largest score for range."""
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _bounds(base: np.ndarray, w_missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on each P(k) over dosages 0-2 of the missing markers: P(k) = 1 / (1 + sum_j exp(s_j - s_k)), each
    difference s_j - s_k linear in the dosages, taken at its own largest (lower bound) and smallest (upper)."""
    low, high = np.empty(len(base)), np.empty(len(base))
    for k in range(len(base)):
        others = [j for j in range(len(base)) if j != k]
        const = base[others] - base[k]
        slope = w_missing[:, others] - w_missing[:, [k]]
        largest = const + 2.0 * np.clip(slope, 0.0, None).sum(axis=0)
        smallest = const + 2.0 * np.clip(slope, None, 0.0).sum(axis=0)
        low[k] = np.exp(-np.logaddexp.reduce(np.append(largest, 0.0)))
        high[k] = np.exp(-np.logaddexp.reduce(np.append(smallest, 0.0)))
    return low, high


EYE_MODEL = MultinomialLogit.from_table("eye", EYE)
HAIR_COLOUR_MODEL = MultinomialLogit.from_table("hair_colour", HAIR_COLOUR)
HAIR_SHADE_MODEL = MultinomialLogit.from_table("hair_shade", HAIR_SHADE)
MODELS = (EYE_MODEL, HAIR_COLOUR_MODEL, HAIR_SHADE_MODEL)


@dataclass(frozen=True)
class TraitPrediction:
    """One trait's probabilities (None: refused, with the reason), their ranges where markers are missing."""

    trait: str
    probabilities: dict[str, float] | None
    ranges: dict[str, tuple[float, float]] | None = None
    exact_ranges: bool = True
    missing: tuple[str, ...] = ()
    refused: str | None = None


def predict_trait(model: MultinomialLogit, dosages: Mapping[str, int | None], *, required: tuple[str, ...] = ()
                  ) -> TraitPrediction:  # fmt: skip
    """One model's prediction; refused (probabilities None) when a `required` marker is missing."""
    missing = tuple(m for m in model.markers if dosages.get(m) is None)
    absent = [m for m in required if dosages.get(m) is None]
    if absent:
        reason = (f"{', '.join(absent)} is missing: it carries most of the {model.name} model, so no {model.name} "
                  "colour is predicted without it")  # fmt: skip
        return TraitPrediction(model.name, None, None, True, missing, reason)
    ranges, exact = model.ranges(dosages)
    if not exact:
        reason = (f"{len(missing)} of its {len(model.markers)} markers are missing, more than {EXACT_MISSING_LIMIT}: "
                  "no point prediction; its ranges are safe bounds (the true range lies inside)")  # fmt: skip
        return TraitPrediction(model.name, None, ranges, exact, missing, reason)
    return TraitPrediction(model.name, model.probabilities(dosages), ranges, exact, missing)


@dataclass(frozen=True)
class PhenotypePrediction:
    """Eye, hair colour and shade predicted from one person's dosages, skin as given (or None), and what was used.

    Holds nothing of the genotype file but the HIrisPlex dosages: no file name, no sample name, no other marker."""

    eye: TraitPrediction
    hair_colour: TraitPrediction
    hair_shade: TraitPrediction
    skin: dict[str, float] | None
    dosages: dict[str, int | None]
    input_format: str
    missing_reasons: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def traits(self) -> tuple[TraitPrediction, ...]:
        return self.eye, self.hair_colour, self.hair_shade

    @property
    def missing(self) -> list[str]:
        """The HIrisPlex markers without a dosage, in the panel's order."""
        return [m.rsid for m in HIRISPLEX_MARKERS if self.dosages.get(m.rsid) is None]

    def summary(self) -> dict[str, Any]:
        """The JSON of `facegen phenotype --json`: eye, hair_colour, hair_shade, skin, missing, ranges, dosages,
        notes (eye null when refused, skin null when unavailable; ranges only for traits with missing markers)."""
        out: dict[str, Any] = {t.trait: t.probabilities for t in self.traits}
        out["skin"] = self.skin
        out["missing"] = self.missing
        out["ranges"] = {t.trait: {k: list(v) for k, v in t.ranges.items()} for t in self.traits if t.ranges}
        out["dosages"] = dict(self.dosages)
        out["notes"] = list(self.statements())
        return out

    def statements(self) -> list[str]:
        """What a reader must know beside the numbers: refusals, the missing rule, bounds, skin, the reader's notes."""
        lines = [f"{t.trait}: refused: {t.refused}" for t in self.traits if t.refused]
        if self.missing:
            lines.append(MISSING_RULE)
        if self.skin is None:
            lines.append(SKIN_UNAVAILABLE)
        return lines + list(self.notes)

    def record(self) -> dict[str, Any]:
        """The case's `phenotype` record: dosages used, predictions, ranges, missing, sources, accuracy, caveats."""
        return {
            "method": "HIrisPlex multinomial logistic models (eye: IrisPlex; hair colour and shade: HIrisPlex)",
            "input_format": self.input_format,
            "dosages": dict(self.dosages),
            "counted_alleles": {m.rsid: m.plus_strand() for m in HIRISPLEX_MARKERS},
            "predictions": {**{t.trait: t.probabilities for t in self.traits}, "skin": self.skin},
            "ranges": {t.trait: {k: list(v) for k, v in t.ranges.items()} for t in self.traits if t.ranges},
            "ranges_exact": {t.trait: t.exact_ranges for t in self.traits if t.ranges},
            "missing": self.missing,
            "missing_reasons": dict(self.missing_reasons),
            "refused": {t.trait: t.refused for t in self.traits if t.refused},
            "skin_source": "the HIrisPlex-S web tool's exported probabilities" if self.skin else None,
            "statements": self.statements(),
            "accuracy": ACCURACY,
            "sources": SOURCES,
            "caveats": list(CAVEATS),
            "privacy": PRIVACY,
        }


def predict_phenotype(genotypes: Genotypes, *, skin: Mapping[str, float] | None = None) -> PhenotypePrediction:
    """Eye, hair colour and hair shade from a reader's dosages; `skin` as exported by the web tool (or None)."""
    if skin is not None and set(skin) != set(SKIN_CLASSES):
        raise ValueError(f"skin probabilities need exactly {', '.join(SKIN_CLASSES)}; got {', '.join(skin)}")
    d = genotypes.dosages
    return PhenotypePrediction(
        eye=predict_trait(EYE_MODEL, d, required=EYE_REQUIRED),
        hair_colour=predict_trait(HAIR_COLOUR_MODEL, d),
        hair_shade=predict_trait(HAIR_SHADE_MODEL, d),
        skin=None if skin is None else {k: float(skin[k]) for k in SKIN_CLASSES},
        dosages={m.rsid: d.get(m.rsid) for m in HIRISPLEX_MARKERS},
        input_format=genotypes.file_format,
        missing_reasons=dict(genotypes.missing_reasons),
        notes=genotypes.notes,
    )


def phenotype_from_files(
    genotypes: Path | str, *, sample: str | None = None, skin_probabilities: Path | str | None = None
) -> PhenotypePrediction:
    """Read a genotype file (and the web tool's output CSV for skin, when given) and predict; `sample` picks one
    person in a file of several."""
    skin = None if skin_probabilities is None else read_webtool_skin(Path(skin_probabilities), sample=sample)
    return predict_phenotype(read_genotypes(genotypes, sample=sample), skin=skin)
