"""Published skull measurements that the wide skull variation draws from: adult means and SDs by sex, with sources.

Craniometric rows (Howells' definitions, mm) are computed here from the W. W. Howells craniometric data set:
2,524 adult crania (1,368 male, 1,156 female) from 30 recent samples worldwide, measured by Howells 1965-1980
(Howells 1973 "Cranial Variation in Man", Pap. Peabody Mus. 67; 1989 "Skull Shapes and the Map", Pap. Peabody
Mus. 79; 1995 "Who's Who in Skulls", Pap. Peabody Mus. 82; data distributed by B. Auerbach, Univ. of Tennessee;
the copy read is github.com/geanes/bioanth inst/extdata/howell.csv). Means and SDs are per sex over the whole
world sample (SD with n - 1), so they include between-population spread, as a generator of many groups should;
`CORRELATION` is the within-sex correlation of the same data (each sex centred on its own mean).

Not covered by a figure found (left out, as no source was at hand): mandible measures other than bigonial
breadth (Howells measured no mandibles; bigonial breadth comes from the project's approximate reference table),
basion-bregma height (the synthetic skull has no skull base to find basion on), chin height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.subject import Sex

HOWELLS = "Howells craniometric data set (2,524 crania), mean and SD computed per sex"


@dataclass(frozen=True)
class CranialMeasurement:
    """One measurement: its Howells code, what it spans, male and female mean and SD (mm), and the source."""

    code: str
    description: str
    male_mean_mm: float
    male_sd_mm: float
    female_mean_mm: float
    female_sd_mm: float
    source: str

    def mean_sd(self, sex: Sex) -> tuple[float, float]:
        """(mean, SD) in mm for one sex."""
        male = sex == Sex.MALE
        return (self.male_mean_mm, self.male_sd_mm) if male else (self.female_mean_mm, self.female_sd_mm)


CRANIOMETRY: tuple[CranialMeasurement, ...] = (
    CranialMeasurement("GOL", "glabella-opisthocranion length", 183.2, 7.5, 174.4, 7.1, HOWELLS),
    CranialMeasurement("XCB", "maximum cranial breadth", 139.1, 7.1, 134.2, 6.6, HOWELLS),
    CranialMeasurement("ZYB", "bizygomatic breadth", 135.1, 6.5, 125.6, 5.8, HOWELLS),
    CranialMeasurement("NPH", "upper facial height, nasion-prosthion", 68.0, 5.2, 63.5, 4.9, HOWELLS),
    CranialMeasurement("NLH", "nasal height, nasion-nasospinale", 51.5, 3.8, 48.2, 3.5, HOWELLS),
    CranialMeasurement("NLB", "nasal aperture breadth", 26.8, 2.3, 25.7, 2.2, HOWELLS),
    CranialMeasurement("OBH", "orbit height (left)", 33.9, 2.3, 33.4, 2.1, HOWELLS),
    CranialMeasurement("OBB", "orbit breadth, dacryon-ectoconchion (left)", 40.2, 1.9, 38.7, 1.8, HOWELLS),
    # approximate: shared/reference/cfr-facts.md section 5 (modern European-range samples, SD "typical"); the
    # primary table was not found. Marked approx in the name of its source, as cfr-facts asks.
    CranialMeasurement("BGB", "bigonial breadth, gonion-gonion", 99.0, 6.0, 92.0, 6.0,
                       "approx.: shared/reference/cfr-facts.md section 5 (secondary; primary table not found)"),
)  # fmt: skip
"""Measurements the wide variation draws jointly and the generator then builds into skull and face."""

CRANIOMETRY_BY_CODE = {row.code: row for row in CRANIOMETRY}

_HOWELLS_CORRELATION = np.array(
    [  # GOL   XCB   ZYB   NPH   NLH   NLB   OBH   OBB   (within sex, Howells data set)
        [1.00, 0.10, 0.35, 0.30, 0.30, 0.17, 0.16, 0.45],
        [0.10, 1.00, 0.47, 0.38, 0.41, -0.01, 0.27, 0.18],
        [0.35, 0.47, 1.00, 0.52, 0.56, 0.17, 0.43, 0.52],
        [0.30, 0.38, 0.52, 1.00, 0.83, -0.03, 0.56, 0.35],
        [0.30, 0.41, 0.56, 0.83, 1.00, 0.05, 0.58, 0.34],
        [0.17, -0.01, 0.17, -0.03, 0.05, 1.00, -0.07, 0.17],
        [0.16, 0.27, 0.43, 0.56, 0.58, -0.07, 1.00, 0.36],
        [0.45, 0.18, 0.52, 0.35, 0.34, 0.17, 0.36, 1.00],
    ]
)
CORRELATION = np.eye(len(CRANIOMETRY))
CORRELATION[:8, :8] = _HOWELLS_CORRELATION
"""Correlation of the rows of `CRANIOMETRY`; bigonial breadth (no joint data found) is drawn independently."""

ALVEOLAR_BREADTH_MM = {Sex.MALE: (65.3, 3.7), Sex.FEMALE: (61.5, 3.3)}
"""Howells MAB, maxillo-alveolar breadth across the outer alveolar borders (computed per sex from the data set
above): the dental arch is this narrow; lateral to it, in front of the ramus, a frontal view sees past the teeth."""

ORBIT_DEPTH_MM = (38.84, 3.90)
"""Orbit depth, orbital entrance plane to optic canal, mean and SD (CT, 120 adults; J Curr Ophthalmol 2016,
28(2):81-84, doi 10.1016/j.joco.2016.03.002)."""

BASION_RADIUS_MM = {Sex.MALE: (15.8, 3.4), Sex.FEMALE: (14.4, 3.2)}
"""Howells BAR, basion's perpendicular distance from the transmeatal axis (1,052 male, 810 female crania)."""
NASION_BASION_ANGLE_DEG = {Sex.MALE: (111.6, 10.1), Sex.FEMALE: (112.9, 11.0)}
"""Angle at the transmeatal axis between nasion and basion, from each skull's own triangle of Howells' NAR (nasion
radius), BAR and BNL (basion-nasion length) by the law of cosines: mean and SD per sex (1,050 male, 808 female
crania of the data set above). It places basion from a head's nasion whatever the head's own nasion radius."""

VERTEBRAL_BODY_WIDTH_MM = {Sex.MALE: (24.6, 2.4), Sex.FEMALE: (23.0, 2.4)}
"""Cervical vertebral body width, CT of 50 men and 50 women (J Spinal Disord Tech 2004, 17(2):102-107,
doi 10.1097/00024720-200404000-00004)."""
VERTEBRAL_BODY_DEPTH_MM = {Sex.MALE: 17.5, Sex.FEMALE: 15.5}
"""Midsagittal AP diameter of the same vertebral bodies: "approximately 17-18 mm" (men), "15-16 mm" (women)."""

TEETH_REMAINING = ((35.0, 26.90), (50.0, 25.05), (65.0, 22.30), (75.0, 19.34), (200.0, 18.36))
"""Mean permanent teeth remaining (of 28) by age, as (upper age bound, mean): NHANES 1999-2004 (NIDCR tables
"Tooth loss in adults (20 to 64)" and "in seniors (65 and over)"; 20-34, 35-49, 50-64, 65-74, 75+ years)."""
EDENTULOUS_SHARE = ((65.0, 0.0375), (200.0, 0.2727))
"""Share with no teeth left, as (upper age bound, share): 3.75 % at 20-64, 27.27 % at 65+ (same NIDCR tables)."""
TEETH_COUNTED = 28
"""NHANES counts 28 permanent teeth (third molars excluded)."""


def by_age(table: tuple[tuple[float, float], ...], age_years: float) -> float:
    """The value of an (upper age bound, value) table for this age."""
    for bound, value in table:
        if age_years < bound:
            return value
    return table[-1][1]
